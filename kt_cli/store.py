"""The one door to DuckDB: schema, migrations, every SQL string and transaction.

Every stage reads its inputs from and writes its outputs to one DuckDB file, so stages can be rerun,
mixed and cached. Files that do not belong in a database (RecBole's atomic files, model weights)
live in an artifacts folder beside it that the store owns (``kt.duckdb`` -> ``kt.artifacts/``).

The store is opened as a context manager for a short span and always closed, so one long command
(training) does not lock everyone else out: it reopens the store for each write. DuckDB allows one
writing process per file; opening waits briefly for a lock held by another kt process, then fails
with a :class:`~kt_cli.errors.StoreError` that names the holder.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from kt_cli.errors import StoreError

SCHEMA_VERSION = 2
DEFAULT_STORE = Path("kt.duckdb")

# Numbered migrations; migration N brings a store from version N-1 to N. Never edit a released one.
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE datasets (
        name VARCHAR PRIMARY KEY, source VARCHAR NOT NULL, origin VARCHAR, filters JSON NOT NULL,
        fingerprint VARCHAR NOT NULL, n_users INTEGER, n_items INTEGER, n_interactions BIGINT,
        created_at TIMESTAMP NOT NULL);
    CREATE TABLE items (dataset VARCHAR, item_id VARCHAR, fields JSON, PRIMARY KEY (dataset, item_id));
    CREATE TABLE users (dataset VARCHAR, user_id VARCHAR, fields JSON, PRIMARY KEY (dataset, user_id));
    CREATE TABLE interactions (dataset VARCHAR, user_id VARCHAR, item_id VARCHAR, rating DOUBLE,
        timestamp DOUBLE);
    CREATE TABLE splits (split_id VARCHAR PRIMARY KEY, dataset VARCHAR NOT NULL, ratios VARCHAR NOT NULL,
        seed INTEGER NOT NULL, created_at TIMESTAMP NOT NULL);
    CREATE TABLE split_rows (split_id VARCHAR, user_id VARCHAR, item_id VARCHAR, part TINYINT);
    CREATE TABLE knowledge_sets (dataset VARCHAR, name VARCHAR, entity VARCHAR NOT NULL,
        dim INTEGER NOT NULL, n_vectors INTEGER NOT NULL, source VARCHAR NOT NULL, method VARCHAR,
        params JSON NOT NULL, parent VARCHAR, created_at TIMESTAMP NOT NULL, PRIMARY KEY (dataset, name));
    CREATE TABLE knowledge_vectors (dataset VARCHAR, set_name VARCHAR, entity_id VARCHAR, vector FLOAT[]);
    CREATE TABLE runs (name VARCHAR PRIMARY KEY, dataset VARCHAR NOT NULL, split_id VARCHAR NOT NULL,
        model VARCHAR NOT NULL, knowledge VARCHAR, config JSON NOT NULL, config_hash VARCHAR NOT NULL,
        seed INTEGER NOT NULL, status VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP, summary JSON, versions JSON, error VARCHAR);
    CREATE TABLE epochs (run VARCHAR, phase VARCHAR, epoch INTEGER, model_loss DOUBLE, recon_loss DOUBLE,
        valid_metric DOUBLE, aligned_rows BIGINT, masked_rows BIGINT, seconds DOUBLE,
        PRIMARY KEY (run, phase, epoch));
    CREATE TABLE evaluations (eval_id VARCHAR PRIMARY KEY, run VARCHAR NOT NULL, settings JSON NOT NULL,
        n_users INTEGER, seconds DOUBLE, created_at TIMESTAMP NOT NULL);
    CREATE TABLE eval_metrics (eval_id VARCHAR, slice VARCHAR, metric VARCHAR, k INTEGER, value DOUBLE,
        n_users INTEGER);
    CREATE TABLE eval_users (eval_id VARCHAR, user_id VARCHAR, n_train INTEGER, metric VARCHAR,
        k INTEGER, value DOUBLE);
    """,
    2: """
    CREATE TABLE llm_responses (key VARCHAR, version INTEGER, backend VARCHAR NOT NULL, model VARCHAR NOT NULL,
        params JSON NOT NULL, prompt_hash VARCHAR NOT NULL, text VARCHAR NOT NULL, tokens_in INTEGER,
        tokens_out INTEGER, seconds DOUBLE, finish_reason VARCHAR, created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (key, version));
    CREATE TABLE profile_sets (dataset VARCHAR, name VARCHAR, entity VARCHAR NOT NULL, template VARCHAR NOT NULL,
        template_hash VARCHAR NOT NULL, rules JSON NOT NULL, backend VARCHAR NOT NULL, model VARCHAR NOT NULL,
        params JSON NOT NULL, n_profiles INTEGER NOT NULL, n_missing INTEGER NOT NULL,
        created_at TIMESTAMP NOT NULL, PRIMARY KEY (dataset, name));
    CREATE TABLE profiles (dataset VARCHAR, set_name VARCHAR, entity_id VARCHAR, response_key VARCHAR,
        response_version INTEGER);
    CREATE TABLE text_embeddings (encoder VARCHAR, text_hash VARCHAR, vector FLOAT[],
        PRIMARY KEY (encoder, text_hash));
    """,
}

