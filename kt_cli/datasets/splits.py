"""Train/validation/test splits, made by kt, stored, and handed to RecBole as pre-split files.

kt splits the data itself rather than letting RecBole do it inside each training process: the split is
then a stored artifact with an id that every run, evaluation and profile set records, ``compare`` can
refuse runs on different splits, and evaluation never has to trust that RecBole would split the same way
twice. Schemes (docs/architecture.md, "Splits"):

- ``time`` (the default, the LLM-KT paper's protocol): each user's ratings in time order, the first 70%
  train, the next 10% validation, the last 20% test; ties in time are broken by item id (compared as text).
- ``random``: each user's ratings shuffled with ``--split-seed`` and cut by the same ratios (kt's protocol
  before time order became the default; its split ids are unchanged).
- ``global``: one pair of timestamp boundaries for everyone, at the ratios' quantiles of all timestamps;
  a rating at a boundary's timestamp stays on the earlier side.
- ``loo`` (leave-one-out, time order): each user's last rating is test, the second-last validation, the
  rest training; users with fewer than three ratings keep them all in training.
- ``cold-items[:F]`` (default F 0.2): a share F of the items, drawn with ``--split-seed``, never appear in
  training: each of their interactions goes to validation or test (drawn in the ratio 0.1 : 0.2); the other
  interactions are split per user in time order 70/10/20. New items a content-based model can recommend.

The split seed is separate from the training seed, so runs over several training seeds share one split
and can be compared user by user; time-ordered splits do not depend on it.
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
ORDERS = ("time", "random", "global")
SCHEMES = ("ratio", "loo", "cold-items")
COLD_ITEMS = "cold-items"
DEFAULT_COLD_FRACTION = 0.2
TIES = "item_id ascending, compared as text"  # how equal timestamps are ordered, recorded with every time-ordered split


@dataclass(frozen=True)
class SplitSpec:
    """How to split: per-user ratios (train, valid, test) in ``order``, or leave-one-out (``scheme="loo"``,
    always in time order); ``seed`` draws the random order and is ignored by the others."""

    ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)
    seed: int = 42
    order: str = "time"
    scheme: str = "ratio"
    cold_fraction: float = 0.0  # cold-items: the share of items kept out of training

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise UsageError(f"Unknown split scheme '{self.scheme}'. Valid: {', '.join(SCHEMES)}.")
        if self.order not in ORDERS:
            raise UsageError(f"--split-order must be one of {', '.join(ORDERS)}, not '{self.order}'.")
        if self.scheme == "loo" and self.order != "time":
            raise UsageError("--split loo is leave-one-out in time order; it takes no --split-order "
                             f"'{self.order}'. Drop --split-order, or split by ratios.")
        if self.scheme == COLD_ITEMS and not 0 < self.cold_fraction < 1:
            raise UsageError(f"--split cold-items:F takes a share of items F between 0 and 1 (e.g. cold-items:0.2), "
                             f"not {self.cold_fraction:g}.")
        if self.scheme != "loo" and (len(self.ratios) != 3 or min(self.ratios) <= 0
                                       or abs(sum(self.ratios) - 1) > 1e-6):
            raise UsageError(f"Split ratios must be three positive numbers summing to 1 (train, validation for early "
                             f"stopping, test), got {', '.join(f'{r:g}' for r in self.ratios)}.")
        if (self.order != "random" and self.scheme != COLD_ITEMS) or self.scheme == "loo":  # the seed means nothing
            object.__setattr__(self, "seed", 0)
        if self.scheme == "loo":
            object.__setattr__(self, "ratios", (0.0, 0.0, 0.0))

    @property
    def needs_time(self) -> bool:
        return self.order != "random"

    @property
    def label(self) -> str:
        """Human-readable, e.g. ``time 0.7/0.1/0.2``, ``random 0.7/0.1/0.2 seed 42``, ``loo``."""
        if self.scheme == "loo":
            return "loo"
        ratios = "/".join(f"{r:g}" for r in self.ratios)
        if self.scheme == COLD_ITEMS:
            return f"cold-items {self.cold_fraction:g} seed {self.seed}, warm {self.order} {ratios}"
        return f"{self.order} {ratios}" + (f" seed {self.seed}" if self.order == "random" else "")

    def as_dict(self) -> dict[str, object]:
        """The stored description of a split: scheme, order, ratios, seed and the tie rule."""
        record: dict[str, object] = {"scheme": self.scheme, "order": self.order}
        if self.scheme != "loo":
            record["ratios"] = list(self.ratios)
        if self.scheme == COLD_ITEMS:
            record["cold_fraction"] = self.cold_fraction
        if self.order == "random" or self.scheme == COLD_ITEMS:
            record["seed"] = self.seed
        else:
            record["ties"] = TIES
        return record


def parse_split(text: str, order: str = "time", seed: int = 42) -> SplitSpec:
    """``--split`` (``0.7,0.1,0.2`` or ``loo``), ``--split-order`` and ``--split-seed`` as a split."""
    order = order.strip().lower()
    if text.strip().lower() == "loo":
        return SplitSpec(seed=seed, order=order, scheme="loo")
    scheme, _, fraction = text.strip().lower().partition(":")
    if scheme == COLD_ITEMS:
        try:
            share = float(fraction) if fraction else DEFAULT_COLD_FRACTION
        except ValueError as e:
            raise UsageError(f"--split cold-items:F takes a share of items, e.g. cold-items:0.2, not '{text}'.") from e
        return SplitSpec(seed=seed, order=order, scheme=COLD_ITEMS, cold_fraction=share)
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError as e:
        raise UsageError(f"--split takes three ratios like 0.7,0.1,0.2, loo, or cold-items[:F], not '{text}'.") from e
    if len(parts) != 3:
        raise UsageError(f"--split takes three ratios like 0.7,0.1,0.2, loo, or cold-items[:F], not '{text}'.")
    return SplitSpec(parts, seed, order)  # type: ignore[arg-type]


def split_id(dataset_fingerprint: str, spec: SplitSpec) -> str:
    ratios = "/".join(f"{r:g}" for r in spec.ratios)
    if spec.scheme == COLD_ITEMS:
        key = f"{dataset_fingerprint}|{spec.scheme}|{spec.order}|{ratios}|{spec.cold_fraction:g}|{spec.seed}"
    elif spec.order == "random":  # the key random splits always had, so their ids never change
        key = f"{dataset_fingerprint}|{ratios}|{spec.seed}"
    else:
        key = f"{dataset_fingerprint}|{spec.scheme}|{spec.order}|{ratios}"
    return "s" + hashlib.sha256(key.encode()).hexdigest()[:11]


def _ratio_counts(n: np.ndarray, ratios: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Rows per user for training and for training+validation (RecBole's per-user rounding).

    Validation and test get ``floor(ratio * n)`` rows, bumped to one when the product is between 0
    and 1 and the user keeps at least one training row; training gets the rest.
    """
    counts = []
    train = n.copy()
    for ratio in ratios[1:]:
        part = np.floor(ratio * n + 1e-9).astype(int)
        bump = (part == 0) & (ratio * n > 0) & (train - 1 >= 1)
        part = part + bump
        train = train - part
        counts.append(part)
    return train, train + counts[0]


