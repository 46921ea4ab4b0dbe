"""Output: data on stdout (a rich table, or one JSON document), everything else on stderr."""

import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)
from rich.text import Text
from rich.table import Table

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)  # an error is one paragraph, not hard-wrapped lines


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def emit_json(data: Any) -> None:
    """One JSON document on stdout: highlighted on a terminal, plain when piped, where rich's highlighting
    and wrapping took 8.6 s of kt recommend's 9.6 s for 943 users and nobody reads the colours."""
    text = json.dumps(_jsonable(data), indent=2)
    if stdout.is_terminal:
        stdout.print_json(text)
    else:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A rich table on stdout. The first column names the thing (a run, a layer, a set) and is never cut
    short on a narrow terminal, because users copy it into their next command; the others fold."""
    cells = [[cell if isinstance(cell, str) else fmt(cell) for cell in row] for row in rows]
    out = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        if i == 0:
            out.add_column(column, no_wrap=True, min_width=max([len(column)] + [len(r[0]) for r in cells]))
        else:
            out.add_column(column, overflow="fold")
    for row in cells:
        out.add_row(*row)
    # Piped or redirected, rich would squeeze the table into 80 columns and fold words ("fini shed"): give
    # it the width it needs instead; a terminal keeps its own width.
    if not stdout.is_terminal:  # print() caps a width at the console's: widen the console itself
        stdout.width = max(Measurement.get(stdout, stdout.options.update(max_width=100_000), out).maximum, 80)
    stdout.print(out)


def note(message: str) -> None:
    """A human-facing line on stderr (never mixed into data on stdout)."""
    stderr.print(message)


class RateColumn(ProgressColumn):
    """Items per second over rich's recent window (blank until there is one)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.2f}/s" if task.speed else "")


class ProgressBar:
    """Count, rate, elapsed time and ETA on stderr (off under --json): the one progress style of kt.

    It appears with the first report of progress, not when the command starts, so an input error raised
    before any work (an unknown dataset or set) prints no empty bar or blank line ahead of its message."""

    def __init__(self, label: str, *, disable: bool) -> None:
        self._progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), RateColumn(),
                                  TimeElapsedColumn(), TimeRemainingColumn(), console=stderr, disable=disable)
        self._task: int | None = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._progress.stop()

    def update(self, done: int, total: int | None) -> None:
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task("", total=total)
        self._progress.update(self._task, completed=done, total=total)


def progress_bar(label: str, *, disable: bool) -> ProgressBar:
    return ProgressBar(label, disable=disable)
