"""``kt sweep``: a grid file's configurations x seeds as Ray tasks, stored by this process alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, note, progress_bar, table


def sweep(
    grid: Annotated[Path, typer.Argument(help="YAML grid file: name, train (shared kt train settings), grid "
                                              "(lists to cross), seeds. See docs/sweeps.md.")],
    ray_address: Annotated[Optional[str], typer.Option(
        "--ray-address", envvar="RAY_ADDRESS", help="A Ray cluster (ray://head:10001); default: a local Ray "
                                                    "started in this process.")] = None,
    cpus: Annotated[Optional[int], typer.Option(min=1, help="Local Ray: CPUs it may use [default: all].")] = None,
    retries: Annotated[int, typer.Option(min=0, help="Times a task whose worker died is run again.")] = 2,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the runs and what a sweep would do; "
                                                            "train nothing.")] = False,
    threads: options.Threads = 1,
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """Train every configuration of a grid x seeds as Ray tasks; finished runs are skipped, so a rerun continues."""
    from kt_cli.sweep import plan, read_grid, run_sweep

    runs = read_grid(grid)
    if dry_run:
        todo, skipped = plan(store, runs)
        waiting = {run.name for run in todo}
        if json:
            return emit_json({"runs": [r.name for r in runs], "to_train": sorted(waiting), "finished": skipped})
        return table(["run", "model", "method", "seed", "status"],
                     [[r.name, r.config.model, r.config.method_spec.key, r.config.seed,
                       "to train" if r.name in waiting else "finished"] for r in runs])
    with progress_bar("runs", disable=json) as bar:
        def done(name: str, error: str | None, finished: int, total: int) -> None:
            bar.update(finished, total)
            if error and not json:
                note(f"  {name} failed: {error}")

        report = run_sweep(store, runs, address=ray_address, threads=threads, cpus=cpus, retries=retries,
                           on_done=done)
    summary = {"runs": len(runs), "trained": report.trained, "skipped": report.skipped, "failed": report.failed}
    if json:
        return emit_json(summary)
    note(f"Sweep of {len(runs)} runs: {len(report.trained)} trained, {len(report.skipped)} already finished, "
         f"{len(report.failed)} failed." + (" Rerun the same command to retry the failed ones." if report.failed
                                             else " Next: kt compare over the runs (quote globs: 'NAME-...-s*')."))