_LOCK_PATTERN = re.compile(r"lock", re.IGNORECASE)
_PID_PATTERN = re.compile(r"PID (\d+)")


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class DatasetRow:
    """A registered dataset as the store describes it."""

    name: str
    source: str
    origin: str | None
    filters: dict[str, Any]
    fingerprint: str
    n_users: int
    n_items: int
    n_interactions: int
    created_at: datetime


@dataclass(frozen=True)
class KnowledgeSetRow:
    """A named set of vectors, one per user or item, with where it came from."""

    dataset: str
    name: str
    entity: str
    dim: int
    n_vectors: int
    source: str
    method: str | None
    params: dict[str, Any]
    parent: str | None
    created_at: datetime


@dataclass(frozen=True)
class RunRow:
    """A training run: its full config, status and summary."""

    name: str
    dataset: str
    split_id: str
    model: str
    knowledge: str | None
    config: dict[str, Any]
    config_hash: str
    seed: int
    status: str
    created_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any]
    versions: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class ProfileSetRow:
    """A named set of LLM profiles (one text per user or item) and how they were asked for."""

    dataset: str
    name: str
    entity: str
    template: str
    template_hash: str
    rules: dict[str, Any]
    backend: str
    model: str
    params: dict[str, Any]
    n_profiles: int
    n_missing: int
    created_at: datetime


RESPONSE_COLUMNS = ("key", "version", "backend", "model", "params", "prompt_hash", "text", "tokens_in",
                    "tokens_out", "seconds", "finish_reason", "created_at")


def _loads(value: str | None) -> Any:
    return json.loads(value) if value else {}


