"""Training runs, their epoch logs, and evaluations with per-user metrics."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from kt_cli.store.core import StoreCore
from kt_cli.store.rows import RunRow, _loads, _now


EVAL_TABLES = ("eval_metrics", "eval_users", "eval_samples", "evaluations")

class RunTables(StoreCore):
    # ------------------------------------------------------------------ runs
    def run(self, name: str) -> RunRow | None:
        row = self._one(
            "SELECT name, dataset, split_id, model, knowledge, config, config_hash, seed, status, "
            "created_at, finished_at, summary, versions, error FROM runs WHERE name = ?",
            [name],
        )
        if row is None:
            return None
        return RunRow(*row[:5], _loads(row[5]), *row[6:11], _loads(row[11]), _loads(row[12]), row[13])

    def runs(self) -> list[RunRow]:
        names = self._con.execute("SELECT name FROM runs ORDER BY created_at, name").fetchall()
        return [self.run(n) for (n,) in names]  # type: ignore[misc]

    def run_folder(self, name: str) -> Path:
        """The run's files (checkpoint, weights, RecBole's scratch) in the store's artifacts folder."""
        safe = hashlib.sha256(name.encode()).hexdigest()[:8]
        readable = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        return self.artifacts_dir / "runs" / f"{readable}-{safe}"

    def run_names(self) -> list[str]:
        return [n for (n,) in self._con.execute("SELECT name FROM runs ORDER BY name").fetchall()]

    def start_run(self, row: RunRow) -> None:
        """Insert a run, or reset an unfinished one with the same name (its epochs are kept for resume)."""
        with self.transaction():
            self._con.execute("DELETE FROM runs WHERE name = ?", [row.name])
            self._con.execute(
                "INSERT INTO runs (name, dataset, split_id, model, knowledge, config, config_hash, seed, status, "
                "created_at, finished_at, summary, versions, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [row.name, row.dataset, row.split_id, row.model, row.knowledge, json.dumps(row.config),
                 row.config_hash, row.seed, row.status, row.created_at, row.finished_at,
                 json.dumps(row.summary), json.dumps(row.versions), row.error],
            )

    def finish_run(self, name: str, status: str, summary: dict[str, Any], error: str | None = None) -> None:
        """Record how a run ended and release its owner lease."""
        self._con.execute(
            "UPDATE runs SET status = ?, summary = ?, error = ?, finished_at = ?, owner = NULL WHERE name = ?",
            [status, json.dumps(summary), error, _now(), name],
        )

    def set_owner(self, name: str, owner: dict[str, Any] | None) -> None:
        """The process training the run (host, pid, last heartbeat), or None when nobody is."""
        self._con.execute("UPDATE runs SET owner = ? WHERE name = ?",
                          [json.dumps(owner) if owner is not None else None, name])

    def owner(self, name: str) -> dict[str, Any] | None:
        row = self._one("SELECT owner FROM runs WHERE name = ?", [name])
        return _loads(row[0]) if row and row[0] is not None else None

    def delete_run(self, name: str) -> None:
        """The run, its epoch log and evaluations, and its folder of files (weights, checkpoint)."""
        with self.transaction():
            evals = [e for (e,) in self._con.execute(
                "SELECT eval_id FROM evaluations WHERE run = ?", [name]).fetchall()]
            for table in EVAL_TABLES:
                self._con.execute(f"DELETE FROM {table} WHERE eval_id IN (SELECT unnest(?))", [evals])
            self._con.execute("DELETE FROM epochs WHERE run = ?", [name])
            self._con.execute("DELETE FROM runs WHERE name = ?", [name])
        shutil.rmtree(self.run_folder(name), ignore_errors=True)

    def match_runs(self, pattern: str) -> list[str]:
        """Run names matching a glob (``base-s*``), sorted; a name without glob characters matches itself."""
        known = self.run_names()
        if any(c in pattern for c in "*?["):
            return sorted(fnmatch.filter(known, pattern))
        return [pattern] if pattern in known else []

    def replace_epochs(self, run: str, records: Sequence[dict[str, Any]]) -> None:
        """Make the run's epoch log exactly ``records`` (written with each training checkpoint)."""
        frame = pd.DataFrame.from_records(
            list(records),
            columns=["phase", "epoch", "model_loss", "recon_loss", "valid_metric", "aligned_rows",
                     "masked_rows", "seconds"],
        ).assign(run=run)
        with self.transaction():
            self._con.execute("DELETE FROM epochs WHERE run = ?", [run])
            if len(frame):
                self._insert_frame("epochs", frame)

    def import_run(self, row: RunRow, records: Sequence[dict[str, Any]]) -> None:
        """Store a run trained elsewhere (a sweep task's private copy of the store) with its epoch log, both or
        neither; it replaces an unfinished run of the same name."""
        with self.transaction():
            self.start_run(row)
            self.replace_epochs(row.name, records)

    def epochs(self, run: str) -> pd.DataFrame:
        return self._con.execute(
            "SELECT phase, epoch, model_loss, recon_loss, valid_metric, aligned_rows, masked_rows, "
            "seconds FROM epochs WHERE run = ? "
            "ORDER BY CASE phase WHEN 'finetune' THEN 1 ELSE 0 END, epoch",
            [run],
        ).df()

    # ------------------------------------------------------------------ evaluations
    def evaluation_id(self, run: str, settings: dict[str, Any]) -> str | None:
        row = self._one(
            "SELECT eval_id FROM evaluations WHERE run = ? AND settings = ?::JSON",
            [run, json.dumps(settings, sort_keys=True)],
        )
        return row[0] if row else None

    def save_evaluation(
        self,
        eval_id: str,
        run: str,
        settings: dict[str, Any],
        per_user: pd.DataFrame,
        aggregates: pd.DataFrame,
        seconds: float,
        samples: pd.DataFrame | None = None,
    ) -> None:
        """``per_user``: user_id, n_train, metric, k, value; ``aggregates``: slice, metric, k, value, n_users;
        ``samples`` (CTR): user_id, item_id, label, score of every scored sample, for tests over users."""
        with self.transaction():
            for table in EVAL_TABLES:
                self._con.execute(f"DELETE FROM {table} WHERE eval_id = ?", [eval_id])
            self._con.execute(
                "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?)",
                [eval_id, run, json.dumps(settings, sort_keys=True), int(per_user["user_id"].nunique()),
                 seconds, _now()],
            )
            self._insert_frame("eval_users", per_user.assign(eval_id=eval_id))
            self._insert_frame("eval_metrics", aggregates.assign(eval_id=eval_id))
            if samples is not None:
                self._insert_frame("eval_samples", samples.assign(eval_id=eval_id))

    def evaluations(self, run: str) -> list[tuple[str, dict[str, Any]]]:
        """Every stored evaluation of ``run``: (eval_id, settings), oldest first."""
        rows = self._con.execute(
            "SELECT eval_id, settings FROM evaluations WHERE run = ? ORDER BY created_at", [run]).fetchall()
        return [(eval_id, _loads(settings)) for eval_id, settings in rows]

    def eval_metrics(self, eval_id: str) -> pd.DataFrame:
        return self._con.execute(
            "SELECT slice, metric, k, value, n_users FROM eval_metrics WHERE eval_id = ? "
            "ORDER BY slice, metric, k",
            [eval_id],
        ).df()

    def eval_samples(self, eval_id: str) -> pd.DataFrame:
        """A CTR evaluation's scored samples (user_id, item_id, label, score), in a fixed order."""
        return self._con.execute(
            "SELECT user_id, item_id, label, score FROM eval_samples WHERE eval_id = ? ORDER BY user_id, item_id",
            [eval_id]).df()

    def eval_users(self, eval_id: str, item_slice: str | None = None) -> pd.DataFrame:
        """Per-user values of an evaluation; ``item_slice`` (e.g. 'all') keeps one slice, so one row per user and
        metric (a ranking evaluation also stores its item slices: cold, warm, long tail)."""
        where, params = ("AND slice = ? ", [eval_id, item_slice]) if item_slice else ("", [eval_id])
        return self._con.execute(
            "SELECT user_id, n_train, metric, k, value, slice FROM eval_users WHERE eval_id = ? " + where +
            "ORDER BY slice, metric, k, user_id",
            params,
        ).df()
