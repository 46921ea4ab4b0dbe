"""``kt compare``: metrics by runs (or groups over seeds), delta % against the first, significance tests."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, stdout, table
from kt_cli.errors import UsageError
from kt_cli.evaluation.settings import EvalSettings, parse_ks

if TYPE_CHECKING:
    from kt_cli.evaluation.compare import Cell, Comparison

FORMATS = ("table", "markdown", "csv", "json")


def _value(cell: Cell) -> str:
    return f"{cell.value:.4f}" + (f" ± {cell.std:.4f}" if cell.std is not None else "")


def _cell(cell: Cell, first: bool) -> str:
    if first:
        return _value(cell)
    delta = f"{cell.delta_pct:+.1f}%" if cell.delta_pct is not None else "n/a"
    return f"{_value(cell)} ({delta}{' *' if cell.significant else ''})"


def _p(cell: Cell, grouped: bool) -> list[str]:
    users = f"{cell.p_value:.3g}" if cell.p_value or cell.ci95 is None else "<1e-4"  # bootstrap resolution
    if cell.ci95 is not None:
        users += f" [{cell.ci95[0]:+.4f}, {cell.ci95[1]:+.4f}]"
    if not grouped:
        return [users]
    return [users, f"{cell.p_seeds:.3g}" if cell.p_seeds is not None else "-"]


def _rows(result: Comparison) -> list[list[str]]:
    return [[label] + [_cell(c, i == 0) for i, c in enumerate(cells)]
            + [p for c in cells[1:] for p in _p(c, result.grouped)]
            for label, cells in result.rows.items()]


def _p_headers(result: Comparison) -> list[str]:
    """p-value columns per compared run or group, named after it when there are several."""
    kinds = ["p users", "p seeds"] if result.grouped else ["p-value"]
    if result.test.startswith("bootstrap"):
        kinds[0] += " [95% CI of diff]"
    others = result.runs[1:]
    return kinds if len(others) == 1 else [f"{kind} {run}" for run in others for kind in kinds]


def _header(result: Comparison) -> list[str]:
    return ["metric"] + result.runs + _p_headers(result)


def _caption(result: Comparison) -> str:
    from kt_cli.evaluation.compare import ALPHA
    groups = ""
    if result.grouped:
        sizes = ", ".join(f"{label}: {len(runs)} run{'s' if len(runs) != 1 else ''}"
                          for label, runs in result.members.items())
        groups = (f"; groups ({sizes}) show mean ± std over their runs, 'p users' tests each user's value averaged "
                  "over the runs, 'p seeds' is Welch's t-test over run means")
    correction = "" if result.correction == "none" else \
        f"; p adjusted by {result.correction} over the {len(result.rows)} metrics"
    scored = "labelled samples" if result.task == "ctr" else result.settings["mode"]
    return (f"{result.dataset}, split {result.split} ({result.split_id}), {result.settings['part']} "
            f"({scored}), {result.slice}: {result.n_users} users; paired {result.test} "
            f"vs {result.runs[0]}{correction}, * = {'p users and p seeds both' if result.grouped else 'p-value'} < "
            f"{ALPHA}{groups}")


def show(result: Comparison) -> None:
    """The comparison as a terminal table (kt compare's default, and kt demo's ending)."""
    table(_header(result), _rows(result), title=_caption(result))


def as_json(result: Comparison) -> dict:
    return {**result.__dict__, "rows": {k: [c.__dict__ for c in v] for k, v in result.rows.items()}}


def compare(
    runs: Annotated[list[str], typer.Argument(
        help="Runs to compare; the first is the reference. A quoted glob ('base-s*') is a group of runs over "
             "seeds, shown as mean ± std with a test over seeds too.")],
    format: Annotated[str, typer.Option("--format", help="table, markdown, csv or json.")] = "table",
    test: Annotated[Optional[str], typer.Option(
        help="Paired test over users for ranking runs: ttest (default) or bootstrap (adds a 95% interval). CTR "
             "runs: always a bootstrap over users.")] = None,
    correct: Annotated[str, typer.Option(
        help="Adjust p-values for testing several metrics at once: holm (family-wise error), bh (false "
             "discovery rate) or none.")] = "holm",
    max_train: Annotated[Optional[int], typer.Option(
        help="Only users with fewer training interactions (e.g. 20 for sparse users).")] = None,
    metrics: Annotated[Optional[str], typer.Option(help="Only these metrics, e.g. ndcg,recall.")] = None,
    item_slice: Annotated[str, typer.Option("--slice", help="Ranking runs: all held-out items, or only cold (no "
                                            "training interaction), warm, or tail<5 items.")] = "all",
    k: Annotated[str, typer.Option("--k", help="Cut-offs to show (an evaluation at 5,10,20 holds 10).")] = "5,10,20",
    mode: Annotated[str, typer.Option(help="Evaluation mode the runs were evaluated with.")] = "full",
    part: Annotated[str, typer.Option(help="Split part the runs were evaluated on.")] = "test",
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """Compare evaluated runs side by side; '*' marks a difference significant at 0.05 after adjustment."""
    from kt_cli.evaluation.compare import compare_runs
    from kt_cli.store import Store

    format = "json" if json else format
    if format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not '{format}'.")
    with Store.open(store, create=False) as db:
        result = compare_runs(db, runs, EvalSettings(ks=parse_ks(k), mode=mode, part=part), test=test,
                              max_train=max_train, correct=correct, item_slice=item_slice,
                              metrics=[m.strip().lower() for m in metrics.split(",")] if metrics else None)
    if format == "json":
        return emit_json(as_json(result))
    if format == "table":
        return show(result)
    header, caption = _header(result), _caption(result)
    if format == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in _rows(result)]
        stdout.print("\n".join(lines) + f"\n\n{caption}", markup=False, highlight=False)
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["metric", "run", "value", "std", "delta_pct", "p_value", "p_seeds", "significant"])
        for label, cells in result.rows.items():
            for run, c in zip(result.runs, cells):
                writer.writerow([label, run, c.value, c.std, c.delta_pct, c.p_value, c.p_seeds, c.significant])
        stdout.print(buffer.getvalue(), end="", markup=False, highlight=False)
