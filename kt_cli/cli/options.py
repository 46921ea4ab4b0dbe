"""Options shared by several commands, declared once so names and help read the same everywhere."""

from pathlib import Path
from typing import Annotated

import typer

Store = Annotated[
    Path,
    typer.Option("--store", envvar="KT_STORE", help="The DuckDB store every stage reads and writes."),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout; no progress output.")]
Dataset = Annotated[str, typer.Option("--dataset", "-d", help="Dataset name (see kt data list).")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same numbers.")]
Threads = Annotated[
    int, typer.Option("--threads", envvar="KT_THREADS", min=1, help="CPU threads for torch (tests use 1).")
]
Force = Annotated[bool, typer.Option("--force", help="Recompute even if a stored result exists.")]

DEFAULT_STORE = Path("kt.duckdb")
