"""What every task's evaluation returns, and the slices its aggregates are stored for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from kt_cli.evaluation.settings import EvalSettings


class Task:
    """What every task shares: how a hooked layer's tensor becomes one row per training sample (LLM-KT)."""

    def rows(self, hidden: torch.Tensor, batch, parts) -> torch.Tensor:
        """The hooked tensor as one row per batch record: as captured, for tasks whose models see one row each."""
        return hidden


@dataclass(frozen=True)
class EvalTables:
    """One evaluation: per-user values (user_id, n_train, metric, k, value), aggregates (slice, metric, k,
    value, n_users) and, for CTR, every scored sample (user_id, item_id, label, score)."""

    per_user: pd.DataFrame
    aggregates: pd.DataFrame
    samples: pd.DataFrame | None


def sparse_slice(below: int) -> str:
    return f"n_train<{below}"


def aggregate(metric: str, k: int, value: Callable[[np.ndarray], float | None], sparse: np.ndarray,
              settings: EvalSettings) -> list[dict]:
    """Aggregate rows for all users and the sparse slice; ``value(mask)`` computes the metric over a mask."""
    return [{"slice": name, "metric": metric, "k": k, "value": value(mask) if mask.any() else None,
             "n_users": int(mask.sum())}
            for name, mask in (("all", np.ones_like(sparse)), (sparse_slice(settings.sparse_below), sparse))]
