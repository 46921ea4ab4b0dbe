"""``kt show RUN``: one run in full: config, knowledge provenance, timings, epoch log and learning curves."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, fmt, note, stdout, table
from kt_cli.errors import MissingInputError, UsageError
from kt_cli.training.lease import alive, describe

if TYPE_CHECKING:
    from kt_cli.store import Store


KNOWLEDGE_ONLY = {"inject_layer", "alpha", "recon_loss", "project", "target_scale"}


def _lineage(db: Store, dataset: str, name: str | None) -> list[dict[str, Any]]:
    """The knowledge set and the sets it was made from, each with source, method and parameters."""
    chain = []
    while name:
        row = db.knowledge_set(dataset, name)
        if row is None:
            break
        chain.append({"set": row.name, "entity": row.entity, "dim": row.dim, "vectors": row.n_vectors,
                      "source": row.source, "method": row.method, "params": row.params})
        name = row.parent
    return chain


def show(
    run: Annotated[str, typer.Argument(help="Run name (see kt runs).")],
    plot: Annotated[Optional[Path], typer.Option(help="Also write the learning curves to FILE.svg or FILE.png.")] = None,
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """Show a run: its config, knowledge provenance, status and timings, epoch log and learning curves."""
    from kt_cli.store import Store
    from kt_cli.training.curves import sparkline, write_figure

    with Store.open(store, create=False) as db:
        row = db.run(run)
        if row is None:
            raise MissingInputError(f"There is no run named '{run}'. Runs: {', '.join(db.run_names()) or 'none'}.",
                                    f"kt train ... --name {run}")
        epochs = db.epochs(run)
        lineage = [step for name in row.knowledge_sets for step in _lineage(db, row.dataset, name)]
        split = db.split_label(row.split_id)
        evaluations = [(e, settings, db.eval_metrics(e)) for e, settings in db.evaluations(run)]
        owner = db.owner(run)
    training_now = row.status == "running" and alive(owner)
    if plot is not None:
        if epochs.empty:
            raise UsageError(f"Run '{run}' ({row.status}{': ' + row.error if row.error else ''}) has no logged "
                             "epoch, so there is no curve to plot.")
        write_figure(epochs, plot, f"{run}: {row.model} on {row.dataset}, split {split}",
                     str(row.config.get("valid_metric", "metric")))
    if json:
        return emit_json({"run": run, "status": row.status, "training_now": training_now, "dataset": row.dataset,
                          "split": split, "config": row.config, "summary": row.summary, "versions": row.versions,
                          "error": row.error, "knowledge": lineage, "epochs": epochs.to_dict(orient="records"),
                          "evaluations": [{"eval_id": e, "settings": s, "metrics": m.to_dict(orient="records")}
                                          for e, s, m in evaluations]})
    status = row.status + (f", being trained by {describe(owner)}" if training_now else "")
    if row.status == "running" and not training_now:
        status += " (no live process: interrupted; the same kt train command resumes it)"
    facts = [("status", status), ("dataset, split", f"{row.dataset}, {split} ({row.split_id})"),
             ("model, seed", f"{row.model}, {row.seed}"), ("created", row.created_at.strftime("%Y-%m-%d %H:%M")),
             ("finished", row.finished_at.strftime("%Y-%m-%d %H:%M") if row.finished_at else "-")]
    if row.error:
        facts.append(("error", row.error))
    summary = row.summary
    if summary:
        facts += [("best valid", f"{summary.get('valid_metric')} {fmt(summary.get('best_valid'))}"),
                  ("phases", "; ".join(f"{p['phase']}: {p['epochs']} epoch{'s' if p['epochs'] != 1 else ''}, best "
                                       f"{p['best_valid']:.4f} at "
                                       f"epoch {p['best_epoch']}" for p in summary.get("phases", []))),
                  ("seconds", f"{summary.get('seconds', 0):.1f} in all; per epoch " + ", ".join(
                      f"{k} {v:.3f}" for k, v in summary.get("seconds_per_epoch", {}).items())),
                  ("layer, coverage", f"{summary.get('layer') or '-'}; {fmt(summary.get('coverage'))}")]
        if "adaptor_parameters" in summary:
            facts.append(("adaptor", f"{summary['adaptor_parameters']:,} parameters; knowledge fields "
                                     f"{', '.join(summary.get('knowledge_fields', []))}"))
        if "data" in summary:
            data = summary["data"]
            facts.append(("labels, features", f"{data['label']}; " + "; ".join(
                f"{side}: {', '.join(f.split(' ')[0] for f in feats)}" for side, feats in data["features"].items())))
    facts.append(("versions", fmt(row.versions)))
    table(["", run], [[k, v] for k, v in facts], title=f"Run {run}")
    hidden = {"recbole"} | (set() if row.knowledge else KNOWLEDGE_ONLY)  # settings only LLM-KT uses
    config = {k: v for k, v in row.config.items() if k not in hidden}
    table(["setting", "value"], [[k, fmt(v)] for k, v in config.items()] +
          [[f"recbole.{k}", fmt(v)] for k, v in row.config.get("recbole", {}).items()], title="Configuration")
    if lineage:
        table(["knowledge set", "entity", "dim", "vectors", "source", "method", "parameters"],
              [[s["set"], s["entity"], s["dim"], s["vectors"], s["source"], s["method"] or "-", fmt(s["params"])]
               for s in lineage], title="Knowledge, and the sets it was made from")
    if not epochs.empty:
        table(["phase", "epoch", "loss", "recon", "valid", "seconds"],
              [[r.phase, r.epoch, r.model_loss, r.recon_loss, r.valid_metric, r.seconds]
               for r in epochs.itertuples()], title="Epoch log")
        for phase, part in epochs.groupby("phase", sort=False):
            stdout.print(f"{phase:8} valid {sparkline(part['valid_metric'].tolist())}  "
                         f"loss {sparkline(part['model_loss'].tolist())}", markup=False, highlight=False)
    if evaluations:
        rows = []
        for eval_id, settings, metrics in evaluations:
            everyone = metrics[metrics["slice"] == "all"]
            headline = everyone[(everyone["metric"] == "ndcg") & (everyone["k"] == 10)]
            headline = headline if len(headline) else everyone.head(1)
            rows.append([eval_id, f"{settings.get('part')} {settings.get('mode')}, k {','.join(map(str, settings.get('ks', [])))}, "
                         f"seed {settings.get('seed')}", *(f"{m}@{k} {v:.4f}" for m, k, v in zip(
                             headline["metric"], headline["k"], headline["value"]))])
        table(["evaluation", "settings", "all users"], rows, title="Stored evaluations (kt eval; kt compare reads them)")
    if plot is not None:
        note(f"Wrote the learning curves to {plot}.")