class Store:
    """An open connection to a kt store. Use :meth:`open`; do not construct directly."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection) -> None:
        self.path = path
        self._con = con
        self._in_transaction = False

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    @contextmanager
    def open(cls, path: Path | str = DEFAULT_STORE, *, lock_timeout: float = 10.0) -> Iterator[Store]:
        """Open (creating and migrating if needed) the store at ``path``; always closes it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        con = cls._connect(path, lock_timeout)
        store = cls(path, con)
        try:
            store._migrate()
            yield store
        finally:
            con.close()

    @staticmethod
    def _connect(path: Path, lock_timeout: float) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                return duckdb.connect(str(path))
            except duckdb.IOException as e:
                if not _LOCK_PATTERN.search(str(e)):
                    raise StoreError(
                        f"{path} is not a usable kt store ({e}). Point --store at a kt store or a new path."
                    ) from e
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                pid = _PID_PATTERN.search(str(e))
                holder = f"process {pid.group(1)}" if pid else "another process"
                raise StoreError(
                    f"The store {path} is locked by {holder} (DuckDB allows one writer at a time). "
                    "Wait for that command to finish, or use a different store with --store PATH "
                    "or KT_STORE."
                ) from e
            except duckdb.Error as e:
                raise StoreError(
                    f"{path} is not a usable kt store ({e}). Point --store at a kt store or a new path."
                ) from e

    @property
    def artifacts_dir(self) -> Path:
        """Folder for files owned by this store (atomic files for RecBole, model weights)."""
        return self.path.with_name(self.path.stem + ".artifacts")

    def _migrate(self) -> None:
        self._con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        row = self._one("SELECT value FROM meta WHERE key = 'schema_version'")
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The store {self.path} was written by a newer kt (schema version {version}; this kt "
                f"understands up to {SCHEMA_VERSION}). Upgrade kt, or use another store with --store."
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                self._con.execute(MIGRATIONS[number])
                self._con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(number)]
                )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing: a failure or Ctrl-C inside leaves the store as it was.

        Nested use joins the outer transaction (DuckDB has no savepoints).
        """
        if self._in_transaction:
            yield
            return
        self._con.begin()
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._con.rollback()
            raise
        else:
            self._con.commit()
        finally:
            self._in_transaction = False

    def _insert_frame(self, table: str, frame: pd.DataFrame | pa.Table) -> None:
        self._con.register("_kt_frame", frame)
        try:
            self._con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _kt_frame")
        finally:
            self._con.unregister("_kt_frame")

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        """First row or None. DuckDB 2 refuses new work on a connection with an undrained result."""
        rows = self._con.execute(sql, params).fetchall()
        return rows[0] if rows else None

    def schema_version(self) -> int:
        row = self._one("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(row[0])

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
        rows = self._con.execute(
            "SELECT item_id, fields FROM items WHERE dataset = ?", [dataset]
        ).fetchall()
        return {item_id: _loads(fields) for item_id, fields in rows}

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

    def save_split(
        self, split_id: str, dataset: str, ratios: str, seed: int, rows: pd.DataFrame
    ) -> None:
        """Store a split: ``rows`` has user_id, item_id, part (0 train, 1 valid, 2 test)."""
        with self.transaction():
            self._con.execute("DELETE FROM split_rows WHERE split_id = ?", [split_id])
            self._con.execute("DELETE FROM splits WHERE split_id = ?", [split_id])
            self._con.execute(
                "INSERT INTO splits VALUES (?, ?, ?, ?, ?)", [split_id, dataset, ratios, seed, _now()]
            )
            self._insert_frame("split_rows", rows.assign(split_id=split_id))

    def split_rows(self, split_id: str) -> pd.DataFrame:
        return self._con.execute(
            "SELECT user_id, item_id, part FROM split_rows WHERE split_id = ? "
            "ORDER BY part, user_id, item_id",
            [split_id],
        ).df()

    # ------------------------------------------------------------------ knowledge
    def knowledge_set(self, dataset: str, name: str) -> KnowledgeSetRow | None:
        row = self._one(
            "SELECT dataset, name, entity, dim, n_vectors, source, method, params, parent, created_at "
            "FROM knowledge_sets WHERE dataset = ? AND name = ?",
            [dataset, name],
        )
        if row is None:
            return None
        return KnowledgeSetRow(*row[:7], _loads(row[7]), *row[8:])

    def knowledge_sets(self, dataset: str | None = None) -> list[KnowledgeSetRow]:
        keys = self._con.execute(
            "SELECT dataset, name FROM knowledge_sets WHERE ? IS NULL OR dataset = ? "
            "ORDER BY dataset, name",
            [dataset, dataset],
        ).fetchall()
        return [self.knowledge_set(d, n) for d, n in keys]  # type: ignore[misc]

    def save_knowledge_set(self, row: KnowledgeSetRow, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Replace the named set with these vectors (float32), in one transaction."""
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        lists = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]).cast(pa.list_(pa.float32()))
        table = pa.table({
            "dataset": pa.array([row.dataset] * len(ids), pa.string()),
            "set_name": pa.array([row.name] * len(ids), pa.string()),
            "entity_id": pa.array(list(ids), pa.string()),
            "vector": lists,
        })
        with self.transaction():
            self.delete_knowledge_set(row.dataset, row.name)
            self._con.execute(
                "INSERT INTO knowledge_sets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [row.dataset, row.name, row.entity, row.dim, row.n_vectors, row.source, row.method,
                 json.dumps(row.params), row.parent, row.created_at],
            )
            self._insert_frame("knowledge_vectors", table)

    def delete_knowledge_set(self, dataset: str, name: str) -> None:
        self._con.execute("DELETE FROM knowledge_sets WHERE dataset = ? AND name = ?", [dataset, name])
        self._con.execute(
            "DELETE FROM knowledge_vectors WHERE dataset = ? AND set_name = ?", [dataset, name]
        )

    def knowledge_vectors(self, dataset: str, name: str) -> tuple[list[str], np.ndarray]:
        """Ids and a float32 matrix, in id order."""
        table = self._con.sql(
            "SELECT entity_id, vector FROM knowledge_vectors WHERE dataset = $1 AND set_name = $2 "
            "ORDER BY entity_id",
            params=[dataset, name],
        ).to_arrow_table()
        ids = table.column("entity_id").to_pylist()
        column = table.column("vector").combine_chunks()
        if len(ids) == 0:
            return ids, np.zeros((0, 0), dtype=np.float32)
        values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        return ids, values.reshape(len(ids), -1)

    # ------------------------------------------------------------------ LLM responses and profiles
    def latest_responses(self, keys: Sequence[str]) -> pd.DataFrame:
        """The newest stored version of each of ``keys`` that has one (all response columns)."""
        wanted = pa.table({"key": pa.array(list(keys), pa.string())})
        self._con.register("_kt_keys", wanted)
        try:
            return self._con.execute(
                "SELECT r.* FROM llm_responses r JOIN _kt_keys USING (key) "
                "QUALIFY version = MAX(version) OVER (PARTITION BY key)"
            ).df()
        finally:
            self._con.unregister("_kt_keys")

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
        """Add responses whose key is not stored yet (as version 1); returns how many were new."""
        with self.transaction():
            self._con.register("_kt_frame", frame)
            try:
                before = self._one("SELECT COUNT(*) FROM llm_responses")[0]
                self._con.execute(
                    "INSERT INTO llm_responses BY NAME SELECT f.* EXCLUDE (version), 1 AS version "
                    "FROM _kt_frame f WHERE f.key NOT IN (SELECT key FROM llm_responses)"
                )
                return self._one("SELECT COUNT(*) FROM llm_responses")[0] - before
            finally:
                self._con.unregister("_kt_frame")

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

    # ------------------------------------------------------------------ text embeddings
    def text_embeddings(self, encoder: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors of ``encoder`` for the texts with these hashes (those that have one)."""
        wanted = pa.table({"text_hash": pa.array(list(hashes), pa.string())})
        self._con.register("_kt_keys", wanted)
        try:
            table = self._con.sql(
                "SELECT t.text_hash, t.vector FROM text_embeddings t JOIN _kt_keys USING (text_hash) "
                "WHERE t.encoder = $1", params=[encoder]
            ).to_arrow_table()
        finally:
            self._con.unregister("_kt_keys")
        vectors = table.column("vector").to_pylist()
        return {h: np.asarray(v, dtype=np.float32) for h, v in zip(table.column("text_hash").to_pylist(), vectors)}

    def save_text_embeddings(self, encoder: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Cache vectors by (encoder, text hash); already cached hashes are left as they are."""
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        table = pa.table({
            "encoder": pa.array([encoder] * len(hashes), pa.string()),
            "text_hash": pa.array(list(hashes), pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]).cast(pa.list_(pa.float32())),
        })
        self._con.register("_kt_frame", table)
        try:
            self._con.execute("INSERT OR IGNORE INTO text_embeddings SELECT * FROM _kt_frame")
        finally:
            self._con.unregister("_kt_frame")

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

    def run_names(self) -> list[str]:
        return [n for (n,) in self._con.execute("SELECT name FROM runs ORDER BY name").fetchall()]

    def start_run(self, row: RunRow) -> None:
        """Insert a run, or reset an unfinished one with the same name (its epochs are kept for resume)."""
        with self.transaction():
            self._con.execute("DELETE FROM runs WHERE name = ?", [row.name])
            self._con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [row.name, row.dataset, row.split_id, row.model, row.knowledge, json.dumps(row.config),
                 row.config_hash, row.seed, row.status, row.created_at, row.finished_at,
                 json.dumps(row.summary), json.dumps(row.versions), row.error],
            )

    def finish_run(self, name: str, status: str, summary: dict[str, Any], error: str | None = None) -> None:
        self._con.execute(
            "UPDATE runs SET status = ?, summary = ?, error = ?, finished_at = ? WHERE name = ?",
            [status, json.dumps(summary), error, _now(), name],
        )

    def delete_run(self, name: str) -> None:
        with self.transaction():
            evals = [e for (e,) in self._con.execute(
                "SELECT eval_id FROM evaluations WHERE run = ?", [name]).fetchall()]
            for table in ("eval_metrics", "eval_users", "evaluations"):
                self._con.execute(f"DELETE FROM {table} WHERE eval_id IN (SELECT unnest(?))", [evals])
            self._con.execute("DELETE FROM epochs WHERE run = ?", [name])
            self._con.execute("DELETE FROM runs WHERE name = ?", [name])

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
    ) -> None:
        """``per_user``: user_id, n_train, metric, k, value; ``aggregates``: slice, metric, k, value, n_users."""
        with self.transaction():
            for table in ("eval_metrics", "eval_users", "evaluations"):
                self._con.execute(f"DELETE FROM {table} WHERE eval_id = ?", [eval_id])
            self._con.execute(
                "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?)",
                [eval_id, run, json.dumps(settings, sort_keys=True), int(per_user["user_id"].nunique()),
                 seconds, _now()],
            )
            self._insert_frame("eval_users", per_user.assign(eval_id=eval_id))
            self._insert_frame("eval_metrics", aggregates.assign(eval_id=eval_id))

    def latest_evaluation(self, run: str) -> tuple[str, dict[str, Any]] | None:
        row = self._one(
            "SELECT eval_id, settings FROM evaluations WHERE run = ? ORDER BY created_at DESC LIMIT 1",
            [run],
        )
        return (row[0], _loads(row[1])) if row else None

    def eval_metrics(self, eval_id: str) -> pd.DataFrame:
        return self._con.execute(
            "SELECT slice, metric, k, value, n_users FROM eval_metrics WHERE eval_id = ? "
            "ORDER BY slice, metric, k",
            [eval_id],
        ).df()

    def eval_users(self, eval_id: str) -> pd.DataFrame:
        return self._con.execute(
            "SELECT user_id, n_train, metric, k, value FROM eval_users WHERE eval_id = ? "
            "ORDER BY metric, k, user_id",
            [eval_id],
        ).df()
