"""Scale: kt's stages on synthetic MovieLens-like data at 100k, 1M and 10M interactions; writes docs/scale.md.

The generator (``synthetic``) mimics MovieLens-1M's shape at any size: one user per 165 interactions and 0.61
items per user (ML-1M: 6,040 users, 3,706 items, 1.0M ratings); each user's activity log-normal with at least
20 interactions (ML's 20-core), scaled to the total; item popularity Zipf-like (weight 1 / rank^0.9, ranks
shuffled over ids); and low-rank taste structure: 16 taste groups, user u in group g(u), item i with an 8-d
factor v_i, group k with a factor c_k, so user u draws items with probability proportional to
pop_i * exp(c_g(u) . v_i) (a rank-8 preference, 16 distinct distributions), without repeats; ratings 1-5 from
the same affinity, timestamps increasing per user. Items get a title, a year and genres, so profile prompts
render.

Each stage runs in its own process; its wall time and peak memory (the process's max RSS) are reported, with
RecBole doing the same work beside it where it can: a training epoch (RecBole's ``Trainer._train_epoch`` on a
model built from the same config and seed), full-ranking evaluation of the same weights with 256 users a batch
(RecBole's ``Trainer.evaluate``), and NeuMF's evaluation (no ``full_sort_predict``: the memory that grows with the
catalogue). The batch-file stage writes and imports 100,000 profile requests (a dataset of 100,000 users; the
results file is made here, one answer a line, as a batch service would return it).

Usage:
  python bench/scale.py                        # 100k and 1M with RecBole beside kt, 10M for kt's BPR and MultVAE
  python bench/scale.py --sizes 1M             # remeasure one size: docs/scale.json keeps the others' figures
  python bench/scale.py --sizes 100k --quick   # a smoke run; no docs
Time it with nothing else running (each stage is one process; the work folder is bench/scale-data/). The raw
figures go to docs/scale.json (each size with the date and wall time of its measurement), and docs/scale.md is
rendered from it with the issue's targets checked.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.epochs import spread, twin_epochs  # noqa: E402

SIZES = {"100k": 100_000, "1M": 1_000_000, "10M": 10_000_000}
MODELS = ("bpr", "multvae")
BATCH_USERS = 100_000
GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Animation", "Documentary")


def synthetic(folder: Path, name: str, n: int, seed: int = 0, users: int | None = None) -> Path:
    """Write ``name.inter`` and ``name.item`` (RecBole atomic files) of about ``n`` interactions; see the docstring."""
    rng = np.random.default_rng(seed)
    n_users = users or max(20, n // 165)
    n_items = max(50, int(0.61 * (n // 165 if users else n_users)))
    activity = np.maximum(20, rng.lognormal(0.0, 1.0, n_users))
    activity = np.maximum(20, np.round(activity / activity.sum() * n)).astype(np.int64)
    activity = np.minimum(activity, n_items // 2)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.9
    pop = pop[rng.permutation(n_items)]
    factors, groups = rng.normal(size=(n_items, 8)), rng.normal(size=(16, 8)) * 0.7
    group_of = rng.integers(0, 16, n_users)
    rows_u, rows_i, rows_r = [], [], []
    for g in range(16):
        affinity = factors @ groups[g]
        weights = pop * np.exp(affinity)
        weights /= weights.sum()
        members = np.flatnonzero(group_of == g)
        for user in members:  # Gumbel top-k: the user's items without repeats, in proportion to the weights
            keys = np.log(weights) - np.log(-np.log(rng.random(n_items)))
            items = np.argpartition(-keys, activity[user])[: activity[user]].copy()  # a view would keep all n_items
            rows_u.append(np.full(len(items), user))
            rows_i.append(items)
            rows_r.append(np.clip(np.round(3 + affinity[items] + rng.normal(0, 0.7, len(items))), 1, 5))
    users_col, items_col, ratings = map(np.concatenate, (rows_u, rows_i, rows_r))
    times = np.concatenate([np.sort(rng.integers(880_000_000, 980_000_000, len(r))) for r in rows_u])
    out = folder / name
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{name}.inter", "w") as f:
        f.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        np.savetxt(f, np.column_stack([users_col + 1, items_col + 1, ratings, times]), fmt="%d\t%d\t%d\t%d")
    with open(out / f"{name}.item", "w") as f:
        f.write("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n")
        for i in range(n_items):
            picks = rng.choice(len(GENRES), 2, replace=False)
            f.write(f"{i + 1}\tFilm {i + 1}\t{1950 + i % 70}\t{GENRES[picks[0]]} {GENRES[picks[1]]}\n")
    return out


# ---------------------------------------------------------------------------------------------- stages (children)
def _store(work: Path, size: str) -> Path:
    return work / f"scale-{size}.duckdb"


def _remove_store(store: Path) -> None:
    """A store, its WAL and its artifacts gone, so a rerun measures the same work as the first run."""
    shutil.rmtree(store.with_suffix(".artifacts"), ignore_errors=True)
    for path in (store, store.with_name(store.name + ".wal")):
        path.unlink(missing_ok=True)


def stage_generate(work: Path, size: str) -> dict[str, Any]:
    """The synthetic data (bench code, not kt's: its own process, so the register stage's peak is kt's alone)."""
    start = time.perf_counter()
    synthetic(work / "data", f"syn{size}", SIZES[size])
    return {"seconds": time.perf_counter() - start}


def stage_register(work: Path, size: str) -> dict[str, Any]:
    from kt_cli.datasets.registry import register_dataset
    from kt_cli.store import Store

    folder = work / "data" / f"syn{size}"
    _remove_store(_store(work, size))  # no store, split, export or dataset cache left over
    for run_dir in work.glob(f"run-{size}-*"):
        shutil.rmtree(run_dir)
    start = time.perf_counter()
    with Store.open(_store(work, size)) as store:
        row = register_dataset(store, f"syn{size}", folder)
    return {"seconds": time.perf_counter() - start, "interactions": row.n_interactions, "users": row.n_users,
            "items": row.n_items}


def stage_split(work: Path, size: str) -> dict[str, Any]:
    from kt_cli.datasets.splits import ensure_split, parse_split
    from kt_cli.store import Store

    start = time.perf_counter()
    with Store.open(_store(work, size)) as store:
        ensure_split(store, f"syn{size}", parse_split("0.7,0.1,0.2"))
    return {"seconds": time.perf_counter() - start}


def stage_export(work: Path, size: str) -> dict[str, Any]:
    from kt_cli.datasets.splits import ensure_split, export_for_recbole, parse_split
    from kt_cli.store import Store

    start = time.perf_counter()
    with Store.open(_store(work, size)) as store:
        export_for_recbole(store, ensure_split(store, f"syn{size}", parse_split("0.7,0.1,0.2")))
    return {"seconds": time.perf_counter() - start}


def _session(work: Path, size: str, model: str, seed: int = 1, eval_users: int = 256):
    """A run's working set as kt train builds it; RecBole's full-sort dataloaders batch ``eval_users`` users."""
    from kt_cli.store import Store
    from kt_cli.training.config import TrainConfig
    from kt_cli.training.session import Session, read_inputs

    start = time.perf_counter()
    with Store.open(_store(work, size)) as store:
        items = store.dataset(f"syn{size}").n_items + 1  # RecBole counts its padding item
        config = TrainConfig(f"syn{size}", model, seed=seed, recbole={"eval_batch_size": eval_users * items})
        inputs = read_inputs(store, config)
    session = Session(config, inputs, work / f"run-{size}-{model}-{seed}")
    session.attach_knowledge()
    return session, time.perf_counter() - start


def stage_session(work: Path, size: str, seed: int) -> dict[str, Any]:
    """Building a run's session (MultVAE's) in this fresh process, as every kt train and kt eval does: the first
    of a split builds RecBole's dataset and caches it, a later one reads it."""
    return {"seconds": _session(work, size, "multvae", seed=seed)[1]}


def stage_epoch(work: Path, size: str, model: str, epochs: int, recbole: bool) -> dict[str, Any]:
    """Training epochs of kt's loop and, if ``recbole``, of RecBole's trainer on twin sessions with an A/A control
    (bench/epochs.py)."""
    return twin_epochs(lambda: _session(work, size, model)[0], epochs, recbole)


def stage_eval(work: Path, size: str, model: str, side: str) -> dict[str, Any]:
    """Full-ranking test evaluation of one freshly seeded model by kt or by RecBole (256 users a batch)."""
    import torch

    torch.set_num_threads(1)
    session, _ = _session(work, size, model)
    if side == "kt":
        start = time.perf_counter()
        session.evaluate(session.truth(2), [10, 20])
        return {"seconds": time.perf_counter() - start}
    from recbole.trainer import Trainer

    start = time.perf_counter()
    Trainer(session.parts.config, session.model).evaluate(session.parts.eval_data[1], load_best_model=False,
                                                           show_progress=False)
    return {"seconds": time.perf_counter() - start}


def stage_compare(work: Path, size: str) -> dict[str, Any]:
    """Two short MultVAE runs evaluated, then kt compare over them (the part timed)."""
    from kt_cli.evaluation.compare import compare_runs
    from kt_cli.evaluation.evaluate import evaluate_run
    from kt_cli.store import Store
    from kt_cli.training.config import TrainConfig
    from kt_cli.training.trainer import train

    store = _store(work, size)
    for seed in (1, 2):
        train(store, TrainConfig(f"syn{size}", "multvae", seed=seed, distill_epochs=1, finetune_epochs=0),
              f"cmp-s{seed}")
        evaluate_run(store, f"cmp-s{seed}")
    start = time.perf_counter()
    with Store.open(store) as db:
        compare_runs(db, ["cmp-s1", "cmp-s2"])
    return {"seconds": time.perf_counter() - start}


def stage_batch(work: Path, size: str, users: int = BATCH_USERS) -> dict[str, Any]:
    """Write a profile request per user (100,000), make a results file of them, import it."""
    from kt_cli.datasets.registry import register_dataset
    from kt_cli.profiles.batch import import_batch_file, write_batch_file
    from kt_cli.profiles.generate import ProfileJob
    from kt_cli.profiles.prompts import load_template
    from kt_cli.store import Store

    folder = synthetic(work / "data", "synbatch", users * 20, users=users)
    store_path = work / f"scale-batch-{users}.duckdb"
    _remove_store(store_path)  # a rerun writes every request again
    job = ProfileJob("synbatch", "user", load_template("user", domain="movies"), "qwen2.5-coder-1.5b", "openai")
    requests, results = work / "requests.jsonl", work / "results.jsonl"
    with Store.open(store_path) as store:
        register_dataset(store, "synbatch", folder)
        start = time.perf_counter()
        written = write_batch_file(store, job, requests)
        write_seconds = time.perf_counter() - start
        with open(requests) as src, open(results, "w") as out:
            for n, line in enumerate(src):
                key = json.loads(line)["custom_id"]
                out.write(json.dumps({"id": f"batch_req_{n}", "custom_id": key, "error": None, "response": {
                    "status_code": 200, "request_id": f"req_{n}", "body": {"choices": [{"message": {
                        "role": "assistant", "content": f"A viewer who likes films of kind {n % 97}."},
                        "finish_reason": "stop"}], "usage": {"prompt_tokens": 300, "completion_tokens": 40}}}}) + "\n")
        start = time.perf_counter()
        report = import_batch_file(store, job, results)
        import_seconds = time.perf_counter() - start
    return {"seconds": write_seconds + import_seconds, "write_seconds": write_seconds,
            "import_seconds": import_seconds, "requests": written.written, "stored": report.stored}


STAGES = {"generate": stage_generate, "register": stage_register, "split": stage_split, "export": stage_export,
          "session": stage_session, "epoch": stage_epoch, "eval": stage_eval, "compare": stage_compare,
          "batch": stage_batch}


# ---------------------------------------------------------------------------------------------- driver
def run_stage(work: Path, stage: str, size: str, **kwargs: Any) -> dict[str, Any]:
    """One stage in a fresh process: its result, wall seconds of the process and peak RSS in MB."""
    args = [sys.executable, __file__, "--child", stage, "--work", str(work), "--sizes", size,
            "--kwargs", json.dumps(kwargs)]
    start = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"stage {stage} {size} {kwargs} failed (status {status})")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(process_seconds=time.perf_counter() - start, peak_mb=usage.ru_maxrss / 1024)
    print(stage, size, kwargs, json.dumps({k: round(v, 2) if isinstance(v, float) else v
                                          for k, v in result.items()}), flush=True)
    return result


