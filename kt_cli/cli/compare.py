"""``kt compare``: metrics by runs, delta % against the first run, paired significance over users."""

import csv
import io
from typing import Annotated, Optional

import typer

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, stdout, table
from kt_cli.errors import UsageError
from kt_cli.evaluation.compare import ALPHA, Comparison, compare_runs
from kt_cli.evaluation.settings import EvalSettings, parse_ks
from kt_cli.store import Store

FORMATS = ("table", "markdown", "csv", "json")


def _cell(cell, first: bool) -> str:
    if first:
        return f"{cell.value:.4f}"
    delta = f"{cell.delta_pct:+.1f}%" if cell.delta_pct is not None else "n/a"
    return f"{cell.value:.4f} ({delta}{' *' if cell.significant else ''})"


def _rows(result: Comparison) -> list[list[str]]:
    return [[label] + [_cell(c, i == 0) for i, c in enumerate(cells)] + [f"{c.p_value:.3g}" for c in cells[1:]]
            for label, cells in result.rows.items()]


def _p_headers(runs: list[str]) -> list[str]:
    """One p-value column per compared run, named after it when there are several."""
    return ["p-value"] if len(runs) == 2 else [f"p {run}" for run in runs[1:]]


def _header(result: Comparison) -> list[str]:
    return ["metric"] + result.runs + _p_headers(result.runs)


def _caption(result: Comparison) -> str:
    return (f"{result.dataset}, split {result.split_id}, {result.settings['part']} "
            f"({result.settings['mode']}), {result.slice}: {result.n_users} users; paired {result.test} "
            f"vs {result.runs[0]}, * = p < {ALPHA}")


def show(result: Comparison) -> None:
    """The comparison as a terminal table (kt compare's default, and kt demo's ending)."""
    table(_header(result), _rows(result), title=_caption(result))


def as_json(result: Comparison) -> dict:
    return {**result.__dict__, "rows": {k: [c.__dict__ for c in v] for k, v in result.rows.items()}}


def compare(
    runs: Annotated[list[str], typer.Argument(help="Runs to compare; the first is the reference.")],
    format: Annotated[str, typer.Option("--format", help="table, markdown, csv or json.")] = "table",
    test: Annotated[str, typer.Option(help="Paired test over users: ttest or bootstrap.")] = "ttest",
    max_train: Annotated[Optional[int], typer.Option(
        help="Only users with fewer training interactions (e.g. 20 for sparse users).")] = None,
    metrics: Annotated[Optional[str], typer.Option(help="Only these metrics, e.g. ndcg,recall.")] = None,
    k: Annotated[str, typer.Option("--k", help="Cut-offs the runs were evaluated with.")] = "5,10,20",
    mode: Annotated[str, typer.Option(help="Evaluation mode the runs were evaluated with.")] = "full",
    part: Annotated[str, typer.Option(help="Split part the runs were evaluated on.")] = "test",
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """Compare evaluated runs side by side; '*' marks a difference significant at 0.05."""
    format = "json" if json else format
    if format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not '{format}'.")
    with Store.open(store) as db:
        result = compare_runs(db, runs, EvalSettings(ks=parse_ks(k), mode=mode, part=part), test=test,
                              max_train=max_train,
                              metrics=metrics.split(",") if metrics else None)
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
        writer.writerow(["metric", "run", "value", "delta_pct", "p_value", "significant"])
        for label, cells in result.rows.items():
            for run, c in zip(result.runs, cells):
                writer.writerow([label, run, c.value, c.delta_pct, c.p_value, c.significant])
        stdout.print(buffer.getvalue(), end="", markup=False, highlight=False)
