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


def _default_profiles_cache() -> Path:
    """The repository's profiles_cache/ for a source checkout, else ./profiles_cache."""
    beside_package = Path(__file__).resolve().parents[2] / "profiles_cache"
    return beside_package if beside_package.is_dir() else Path("profiles_cache")


ProfilesCache = Annotated[Path, typer.Option(
    "--profiles-cache", envvar="KT_PROFILES_CACHE", show_default="the checkout's profiles_cache/",
    help="Folder of shareable profile files read before any LLM call.")]
DEFAULT_PROFILES_CACHE = _default_profiles_cache()
Entity = Annotated[str, typer.Option("--entity", help="Whose profiles or vectors: user or item.")]