def measure(work: Path, size: str, quick: bool, stages: set[str] | None = None) -> dict[str, Any]:
    """Every stage's figures at ``size``, or only those of ``stages`` (first words: register, epoch, eval, ...)."""
    big = size == "10M"
    epochs = 1 if quick else 3 if big else 7  # medians of 7 rounds: one of 3 swung kt/RecBole 0.98-1.14

    def session() -> dict[str, Any]:
        first = run_stage(work, "session", size, seed=1)
        return {**run_stage(work, "session", size, seed=2), "first_seconds": first["seconds"]}

    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "register": lambda: (run_stage(work, "generate", size), run_stage(work, "register", size))[1],
        "split": lambda: run_stage(work, "split", size), "export": lambda: run_stage(work, "export", size),
        "session": session}
    for model in MODELS:
        steps[f"epoch {model}"] = partial(run_stage, work, "epoch", size, model=model, epochs=epochs, recbole=not big)
        for side in ("kt",) if big else ("kt", "recbole"):
            steps[f"eval {model} {side}"] = partial(run_stage, work, "eval", size, model=model, side=side)
    if not big:
        for side in ("kt", "recbole"):
            steps[f"eval neumf {side}"] = partial(run_stage, work, "eval", size, model="neumf", side=side)
        steps["compare"] = partial(run_stage, work, "compare", size)
    return {key: step() for key, step in steps.items() if stages is None or key.split()[0] in stages}


