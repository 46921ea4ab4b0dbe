"""Datasets: the built-in ml-100k, and any folder of RecBole atomic files registered by name.

A dataset is copied into the store once, with its filters applied and recorded, so later stages
never reread the user's files and every run can name exactly which interactions it saw.
Ids stay the dataset's own strings; RecBole's internal remapping never leaves the training adapter.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from kt_cli.datasets.atomic import read_atomic
from kt_cli.errors import NotFoundError, UsageError
from kt_cli.store import DatasetRow, Store, _now


def _recbole_example(name: str) -> Path:
    """Folder of an example dataset shipped inside the recbole wheel, found without importing it."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise NotFoundError("dataset", name, BUILTINS, hint="RecBole is not installed.")
    return Path(spec.submodule_search_locations[0]) / "dataset_example" / name


BUILTINS = {"ml-100k": "MovieLens-100k, shipped inside the recbole wheel (943 users, 1,682 items)"}


@dataclass(frozen=True)
class Filters:
    """Interaction filters applied at registration and recorded with the dataset."""

    min_rating: float | None = None
    min_user_inter: int = 0
    min_item_inter: int = 0

    def apply(self, interactions: pd.DataFrame) -> pd.DataFrame:
        """Drop ratings below the threshold, then k-core until no user or item is under its minimum."""
        frame = interactions
        if self.min_rating is not None:
            frame = frame[frame["rating"] >= self.min_rating]
        while True:
            users = frame.groupby("user_id")["item_id"].transform("size")
            items = frame.groupby("item_id")["user_id"].transform("size")
            keep = (users >= self.min_user_inter) & (items >= self.min_item_inter)
            if keep.all():
                return frame.reset_index(drop=True)
            frame = frame[keep]


def fingerprint(interactions: pd.DataFrame) -> str:
    """Content hash of the interactions, independent of row order."""
    ordered = interactions.sort_values(["user_id", "item_id", "timestamp"]).reset_index(drop=True)
    hashed = pd.util.hash_pandas_object(ordered, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def register_dataset(
    store: Store, name: str, folder: Path, filters: Filters = Filters(), *, replace: bool = False,
    source: str = "atomic",
) -> DatasetRow:
    """Read, validate, filter and store a folder of atomic files under ``name``.

    Registering the same content with the same filters again is a no-op; different content under
    an existing name needs ``replace`` because it drops the old splits, vectors and evaluations' basis.
    """
    if name in BUILTINS and source != "builtin":
        raise UsageError(f"'{name}' is a built-in dataset ({BUILTINS[name]}); register your files under another "
                         "name, e.g. kt data register my-" + name + " --path FOLDER (its files named my-" + name
                         + ".inter, ...).")
    data = read_atomic(folder, name)
    interactions = data.interactions.drop_duplicates(["user_id", "item_id"], keep="last")
    interactions = filters.apply(interactions)
    if len(interactions) == 0:
        raise UsageError(f"The filters {asdict(filters)} leave no interactions in {folder}; relax them.")
    row = DatasetRow(
        name=name, source=source, origin=str(folder.resolve()), filters=asdict(filters),
        fingerprint=fingerprint(interactions), n_users=int(interactions["user_id"].nunique()),
        n_items=int(interactions["item_id"].nunique()), n_interactions=len(interactions),
        created_at=_now(),
    )
    existing = store.dataset(name)
    if existing and (existing.fingerprint, existing.filters) == (row.fingerprint, row.filters):
        return existing
    if existing and not replace:
        raise UsageError(
            f"A different dataset is already registered as '{name}' ({existing.n_interactions} "
            f"interactions from {existing.origin}). Pick another name, or pass --replace to overwrite "
            "it and everything derived from it (splits, knowledge sets)."
        )
    items = data.items[data.items["item_id"].isin(set(interactions["item_id"]))]
    users = data.users[data.users["user_id"].isin(set(interactions["user_id"]))]
    store.save_dataset(row, interactions, items.reset_index(drop=True), users.reset_index(drop=True))
    return row


def ensure_dataset(store: Store, name: str) -> DatasetRow:
    """The stored dataset, importing a built-in one on first use; a clear error for unknown names."""
    row = store.dataset(name)
    if row is not None:
        return row
    if name in BUILTINS:
        return register_dataset(store, name, _recbole_example(name), source="builtin")
    valid = set(BUILTINS) | {d.name for d in store.datasets()}
    raise NotFoundError(
        "dataset", name, valid,
        hint="Register a folder of RecBole atomic files with: kt data register NAME --path FOLDER "
             "(raw Amazon dumps: kt data import-amazon).",
    )


def list_datasets(store: Store | None) -> list[dict[str, object]]:
    """Built-in and registered datasets, one dict each, for display (built-ins only without a store)."""
    registered = {d.name: d for d in store.datasets()} if store is not None else {}
    rows: list[dict[str, object]] = []
    for name in sorted(set(BUILTINS) | set(registered)):
        d = registered.get(name)
        rows.append({
            "name": name,
            "source": d.source if d else "builtin",
            "users": d.n_users if d else None,
            "items": d.n_items if d else None,
            "interactions": d.n_interactions if d else None,
            "filters": {k: v for k, v in d.filters.items() if v} if d else {},
            "imported": d is not None,
            "description": BUILTINS.get(name, d.origin if d else ""),
        })
    return rows
