"""``kt eval``: score runs on the held-out split; per-user values are stored for ``compare``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, note, table
from kt_cli.errors import MissingInputError, UsageError
from kt_cli.evaluation.settings import EvalSettings, parse_ks

EXPORTS = (".csv", ".parquet")


def eval_runs(
    runs: Annotated[list[str], typer.Argument(help="Run names (see kt runs).")],
    k: Annotated[str, typer.Option("--k", help="Cut-offs, comma-separated.")] = "5,10,20",
    mode: Annotated[str, typer.Option(help="full (rank all items), uni100 or pop100 (sampled).")] = "full",
    part: Annotated[str, typer.Option(help="test or valid.")] = "test",
    sparse_below: Annotated[int, typer.Option(help="Sparse slice: users with fewer training interactions.")] = 20,
    seed: options.Seed = 0,
    per_user: Annotated[Optional[Path], typer.Option(
        "--per-user", help="Also write every user's value (run, slice, user_id, n_train, metric, k, value) to this "
                           ".csv or .parquet file.")] = None,
    force: options.Force = False,
    threads: options.Threads = 1,
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """Evaluate runs, for all users and the sparse slice: ranking runs by NDCG, Hit, Recall, MRR, Precision at each
    K; CTR runs by AUC (with a bootstrap interval over users), GAUC and LogLoss on their labelled samples."""
    from kt_cli.evaluation.compare import ordered_labels
    from kt_cli.store import Store

    settings = EvalSettings(ks=parse_ks(k), mode=mode, part=part, sparse_below=sparse_below, seed=seed)
    if per_user is not None:
        if per_user.suffix not in EXPORTS:
            raise UsageError(f"--per-user takes a file ending in {' or '.join(EXPORTS)}, not '{per_user}'.")
        try:  # a path that cannot be written fails now, not after the evaluation
            per_user.parent.mkdir(parents=True, exist_ok=True)
            per_user.with_name(per_user.name + ".partial").touch()
        except OSError as e:
            raise UsageError(f"--per-user {per_user} cannot be written ({e.strerror}); choose another path.") from e
    with Store.open(store, create=False) as db:  # a mistyped name is reported before torch loads
        unknown = [run for run in runs if db.run(run) is None]
        if unknown:
            raise MissingInputError(f"There is no run named '{unknown[0]}'. Runs: {', '.join(db.run_names()) or 'none'}.",
                                    f"kt train ... --name {unknown[0]}")
    from kt_cli.evaluation.evaluate import evaluate_run  # torch and RecBole: only when evaluating

    try:
        results = [evaluate_run(store, run, settings, threads=threads, force=force) for run in runs]
    finally:  # the probe file of --per-user's path check never outlives a failed evaluation
        if per_user is not None:
            per_user.with_name(per_user.name + ".partial").unlink(missing_ok=True)
    if per_user is not None:
        _export(store, [r.eval_id for r in results], runs, per_user)
    if json:
        return emit_json([{"run": r.run, "task": r.task, "cached": r.cached, "metrics": r.metrics.to_dict(orient="records")}
                          for r in results])
    for result in results:
        ctr = result.task == "ctr"
        wide = result.metrics.assign(label=result.metrics["metric"] if ctr else
                                     result.metrics["metric"] + "@" + result.metrics["k"].astype(str))
        slices = list(dict.fromkeys(wide["slice"]))
        pivot = wide.pivot(index="label", columns="slice", values="value")
        users = wide.groupby("slice")["n_users"].first()
        table(["metric"] + [f"{s} ({users[s]} users)" for s in slices],
              [[label] + [pivot.loc[label, s] for s in slices] for label in ordered_labels(pivot.index)],
              title=f"{result.run}: {part} split, " + ("labelled samples (CTR; auc_ci95: bootstrap over users)"
                                                       if ctr else f"{mode} ranking")
              + (" (stored)" if result.cached else ""))
    note("Compare runs with: kt compare " + " ".join(runs))


def _export(store: Path, eval_ids: list[str], runs: list[str], path: Path) -> None:
    """Every user's values of these evaluations in one long table, for analysis outside kt."""
    from kt_cli.store import Store

    import pandas as pd

    with Store.open(store, create=False) as db:
        frame = pd.concat([db.eval_users(e).assign(run=run) for e, run in zip(eval_ids, runs)], ignore_index=True)
    frame = frame[["run", "slice", "user_id", "n_train", "metric", "k", "value"]]
    partial = path.with_name(path.name + ".partial")
    if path.suffix == ".parquet":
        frame.to_parquet(partial, index=False)
    else:
        frame.to_csv(partial, index=False)
    partial.replace(path)
    note(f"Wrote {len(frame)} per-user values of {len(runs)} run(s) to {path}.")
