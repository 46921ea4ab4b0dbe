"""``kt demo``: the main job. The whole pipeline on ml-100k with built-in defaults, offline, in minutes.

It is the real commands run in one process (one start-up of torch and RecBole instead of twelve), each
printed as the ``kt`` command line it is before it runs, so a user can rerun or vary any step by hand.
Every step stores its result, so a second ``kt demo`` reuses all of them and takes seconds.

The epoch budgets are the demo's own, sized so the job fits in under 10 minutes on 2 cores; the
benchmark (bench/llmkt.py, docs/results.md) is where budgets, alpha and reducer are tuned and seeds
repeated. The demo shows one seed and says so.

It trains on kt's default split (each user's ratings in time order, 70/10/20: the LLM-KT paper's
protocol) and uses the shipped profiles written from the training part of that very split, so no profile
has seen a validation or test item. Users the shipped file does not cover yet train without a target.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Optional, get_type_hints

import typer

from kt_cli.cli import compare as compare_cli
from kt_cli.cli import embed as embed_cli
from kt_cli.cli import options
from kt_cli.cli import profile as profile_cli
from kt_cli.cli import reduce as reduce_cli
from kt_cli.cli import train as train_cli
from kt_cli.cli.render import emit_json, note
from kt_cli.errors import MissingInputError
from kt_cli.evaluation.settings import EvalSettings
from kt_cli.profiles.models import DEFAULT_CHAT_MODEL

DATASET = "ml-100k"
PROFILE_SET = f"user-{DEFAULT_CHAT_MODEL}"  # the default split's training part (profiles_cache/README.md)
KNOWLEDGE = "llm-pca64"
EVAL = EvalSettings(ks=(10,))
METRICS = ["ndcg", "recall", "hit"]


@dataclass(frozen=True)
class DemoModel:
    """One model's demo schedule: epochs per phase, patience, and the LLM-KT weight."""

    key: str
    epochs: int
    patience: int
    alpha: float


# NeuMF scores every user-item pair through its MLP to validate (about 4 s an epoch here), so it gets the
# smallest budget; MultVAE epochs take a fraction of a second.
DEMO_MODELS = (DemoModel("multvae", 70, 10, 0.5), DemoModel("simplex", 12, 4, 0.5),
               DemoModel("neumf", 8, 3, 0.5))


PLUMBING = frozenset({"store", "threads", "profiles_cache", "json"})  # where and how fast, not what: not printed


def _flag(command: Callable[..., Any], parameter: str) -> str:
    """The command-line flag of one of ``command``'s parameters, read from its typer declaration."""
    info = get_type_hints(command, include_extras=True)[parameter].__metadata__[0]
    # typer.Option("--from") inside Annotated keeps the first name where a default would go
    declared = [info.default, *(info.param_decls or ())]
    return next((d for d in declared if isinstance(d, str) and d.startswith("--")), "--" + parameter.replace("_", "-"))


def _run(command: Callable[..., Any], **kwargs: Any) -> None:
    """Print the command line a step is (made from the very arguments it gets), then run it through the
    same function the CLI calls."""
    words = [command.__name__]
    for parameter, value in kwargs.items():
        if parameter not in PLUMBING:
            words += [_flag(command, parameter)] + ([] if value is True else [str(value)])
    note(f"[bold]$ kt {' '.join(words)}[/bold]")
    command(**kwargs)


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all cores from /proc/stat, or None where there is no /proc (macOS, Windows)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields)  # idle + iowait


def idle_cores(window: float = 0.5) -> tuple[int, int, float]:
    """(threads to use, cores, busy cores): the cores other work leaves idle, at least one.

    Busy cores are sampled over ``window`` seconds of /proc/stat, not read from the 1-minute load average:
    the load average still counts work that just ended (the install `scripts/quickstart.sh` runs right
    before the demo read as 1.2 busy cores on an idle machine and halved the demo's threads). Without /proc
    the load average is the estimate."""
    cores = os.cpu_count() or 1
    before = _cpu_times()
    if before is None:
        busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    else:
        time.sleep(window)
        after = _cpu_times()
        assert after is not None
        idle, total = after[0] - before[0], after[1] - before[1]
        busy = cores * (1 - idle / total) if total > 0 else 0.0
    return max(1, min(cores, round(cores - busy))), cores, busy


