"""``kt train``: fit a RecBole model, with or without LLM knowledge transfer; ``--list-layers``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, note, stderr, table
from kt_cli.errors import UsageError
from kt_cli.methods import METHODS, get_method
from kt_cli.training.models import get_model_spec, models_for

if TYPE_CHECKING:
    from kt_cli.training.config import TrainConfig


def _overrides(config_file: Optional[Path], settings: list[str]) -> dict:
    """RecBole settings from --config FILE, then each --set key=value (values parsed as YAML)."""
    import yaml

    values: dict = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text()) or {}
        except OSError as e:
            raise UsageError(f"Cannot read --config {config_file}: {e.strerror}.") from e
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            line = f" at line {where.line + 1}" if where is not None else ""
            raise UsageError(f"--config {config_file} is not valid YAML{line} "
                             f"({getattr(e, 'problem', None) or 'parse error'}). It must hold a mapping of RecBole "
                             "settings, e.g. 'learning_rate: 0.002'.") from e
        if not isinstance(loaded, dict):
            raise UsageError(f"--config {config_file} must hold a mapping of RecBole settings.")
        values.update(loaded)
    return {**values, **_pairs(settings, "--set", "learning_rate=0.002")}


def _pairs(items: list[str], option: str, example: str) -> dict:
    """``key=value`` arguments of a repeatable option, values parsed as YAML (4 is an int, 0.1 a float)."""
    import yaml

    values: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} takes key=value (e.g. {option} {example}), not '{item}'.")
        values[key.strip()] = yaml.safe_load(raw)
    return values



def train(
    model: Annotated[str, typer.Option(help=f"Model. Ranking: {', '.join(models_for('ranking'))}; sequential (next "
                                            f"item): {', '.join(models_for('sequential'))}; CTR (labels from ratings, "
                                            f"AUC): {', '.join(models_for('ctr'))}.")] = "multvae",
    dataset: options.Dataset = "ml-100k",
    knowledge: Annotated[Optional[str], typer.Option(
        help="Knowledge set for LLM-KT (reconstructed in --inject-layer); omit for the baseline.")] = None,
    method: Annotated[Optional[str], typer.Option(
        help="How knowledge enters: " + "; ".join(f"{k}: {m.summary}" for k, m in METHODS.items())
             + " [default: llmkt with --knowledge, else none].")] = None,
    user_knowledge: Annotated[Optional[str], typer.Option(
        help="KAR: knowledge set of user vectors (e.g. embedded user profiles).")] = None,
    item_knowledge: Annotated[Optional[str], typer.Option(
        help="KAR: knowledge set of item vectors (e.g. embedded item profiles); LEARN (--model learn): the items' "
             "content embeddings.")] = None,
    method_set: Annotated[list[str], typer.Option(
        "--method-set", help="Method option key=value (repeatable), e.g. KAR's shared_experts=2, "
                             "dedicated_experts=6, expert_hidden=128, expert_out=32, dropout=0.")] = [],
    teacher: Annotated[Optional[str], typer.Option(
        help="kd: a finished ranking run on the same split whose top-n items per user teach the student.")] = None,
    teacher_file: Annotated[Optional[Path], typer.Option(
        help="kd: a JSONL teacher computed elsewhere, one line per user: user_id, items, scores.")] = None,
    partner: Annotated[Optional[str], typer.Option(
        help="llmd4rec: a finished ranking run on the same split (e.g. LEARN) trained along, in turns.")] = None,
    label_threshold: Annotated[Optional[float], typer.Option(
        help="CTR models: label = rating >= this [default: 4, as RecBole's ml-100k CTR config].")] = None,
    inject_layer: Annotated[Optional[str], typer.Option(
        help="Module path [:input|:output] to reconstruct knowledge in [default: the model's documented layer].")] = None,
    alpha: Annotated[float, typer.Option(help="Weight of the reconstruction loss, 0..1.")] = 0.5,
    recon_loss: Annotated[str, typer.Option(help="rmse or cosine.")] = "rmse",
    project: Annotated[str, typer.Option(help="Width mismatch: truncate (reference) or linear (learned head).")] = "truncate",
    target_scale: Annotated[str, typer.Option(
        help="none (reference: vectors as stored) or layer (centre them and match the layer's norm at "
             "initialisation; UMAP output is ~100x larger).")] = "none",
    distill_epochs: Annotated[int, typer.Option(help="Max epochs with the knowledge hook.")] = 100,
    finetune_epochs: Annotated[int, typer.Option(help="Max epochs after, without the hook, fresh optimizer.")] = 100,
    patience: Annotated[int, typer.Option(help="Stop a phase after this many validations without improvement.")] = 10,
    eval_every: Annotated[int, typer.Option(
        min=1, help="Validate every N epochs (and at each phase's last): on a large catalogue validation can cost "
                    "more than the epoch.")] = 1,
    valid_metric: Annotated[Optional[str], typer.Option(
        help="Validation metric for early stopping [default: ndcg@10 for ranking; auc for CTR, or gauc, "
             "logloss].")] = None,
    split: options.Split = "0.7,0.1,0.2",
    split_order: options.SplitOrder = "time",
    split_seed: options.SplitSeed = 42,
    seed: options.Seed = 42,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    set_: Annotated[list[str], typer.Option("--set", help="RecBole setting key=value (repeatable).")] = [],
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML file of RecBole settings.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Run name [default: derived from the config].")] = None,
    seeds: Annotated[Optional[str], typer.Option(
        help="Train one run per seed, e.g. 1-5 or 1,3,7: runs NAME-s1, NAME-s2, ... (a rerun continues where it "
             "stopped). Compare groups with kt compare 'NAME-s*' 'OTHER-s*'.")] = None,
    allow_unknown_settings: Annotated[bool, typer.Option(
        "--allow-unknown-settings", help="Pass --set/--config keys RecBole's property files do not list.")] = False,
    list_layers: Annotated[bool, typer.Option("--list-layers", help="Show hookable layers and shapes; no training.")] = False,
    list_settings: Annotated[bool, typer.Option("--list-settings", help="Show the RecBole settings --set accepts "
                                                "for this model, with defaults; no training.")] = False,
    force: options.Force = False,
    threads: options.Threads = 1,
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """Train a RecBole model: a baseline, LLM-KT (--knowledge: reconstruct LLM knowledge in an intermediate layer)
    or KAR (--method kar: user and item knowledge as extra feature fields of a CTR model)."""
    from kt_cli.store import Store  # pandas and duckdb: only when running
    from kt_cli.training.config import TrainConfig, check_inputs, check_run_name, default_run_name, parse_seeds

    if list_settings:  # needs no knowledge set: what --set and --method-set accept for this model and method
        return _show_settings(model, method or get_model_spec(model).method or ("llmkt" if knowledge else "none"), json)
    settings = TrainConfig(
        dataset=dataset, model=model, knowledge=knowledge, inject_layer=inject_layer, alpha=alpha,
        recon_loss=recon_loss, project=project, target_scale=target_scale, distill_epochs=distill_epochs,
        finetune_epochs=finetune_epochs, patience=patience, valid_metric=valid_metric,
        split=split, split_order=split_order, split_seed=split_seed, seed=seed, device=device,
        recbole=_overrides(config, set_), method=method, user_knowledge=user_knowledge,
        item_knowledge=item_knowledge, method_options=_pairs(method_set, "--method-set", "shared_experts=3"), label_threshold=label_threshold,
        teacher=teacher, partner=partner, eval_every=eval_every, teacher_file=str(teacher_file.resolve()) if teacher_file is not None else None,
    )
    settings = settings.checked(allow_unknown_settings=allow_unknown_settings)
    if name is not None:
        check_run_name(name)
    runs = [(name, settings)] if seeds is None else [
        (f"{name or default_run_name(replace(settings, seed=0))}-s{s}", replace(settings, seed=s))
        for s in parse_seeds(seeds)]
    with Store.open(store) as db:  # names and inputs checked before torch and RecBole load
        check_inputs(db, settings)
    if list_layers:
        return _show_layers(store, settings, json)
    from kt_cli.training.trainer import check_device, train as library_train  # torch and RecBole: only now

    check_device(settings.device)
    results = []
    for run_name, run_settings in runs:
        if json:
            results.append(library_train(store, run_settings, run_name, threads=threads, force=force,
                                         allow_unknown_settings=allow_unknown_settings))
            continue
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=stderr, transient=False)
        tasks: dict[str, int] = {}

        def on_epoch(record) -> None:
            if not tasks:  # shown from the first epoch on: an early error prints no empty bar
                progress.start()
            total = distill_epochs if record.phase != "finetune" else finetune_epochs
            if record.phase not in tasks:
                tasks[record.phase] = progress.add_task(record.phase, total=total)
            recon = f" recon {record.recon_loss:.4f}" if record.recon_loss is not None else ""
            progress.update(tasks[record.phase], completed=record.epoch + 1, description=(
                f"{record.phase:8} loss {record.model_loss:.4f}{recon} valid {settings.valid_metric} "
                f"{record.valid_metric:.4f}{' *' if record.best else '  '}"))

        try:
            result = library_train(store, run_settings, run_name, threads=threads, force=force,
                                   allow_unknown_settings=allow_unknown_settings, on_epoch=on_epoch)
        finally:
            if tasks:
                progress.stop()
        results.append(result)
        verb = {"cached": "Already trained", "resumed": "Resumed and trained", "trained": "Trained"}[result.status]
        note(f"{verb} run '{result.name}': best valid {settings.valid_metric} {result.summary['best_valid']:.4f} "
             f"in {result.summary['seconds']:.1f}s. Next: kt eval {result.name}")
    if json:
        documents = [{"run": r.name, "status": r.status, **r.summary} for r in results]
        return emit_json(documents if seeds is not None else documents[0])


def _show_settings(model: str, method_name: str, json: bool) -> None:
    from kt_cli.training.config import CTR_RESERVED_KEYS, RESERVED_KEYS
    from kt_cli.training.recbole_settings import known_settings

    spec = get_model_spec(model)
    known = {**known_settings(spec.recbole_name), **spec.settings}
    reserved = RESERVED_KEYS | (CTR_RESERVED_KEYS if spec.task == "ctr" else frozenset())
    visible = {k: v for k, v in sorted(known.items()) if k not in reserved}
    method = get_method(method_name)
    method_options = {k: {"default": o.default, "help": o.help} for k, o in method.options.items()}
    if json:
        return emit_json({"model": spec.key, "settings": visible, "managed_by_kt": sorted(reserved),
                          "method": method.key, "method_options": method_options})
    table(["setting", "default"], [[k, "~" if v is None else str(v)] for k, v in visible.items()],
          title=f"{spec.recbole_name}: RecBole settings for --set KEY=VALUE (kt manages {', '.join(sorted(reserved))})")
    if method_options:
        table(["option", "default", "meaning"], [[k, str(o["default"]), o["help"]] for k, o in method_options.items()],
              title=f"Method {method.key}: options for --method-set KEY=VALUE")


def _show_layers(store: Path, settings: TrainConfig, json: bool) -> None:
    from kt_cli.training.session import survey_model

    layers, default = survey_model(store, settings)
    if json:
        return emit_json({"model": settings.model, "default_layer": default,
                          "layers": [layer.__dict__ for layer in layers]})
    default_path = default.split(":")[0]
    table(["layer", "type", "input shape", "output shape", "params"],
          [[("* " if layer.path == default_path else "  ") + layer.path, layer.kind,
            "x".join(map(str, layer.input_shape)) if layer.input_shape else "-",
            "x".join(map(str, layer.output_shape)) if layer.output_shape else "-",
            f"{layer.parameters:,}"] for layer in layers],
          title=f"{settings.model}: hookable layers on one training batch (* default: {default})")