def _require_time(interactions: pd.DataFrame, spec: SplitSpec) -> None:
    if interactions["timestamp"].nunique() <= 1:
        raise UsageError(
            f"The split '{spec.label}' orders ratings by time, but this dataset has no timestamps (every "
            "interaction has the same time). Use --split-order random (with --split-seed), or register the "
            "dataset from files with a timestamp:float column.")


def assign_parts(interactions: pd.DataFrame, spec: SplitSpec) -> pd.DataFrame:
    """user_id, item_id and part (0 train, 1 valid, 2 test) for every interaction, as ``spec`` says."""
    columns = ["user_id", "item_id", "timestamp"]
    frame = interactions[columns].sort_values(["user_id", "item_id"]).reset_index(drop=True)
    if spec.needs_time:
        _require_time(interactions, spec)
    if spec.scheme == COLD_ITEMS:
        return _cold_item_parts(frame, spec)
    if spec.order == "global":
        return _global_parts(frame, spec.ratios)
    if spec.order == "random":
        rng = np.random.default_rng(spec.seed)
        frame["_key"] = rng.random(len(frame))
        frame = frame.sort_values(["user_id", "_key"]).drop(columns="_key")
    else:  # time, ties by item id
        frame = frame.sort_values(["user_id", "timestamp", "item_id"])
    frame = frame.reset_index(drop=True)
    rank = frame.groupby("user_id").cumcount().to_numpy()
    n = frame.groupby("user_id")["item_id"].transform("size").to_numpy()
    if spec.scheme == "loo":
        train_end = np.where(n >= 3, n - 2, n)
        valid_end = np.where(n >= 3, n - 1, n)
    else:
        train_end, valid_end = _ratio_counts(n, spec.ratios)
    frame["part"] = np.where(rank < train_end, 0, np.where(rank < valid_end, 1, 2)).astype("int8")
    return frame.drop(columns="timestamp")