def targets(results: dict[str, dict[str, Any]], batch: dict[str, Any]) -> list[str]:
    """The issue's targets against the figures: each line says met or missed, with the number."""
    def mark(ok: bool) -> str:
        return "met" if ok else "**missed**"

    lines = ["## Targets", ""]
    one = results.get("1M")
    if one:
        for model in MODELS:
            f = one[f"epoch {model}"]
            ratio = f["kt_seconds"] / f["recbole_seconds"]
            lines.append(f"- 1M, {model} training epoch within 1.05x of RecBole's trainer: {ratio:.2f}x, "
                         f"{mark(ratio <= 1.05)}" + (f" (A/A controls, each loop against its twin: RecBole "
                         f"{f['control_ratio']:.2f}x, kt {f['kt_twin_ratio']:.2f}x; single rounds kt/RecBole "
                         f"{spread(f['kt_round_ratios'])}, RecBole/RecBole {spread(f['control_round_ratios'])})"
                         if "control_ratio" in f else "") + ".")
            kt_side, rb_side = one[f"eval {model} kt"]["seconds"], one[f"eval {model} recbole"]["seconds"]
            lines.append(f"- 1M, {model} full-ranking evaluation at least as fast as RecBole's (256 users a batch): "
                         f"{kt_side:.2f} s against {rb_side:.2f} s, {mark(kt_side <= rb_side)}.")
        peak = one["eval neumf kt"]["peak_mb"] / one["eval neumf recbole"]["peak_mb"]
        lines.append(f"- 1M, NeuMF evaluation peak memory within 1.5x of RecBole's: {peak:.2f}x, {mark(peak <= 1.5)}.")
        session = one["session"]["seconds"]
        lines.append(f"- 1M, session build under 3 s (dataset cached): {session:.2f} s, {mark(session < 3)} (first "
                     f"build, which makes the cache: {one['session']['first_seconds']:.2f} s).")
    ten = results.get("10M")
    if ten:
        worst = max(f["peak_mb"] for f in ten.values() if isinstance(f, dict) and "peak_mb" in f)
        lines.append("- 10M completes for BPR and MultVAE on 2 cores and 24 GB: it did; epochs "
                     + ", ".join(f"{m} {ten[f'epoch {m}']['kt_seconds']:.0f} s" for m in MODELS)
                     + f"; highest stage peak {worst / 1024:.1f} GB.")
    both = batch["write_seconds"] + batch["import_seconds"]
    lines += [f"- {batch['requests']:,} batch requests written and imported in under 60 s: {both:.1f} s, "
              f"{mark(both < 60)}.", ""]
    return lines


