"""Options shared by several commands, declared once so names and help read the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kt_cli.errors import UsageError

if TYPE_CHECKING:
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
Split = Annotated[str, typer.Option(
    "--split", help="Per-user train,valid,test ratios (e.g. 0.7,0.1,0.2), or loo: leave-one-out in time order "
                    "(last rating test, second-last validation).")]
SplitOrder = Annotated[str, typer.Option(
    "--split-order", help="time: each user's ratings in time order, oldest for training (the LLM-KT paper's "
                          "protocol); random: shuffled with --split-seed; global: one timestamp boundary for all.")]
SplitSeed = Annotated[int, typer.Option("--split-seed", help="Seed of a random-order split (separate from --seed).")]
History = Annotated[str, typer.Option(
    "--history", help="Ratings a prompt or history text shows: train (the training part of --split/--split-seed, "
                      "so nothing a model is validated or tested on) or all (every rating, as the reference did; "
                      "the shipped ml-100k profiles were made so).")]
HISTORIES = ("train", "all")


def history_rules(history: str, split: str, order: str, seed: int, **thresholds: float) -> HistoryRules:
    """``--history`` and the split options as the rules prompts and history texts are built with."""
    from kt_cli.datasets.splits import parse_split  # pandas: not at start-up (kt --help)
    from kt_cli.profiles.prompts import HistoryRules
    if history not in HISTORIES:
        raise UsageError(f"--history must be one of {', '.join(HISTORIES)}, not '{history}'.")
    return HistoryRules(**thresholds, split=parse_split(split, order, seed) if history == "train" else None)
