"""Options shared by several commands, declared once so names and help read the same everywhere."""

from pathlib import Path
from typing import Annotated

import typer

from kt_cli.datasets.splits import SplitSpec
from kt_cli.errors import UsageError
from kt_cli.profiles.prompts import HistoryRules

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
Split = Annotated[str, typer.Option("--split", help="Per-user random train,valid,test ratios.")]
SplitSeed = Annotated[int, typer.Option("--split-seed", help="Seed of the split (separate from --seed).")]
History = Annotated[str, typer.Option(
    "--history", help="Ratings a prompt or history text shows: train (the training part of --split/--split-seed, "
                      "so nothing a model is validated or tested on) or all (every rating, as the reference did; "
                      "the shipped ml-100k profiles were made so).")]
HISTORIES = ("train", "all")


def split_spec(ratios: str, seed: int) -> SplitSpec:
    """``0.7,0.1,0.2`` and a seed as a split."""
    try:
        parts = tuple(float(x) for x in ratios.split(","))
    except ValueError as e:
        raise UsageError(f"--split takes three ratios like 0.7,0.1,0.2, not '{ratios}'.") from e
    if len(parts) != 3:
        raise UsageError(f"--split takes three ratios like 0.7,0.1,0.2, not '{ratios}'.")
    return SplitSpec(parts, seed)  # type: ignore[arg-type]


def history_rules(history: str, ratios: str, seed: int, **thresholds: float) -> HistoryRules:
    """``--history`` and the split options as the rules prompts and history texts are built with."""
    if history not in HISTORIES:
        raise UsageError(f"--history must be one of {', '.join(HISTORIES)}, not '{history}'.")
    return HistoryRules(**thresholds, split=split_spec(ratios, seed) if history == "train" else None)