def demo(
    quick: Annotated[bool, typer.Option("--quick", help="One epoch per phase (runs named quick-*): checks an "
                                        "install end to end in about a minute; the numbers mean nothing.")] = False,
    threads: Annotated[Optional[int], typer.Option(
        "--threads", envvar="KT_THREADS", min=1, show_default="the idle cores",
        help="CPU threads for torch. By default the cores other work leaves idle (sampled for half a second), at "
             "least one: torch's threads collapse when they share cores with another busy process.")] = None,
    profiles_cache: options.ProfilesCache = options.DEFAULT_PROFILES_CACHE,
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """Run the main job: shipped LLM profiles -> MiniLM -> PCA 64 -> baseline vs LLM-KT for MultVAE, SimpleX
    and NeuMF on ml-100k, then the comparison tables. Offline; a rerun reuses the store."""
    from kt_cli.evaluation.compare import compare_runs  # pandas, torch and RecBole: only when running
    from kt_cli.evaluation.evaluate import evaluate_run
    from kt_cli.profiles import cache_files
    from kt_cli.store import Store
    from kt_cli.training.config import TrainConfig
    from kt_cli.training.trainer import is_stale

    if threads is None:
        threads, cores, busy = idle_cores()
        note(f"Threads: {threads} ({cores} cores, {busy:.1f} busy with other work; set --threads to choose).")

    common = {"dataset": DATASET, "store": store}
    if PROFILE_SET not in {name for name, _ in cache_files.shipped_sets(profiles_cache, DATASET, "user")}:
        raise MissingInputError(
            f"kt demo runs offline on the shipped profiles, but {profiles_cache} holds none for {DATASET} "
            f"({PROFILE_SET}). Point --profiles-cache (or KT_PROFILES_CACHE) at the checkout's profiles_cache/, "
            "or make the profiles with an LLM first.", f"kt profile --dataset {DATASET} --store {store}")
    _run(profile_cli.profile, **common, offline=True, profiles_cache=profiles_cache)
    _run(embed_cli.embed, **common, profiles=PROFILE_SET, threads=threads)
    _run(reduce_cli.reduce, **common, source=f"{PROFILE_SET}-minilm", method="pca", dim=64, name=KNOWLEDGE)
    pairs = []
    for spec in DEMO_MODELS:
        spec = DemoModel(spec.key, 1, 1, spec.alpha) if quick else spec
        prefix = "quick" if quick else "demo"
        schedule = {"model": spec.key, "distill_epochs": spec.epochs, "finetune_epochs": spec.epochs,
                    "patience": spec.patience, "threads": threads, **common}
        base, llm = f"{prefix}-{spec.key}-base", f"{prefix}-{spec.key}-llmkt"
        for name, transfer in ((base, {}), (llm, {"knowledge": KNOWLEDGE, "alpha": spec.alpha})):
            config = TrainConfig(dataset=DATASET, model=spec.key, distill_epochs=spec.epochs,
                                 finetune_epochs=spec.epochs, patience=spec.patience, **transfer)
            # a run made from older shipped profiles (or another kt) is retrained, not refused
            _run(train_cli.train, **schedule, **transfer, name=name,
                 **({"force": True} if is_stale(store, config, name) else {}))
        pairs.append((base, llm))
    runs = [run for pair in pairs for run in pair]
    note(f"[bold]$ kt eval {' '.join(runs)} --k 10[/bold]")
    for run in runs:
        evaluate_run(store, run, EVAL, threads=threads)
    with Store.open(store) as db:
        results = [compare_runs(db, list(pair), EVAL, test="ttest", metrics=METRICS) for pair in pairs]
    if json:
        return emit_json([compare_cli.as_json(result) for result in results])
    for (base, llm), result in zip(pairs, results):
        note(f"[bold]$ kt compare {base} {llm} --k 10 --metrics {','.join(METRICS)}[/bold]")
        compare_cli.show(result)
    note("One training seed each: a first look, not evidence (add --max-train 20 to kt compare for sparse "
         "users). The benchmark with 5 seeds, a validation search and two controls is bench/llmkt.py; its "
         "results are in docs/results.md.")
