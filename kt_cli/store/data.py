"""Datasets, their items, users, interactions and splits."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from kt_cli.store.core import StoreCore
from kt_cli.store.rows import DatasetRow, _loads, _now


class DataTables(StoreCore):
    # ------------------------------------------------------------------ datasets
    def dataset(self, name: str) -> DatasetRow | None:
        row = self._one(
            "SELECT name, source, origin, filters, fingerprint, n_users, n_items, n_interactions, "
            "created_at FROM datasets WHERE name = ?",
            [name],
        )
        if row is None:
            return None
        return DatasetRow(*row[:3], _loads(row[3]), *row[4:])

    def datasets(self) -> list[DatasetRow]:
        names = self._con.execute("SELECT name FROM datasets ORDER BY name").fetchall()
        return [self.dataset(n) for (n,) in names]  # type: ignore[misc]

    def save_dataset(
        self,
        row: DatasetRow,
        interactions: pd.DataFrame,
        items: pd.DataFrame,
        users: pd.DataFrame,
    ) -> None:
        """Replace a dataset and everything derived from it, in one transaction.

        ``interactions`` has user_id, item_id, rating, timestamp; ``items``/``users`` have the id and
        a JSON ``fields`` column.
        """
        with self.transaction():
            self._delete_dataset(row.name)
            self._con.execute(
                "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [row.name, row.source, row.origin, json.dumps(row.filters), row.fingerprint,
                 row.n_users, row.n_items, row.n_interactions, row.created_at],
            )
            self._insert_frame("interactions", interactions.assign(dataset=row.name))
            self._insert_frame("items", items.assign(dataset=row.name))
            self._insert_frame("users", users.assign(dataset=row.name))

    def _delete_dataset(self, name: str) -> None:
        self._con.execute("DELETE FROM datasets WHERE name = ?", [name])
        for table in ("interactions", "items", "users", "splits", "knowledge_sets", "knowledge_vectors"):
            self._con.execute(f"DELETE FROM {table} WHERE dataset = ?", [name])
        self._con.execute("DELETE FROM split_rows WHERE split_id NOT IN (SELECT split_id FROM splits)")

    def interactions(self, dataset: str) -> pd.DataFrame:
        return self._con.execute(
            "SELECT user_id, item_id, rating, timestamp FROM interactions WHERE dataset = ? "
            "ORDER BY user_id, item_id",
            [dataset],
        ).df()

    def item_fields(self, dataset: str) -> dict[str, dict[str, str]]:
        return self.side_fields(dataset, "item")

    def side_fields(self, dataset: str, entity: str) -> dict[str, dict[str, str]]:
        """Each user's (or item's) columns of the dataset's ``.user`` (``.item``) file, by id."""
        table, column = {"user": ("users", "user_id"), "item": ("items", "item_id")}[entity]
        rows = self._con.execute(f"SELECT {column}, fields FROM {table} WHERE dataset = ?", [dataset]).fetchall()
        return {entity_id: _loads(fields) for entity_id, fields in rows}

    def entity_ids(self, dataset: str, entity: str) -> set[str]:
        """All user (or item) ids that occur in the dataset's interactions."""
        column = {"user": "user_id", "item": "item_id"}[entity]
        rows = self._con.execute(
            f"SELECT DISTINCT {column} FROM interactions WHERE dataset = ?", [dataset]
        ).fetchall()
        return {r[0] for r in rows}

    # ------------------------------------------------------------------ splits
    def split_exists(self, split_id: str) -> bool:
        return bool(
            self._one("SELECT count(*) FROM splits WHERE split_id = ?", [split_id])[0]
        )

    def save_split(self, split_id: str, dataset: str, label: str, seed: int, method: dict[str, Any],
                   rows: pd.DataFrame) -> None:
        """Store a split: ``rows`` has user_id, item_id, part (0 train, 1 valid, 2 test); ``label`` is its
        human-readable name and ``method`` how it was made (order, ratios, seed, how ties were broken)."""
        with self.transaction():
            self._con.execute("DELETE FROM split_rows WHERE split_id = ?", [split_id])
            self._con.execute("DELETE FROM splits WHERE split_id = ?", [split_id])
            self._con.execute(
                "INSERT INTO splits (split_id, dataset, ratios, seed, created_at, method) VALUES (?, ?, ?, ?, ?, ?)",
                [split_id, dataset, label, seed, _now(), json.dumps(method, sort_keys=True)],
            )
            self._insert_frame("split_rows", rows.assign(split_id=split_id))

    def split_label(self, split_id: str) -> str:
        """The split's readable name (``time 0.7/0.1/0.2``); splits stored before kt recorded the method
        were per-user random ones and read ``random 0.7/0.1/0.2 seed 42``."""
        row = self._one("SELECT ratios, seed, method FROM splits WHERE split_id = ?", [split_id])
        if row is None:
            return split_id
        label, seed, method = row
        return label if method is not None else f"random {label} seed {seed}"

    def split_sequences(self, split_id: str, max_part: int = 2) -> pd.DataFrame:
        """The split's interactions of parts up to ``max_part`` (user_id, item_id, part), each user's in time
        order, ties by item id as text (as time-ordered splits order them); a pair rated twice counts at its
        first time."""
        return self._con.execute(
            "SELECT r.user_id, r.item_id, r.part FROM split_rows r JOIN splits s USING (split_id) "
            "JOIN (SELECT dataset, user_id, item_id, min(timestamp) AS t FROM interactions "
            "      GROUP BY dataset, user_id, item_id) i "
            "  ON i.dataset = s.dataset AND i.user_id = r.user_id AND i.item_id = r.item_id "
            "WHERE r.split_id = ? AND r.part <= ? ORDER BY r.user_id, i.t, r.item_id",
            [split_id, max_part],
        ).df()

    def split_rows(self, split_id: str) -> pd.DataFrame:
        return self._con.execute(
            "SELECT user_id, item_id, part FROM split_rows WHERE split_id = ? "
            "ORDER BY part, user_id, item_id",
            [split_id],
        ).df()

