"""LLM answers (versioned, keyed by prompt, model and parameters) and the profile sets built on them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from kt_cli.store.core import StoreCore
from kt_cli.store.rows import RESPONSE_COLUMNS, ProfileSetRow, _loads


class ProfileTables(StoreCore):
    # ------------------------------------------------------------------ LLM responses and profiles
    def latest_responses(self, keys: Sequence[str]) -> pd.DataFrame:
        """The newest stored version of each of ``keys`` that has one (all response columns)."""
        wanted = pa.table({"key": pa.array(list(keys), pa.string())})
        with self._registered("_kt_keys", wanted):
            return self._con.execute(
                "SELECT r.* FROM llm_responses r JOIN _kt_keys USING (key) "
                "QUALIFY version = MAX(version) OVER (PARTITION BY key)"
            ).df()

    def add_response(self, response: dict[str, Any]) -> int:
        """Store one answer as the next version of its key (never overwrites); returns the version."""
        values = [response[c] for c in RESPONSE_COLUMNS if c != "version"]
        values[RESPONSE_COLUMNS.index("params") - 1] = json.dumps(response["params"], sort_keys=True)
        row = self._one(
            "INSERT INTO llm_responses SELECT $1, COALESCE((SELECT MAX(version) FROM llm_responses "
            "WHERE key = $1), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 RETURNING version",
            values,
        )
        return int(row[0])

    def response_counts(self) -> tuple[int, int]:
        """(stored answers, highest version of any key): how many calls the cache holds."""
        row = self._one("SELECT COUNT(*), COALESCE(MAX(version), 0) FROM llm_responses")
        return int(row[0]), int(row[1])

    def import_responses(self, frame: pd.DataFrame) -> int:
        """Add responses whose key is not stored yet (as version 1); returns how many were new.

        A key the frame holds twice (two items whose prompts render the same, e.g. a film listed twice under
        one title) is stored once, its first row."""
        frame = frame.drop(columns="version", errors="ignore")
        with self.transaction(), self._registered("_kt_frame", frame):
            before = self._one("SELECT COUNT(*) FROM llm_responses")[0]
            self._con.execute(
                "INSERT INTO llm_responses BY NAME SELECT * EXCLUDE (_row), 1 AS version FROM ("
                "SELECT f.*, row_number() OVER (PARTITION BY f.key ORDER BY f.created_at, f.text) AS _row FROM _kt_frame f) "
                "WHERE _row = 1 AND key NOT IN (SELECT key FROM llm_responses)"
            )
            return self._one("SELECT COUNT(*) FROM llm_responses")[0] - before

    def save_profile_set(self, row: ProfileSetRow, entries: pd.DataFrame) -> None:
        """Replace the named set; ``entries`` has entity_id, response_key, response_version."""
        frame = entries.assign(dataset=row.dataset, set_name=row.name)
        with self.transaction():
            self._con.execute("DELETE FROM profiles WHERE dataset = ? AND set_name = ?", [row.dataset, row.name])
            self._con.execute("DELETE FROM profile_sets WHERE dataset = ? AND name = ?", [row.dataset, row.name])
            self._con.execute(
                "INSERT INTO profile_sets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [row.dataset, row.name, row.entity, row.template, row.template_hash, json.dumps(row.rules),
                 row.backend, row.model, json.dumps(row.params, sort_keys=True), row.n_profiles, row.n_missing,
                 row.created_at],
            )
            self._insert_frame("profiles", frame)

    def profile_sets(self, dataset: str | None = None) -> list[ProfileSetRow]:
        rows = self._con.execute(
            "SELECT * FROM profile_sets WHERE ? IS NULL OR dataset = ? ORDER BY dataset, name", [dataset, dataset]
        ).fetchall()
        return [ProfileSetRow(r[0], r[1], r[2], r[3], r[4], _loads(r[5]), r[6], r[7], _loads(r[8]), r[9], r[10],
                              r[11]) for r in rows]

    def profile_set(self, dataset: str, name: str) -> ProfileSetRow | None:
        return next((r for r in self.profile_sets(dataset) if r.name == name), None)

    def profiles(self, dataset: str, name: str) -> pd.DataFrame:
        """One row per profile: entity_id and every column of its stored response, in id order."""
        return self._con.execute(
            "SELECT p.entity_id, r.* FROM profiles p JOIN llm_responses r "
            "ON r.key = p.response_key AND r.version = p.response_version "
            "WHERE p.dataset = ? AND p.set_name = ? ORDER BY p.entity_id",
            [dataset, name],
        ).df()