def _cold_item_parts(frame: pd.DataFrame, spec: SplitSpec) -> pd.DataFrame:
    """A share of the items (drawn with the split seed) only in validation/test; the rest split as usual."""
    rng = np.random.default_rng(spec.seed)
    items = np.array(sorted(frame["item_id"].unique()))
    cold = set(rng.choice(items, size=max(1, round(spec.cold_fraction * len(items))), replace=False))
    is_cold = frame["item_id"].isin(cold).to_numpy()
    warm = assign_parts(frame[~is_cold], SplitSpec(spec.ratios, spec.seed, spec.order))
    held = frame.loc[is_cold, ["user_id", "item_id"]].copy()  # in (user, item) order, so the draw is repeatable
    valid_share = spec.ratios[1] / (spec.ratios[1] + spec.ratios[2])
    held["part"] = np.where(rng.random(len(held)) < valid_share, 1, 2).astype("int8")
    return pd.concat([warm, held], ignore_index=True).sort_values(["user_id", "item_id"]).reset_index(drop=True)


def _global_parts(frame: pd.DataFrame, ratios: tuple[float, float, float]) -> pd.DataFrame:
    times = np.sort(frame["timestamp"].to_numpy())
    first = times[max(0, int(np.ceil(ratios[0] * len(times))) - 1)]
    second = times[max(0, int(np.ceil((ratios[0] + ratios[1]) * len(times))) - 1)]
    stamp = frame["timestamp"].to_numpy()
    frame["part"] = np.where(stamp <= first, 0, np.where(stamp <= second, 1, 2)).astype("int8")
    return frame.drop(columns="timestamp")


def ensure_split(store: Store, dataset: str, spec: SplitSpec) -> str:
    """Id of the stored split of ``dataset`` under ``spec``, computing it on first use."""
    row = ensure_dataset(store, dataset)
    sid = split_id(row.fingerprint, spec)
    if not store.split_exists(sid):
        rows = assign_parts(store.interactions(dataset), spec)
        sizes = rows["part"].value_counts()
        empty = [PARTS[p] for p in (1, 2) if sizes.get(p, 0) == 0]
        if empty:
            raise UsageError(
                f"The split '{spec.label}' leaves the {' and '.join(empty)} part{'s' if len(empty) > 1 else ''} of "
                f"{dataset} empty ({len(rows)} "
                "interactions), so nothing could be validated or tested. Use other --split ratios or another "
                "--split-order.")
        store.save_split(sid, dataset, spec.label, spec.seed, spec.as_dict(), rows)
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
