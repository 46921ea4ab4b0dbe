"""Evaluation settings: light enough to import when the CLI starts (no torch)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from kt_cli.errors import UsageError

_SAMPLED = re.compile(r"^(uni|pop)(\d+)$")
METRICS = ("ndcg", "hit", "recall", "mrr", "precision")  # what kt's ranking evaluation computes per user


def parse_metric(text: str, option: str = "--valid-metric") -> tuple[str, int]:
    """``ndcg@10`` -> ("ndcg", 10); an unknown metric or a cut-off that is not a positive whole number is a
    usage error listing the valid names."""
    metric, _, k = text.strip().lower().partition("@")
    if metric not in METRICS or not k.isdigit() or int(k) < 1:
        raise UsageError(f"{option} must be METRIC@K with METRIC one of {', '.join(METRICS)} and K a positive "
                         f"whole number (e.g. ndcg@10), not '{text}'.")
    return metric, int(k)


def parse_mode(mode: str) -> tuple[str, int]:
    """``full`` -> ("full", 0); ``uni100`` -> ("uni", 100); anything else is a usage error."""
    mode = mode.strip().lower()
    if mode == "full":
        return "full", 0
    match = _SAMPLED.match(mode)
    if not match or int(match.group(2)) < 1:
        raise UsageError(f"--mode must be 'full', 'uniN' or 'popN' with N at least 1 (e.g. uni100), not '{mode}'.")
    return match.group(1), int(match.group(2))


def parse_ks(text: str) -> tuple[int, ...]:
    """``"5,10,20"`` -> (5, 10, 20)."""
    try:
        return tuple(int(k) for k in text.split(","))
    except ValueError as e:
        raise UsageError(f"--k takes cut-offs like 5,10,20, not '{text}'.") from e


PARTS = {"valid": 1, "test": 2}
TAIL_BELOW = 5  # the long-tail item slice: fewer training interactions than this (and at least one)
ITEM_SLICES = ("cold", "warm", f"tail<{TAIL_BELOW}")  # ranking runs' item slices (tasks/ranking.py)


@dataclass(frozen=True)
class EvalSettings:
    """How a run is evaluated; part of the stored result's key."""

    ks: tuple[int, ...] = (5, 10, 20)
    mode: str = "full"
    part: str = "test"
    sparse_below: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        parse_mode(self.mode)
        object.__setattr__(self, "mode", self.mode.strip().lower())
        if self.part not in PARTS:
            raise UsageError(f"--part must be 'valid' or 'test', not '{self.part}'.")
        if self.sparse_below < 1:
            raise UsageError(f"--sparse-below must be at least 1, got {self.sparse_below}.")
        if not self.ks or min(self.ks) < 1:
            raise UsageError(f"--k needs positive cut-offs such as 5,10,20, got {self.ks}.")

    def to_dict(self) -> dict:
        return {**asdict(self), "ks": sorted(self.ks)}

    def key(self, task: str) -> dict:
        """The stored evaluation's key: CTR metrics take no cut-off and draw nothing, so ``ks`` and ``seed``
        are left out of a CTR run's key (any --k finds its evaluation)."""
        if task == "ctr":
            return {"mode": self.mode, "part": self.part, "sparse_below": self.sparse_below}
        return self.to_dict()


