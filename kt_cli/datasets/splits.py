"""Train/validation/test splits, made by kt, stored, and handed to RecBole as pre-split files.

kt splits the data itself (per user, random, seeded) rather than letting RecBole do it inside each
training process: the split is then a stored artifact with an id that every run and evaluation
records, ``compare`` can refuse runs on different splits, and evaluation never has to trust that
RecBole would split the same way twice. The split seed is separate from the training seed, so runs
over several training seeds share one split and can be compared user by user.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kt_cli.datasets.registry import ensure_dataset
from kt_cli.errors import UsageError
from kt_cli.store import Store

PARTS = ("train", "valid", "test")
RECBOLE_DATASET = "kt"  # RecBole's dataset name for exported files; never a RecBole preset name


@dataclass(frozen=True)
class SplitSpec:
    """Per-user random split ratios (train, valid, test) and the seed that draws them."""

    ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)
    seed: int = 42

    def __post_init__(self) -> None:
        if len(self.ratios) != 3 or min(self.ratios) < 0 or abs(sum(self.ratios) - 1) > 1e-6:
            raise UsageError(f"Split ratios must be three non-negative numbers summing to 1, got {self.ratios}.")

    @property
    def label(self) -> str:
        return "/".join(f"{r:g}" for r in self.ratios)


def split_id(dataset_fingerprint: str, spec: SplitSpec) -> str:
    key = f"{dataset_fingerprint}|{spec.label}|{spec.seed}"
    return "s" + hashlib.sha256(key.encode()).hexdigest()[:11]


def assign_parts(interactions: pd.DataFrame, spec: SplitSpec) -> pd.DataFrame:
    """Shuffle each user's interactions and cut them by the ratios (RecBole's per-user rounding).

    Validation and test get ``floor(ratio * n)`` rows, bumped to one when the product is between 0
    and 1 and the user keeps at least one training row; training gets the rest.
    """
    rng = np.random.default_rng(spec.seed)
    frame = interactions[["user_id", "item_id"]].sort_values(["user_id", "item_id"]).reset_index(drop=True)
    frame["_key"] = rng.random(len(frame))
    frame = frame.sort_values(["user_id", "_key"]).reset_index(drop=True)
    rank = frame.groupby("user_id").cumcount().to_numpy()
    n = frame.groupby("user_id")["item_id"].transform("size").to_numpy()
    counts = []
    train = n.copy()
    for ratio in spec.ratios[1:]:
        part = np.floor(ratio * n + 1e-9).astype(int)
        bump = (part == 0) & (ratio * n > 0) & (train - 1 >= 1)
        part = part + bump
        train = train - part
        counts.append(part)
    valid_end = train + counts[0]
    frame["part"] = np.where(rank < train, 0, np.where(rank < valid_end, 1, 2)).astype("int8")
    return frame.drop(columns="_key")


def ensure_split(store: Store, dataset: str, spec: SplitSpec) -> str:
    """Id of the stored split of ``dataset`` under ``spec``, computing it on first use."""
    row = ensure_dataset(store, dataset)
    sid = split_id(row.fingerprint, spec)
    if not store.split_exists(sid):
        rows = assign_parts(store.interactions(dataset), spec)
        store.save_split(sid, dataset, spec.label, spec.seed, rows)
    return sid


def shown_interactions(store: Store, dataset: str, split: SplitSpec | None) -> pd.DataFrame:
    """The interactions a profile prompt or history text may show: those in the training part of ``split``
    (made on first use, the same split kt train uses), or all of them when ``split`` is None."""
    inter = store.interactions(dataset)
    if split is None:
        return inter
    rows = store.split_rows(ensure_split(store, dataset, split))
    train = rows.loc[rows["part"] == 0, ["user_id", "item_id"]].drop_duplicates()
    return inter.merge(train, on=["user_id", "item_id"])


def export_for_recbole(store: Store, sid: str) -> Path:
    """Write the split as RecBole benchmark files once; returns RecBole's ``data_path``.

    Files land in ``<artifacts>/splits/<sid>/kt/kt.{train,valid,test}.inter``, written to a temporary
    name and renamed, so an interrupted export never leaves a half-written file that looks complete.
    """
    root = store.artifacts_dir / "splits" / sid
    folder = root / RECBOLE_DATASET
    targets = [folder / f"{RECBOLE_DATASET}.{part}.inter" for part in PARTS]
    if all(t.is_file() for t in targets):
        return root
    folder.mkdir(parents=True, exist_ok=True)
    rows = store.split_rows(sid)
    for index, target in enumerate(targets):
        part = rows[rows["part"] == index]
        tmp = target.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("user_id:token\titem_id:token\n")
            part[["user_id", "item_id"]].to_csv(handle, sep="\t", header=False, index=False)
        os.replace(tmp, target)
    return root