def _note(figure: dict[str, Any]) -> str:
    """A row's own remark (remeasured on another day, measured another way), in brackets after its name."""
    return f" ({figure['note']})" if "note" in figure else ""


def report(results: dict[str, dict[str, Any]], batch: dict[str, Any] | None) -> list[str]:
    lines = ["# Scale: kt's stages on synthetic data at 100k, 1M and 10M interactions", "",
             "Generated by `python bench/scale.py` from docs/scale.json (2 cores, one thread a stage, nothing else "
             "running); do not edit by hand. Each stage is its own process: seconds of the stage's own work, and the "
             "process's peak memory. Training epochs: medians over rounds in which two twins of kt's loop and two of "
             "RecBole's trainer each run once, in rotated order; RecBole's twin against RecBole is the A/A control, "
             "the noise floor of the ratio.", "",
             "Data: " + __doc__.split("\n\n")[1].replace("\n", " "), ""]
    for size, figures in results.items():
        reg = figures["register"]
        lines += [f"## {size}: {reg['interactions']:,} interactions, {reg['users']:,} users, {reg['items']:,} items",
                  "", f"Measured {figures['measured']['date']} "
                  f"({figures['measured']['wall_seconds'] / 60:.0f} min wall).",
                  "", "| stage | kt seconds | RecBole seconds | kt / RecBole | kt peak MB | RecBole peak MB |",
                  "|---|---|---|---|---|---|"]
        for stage in ("register", "split", "export", "session"):
            f = figures[stage]
            extra = f" (first: {f['first_seconds']:.2f}, builds RecBole's dataset)" if "first_seconds" in f else ""
            lines.append(f"| {stage}{extra}{_note(f)} | {f['seconds']:.2f} | - | - | {f['peak_mb']:.0f} | - |")
        for model in MODELS:
            f = figures[f"epoch {model}"]
            rb, control = f.get("recbole_seconds"), f.get("control_ratio")
            lines.append(f"| {model} training epoch{_note(f)} | {f['kt_seconds']:.2f} | " + (
                f"{rb:.2f} | {f['kt_seconds'] / rb:.2f}" + (f" (A/A control {control:.2f})" if control else "")
                + " |" if rb else "- | - |") + f" {f['peak_mb']:.0f} | - |")
        for model in MODELS + ("neumf",):
            kt_side, rb_side = figures.get(f"eval {model} kt"), figures.get(f"eval {model} recbole")
            if kt_side is None:
                continue
            ratio = f"{kt_side['seconds'] / rb_side['seconds']:.2f}" if rb_side else "-"
            lines.append(f"| {model} full-ranking test evaluation{_note(kt_side)} | {kt_side['seconds']:.2f} | "
                         + (f"{rb_side['seconds']:.2f}" if rb_side else "-") + f" | {ratio} | {kt_side['peak_mb']:.0f} | "
                         + (f"{rb_side['peak_mb']:.0f}" if rb_side else "-") + " |")
        if "compare" in figures:
            lines.append(f"| compare (2 runs, paired tests){_note(figures['compare'])} | {figures['compare']['seconds']:.2f} | - | - | "
                         f"{figures['compare']['peak_mb']:.0f} | - |")
        lines.append("")
    if batch:
        lines += ["## Batch inference files", "", f"Measured {batch['measured']['date']}.", "",
                  f"{batch['requests']:,} profile requests (one per user) written in {batch['write_seconds']:.1f} s "
                  f"and their results imported in {batch['import_seconds']:.1f} s ({batch['stored']:,} answers stored; "
                  f"peak {batch['peak_mb']:.0f} MB). Target: under 60 s together.", ""]
        lines += targets(results, batch)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100k,1M,10M")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "scale-data")
    parser.add_argument("--quick", action="store_true", help="one timed epoch, no docs")
    parser.add_argument("--stages", help="remeasure only these stages of the sizes (e.g. register), merged into "
                        "docs/scale.json and marked with their date; the others keep their figures")
    parser.add_argument("--child", choices=sorted(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--kwargs", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.child:
        print(json.dumps(STAGES[args.child](args.work, args.sizes, **json.loads(args.kwargs))))
        return
    sizes = args.sizes.split(",")
    if unknown := set(sizes) - set(SIZES):
        parser.error(f"unknown size(s) {', '.join(sorted(unknown))}; choose from {', '.join(SIZES)}")
    raw = ROOT / "docs" / "scale.json"
    saved = {} if args.quick or not raw.exists() else json.loads(raw.read_text())
    results = saved.get("sizes", {})
    stages = set(args.stages.split(",")) if args.stages else None
    if stages and (unknown := stages - {"register", "split", "export", "session", "epoch", "eval", "compare", "batch"}):
        parser.error(f"unknown stage(s) {', '.join(sorted(unknown))}")
    today = time.strftime("%Y-%m-%d")
    if stages and (absent := [size for size in sizes if size not in results]):
        parser.error(f"--stages remeasures stages of a size docs/scale.json has; measure {', '.join(absent)} whole "
                     "first (without --stages or --quick)")
    for size in sizes:
        started = time.perf_counter()
        figures = measure(args.work, size, args.quick, stages)
        if stages is None:
            results[size] = figures | {"measured": {"date": today, "wall_seconds": time.perf_counter() - started}}
        else:  # the size's other figures stay as they were measured
            results[size] |= {key: f | {"note": f"remeasured {today} on its own"} for key, f in figures.items()}
    if stages is None or "batch" in stages:
        batch = run_stage(args.work, "batch", "batch", users=2_000 if args.quick else BATCH_USERS)
        batch["measured"] = {"date": today}
    else:
        batch = saved["batch"]
    ordered = {size: results[size] for size in SIZES if size in results}
    lines = report(ordered, batch)
    print("\n".join(lines))
    if not args.quick:
        raw.write_text(json.dumps({"sizes": ordered, "batch": batch}, indent=1) + "\n")
        if len(ordered) == len(SIZES):
            (ROOT / "docs" / "scale.md").write_text("\n".join(lines) + "\n")
            print("wrote docs/scale.json and docs/scale.md")


if __name__ == "__main__":
    main()
