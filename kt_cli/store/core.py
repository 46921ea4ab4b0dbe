"""Opening, locking, migrating and transactions: what every table group of the store builds on."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

from kt_cli.errors import StoreError
from kt_cli.store.schema import DEFAULT_STORE, MIGRATIONS, SCHEMA_VERSION

S = TypeVar("S", bound="StoreCore")

_LOCK_PATTERN = re.compile(r"lock", re.IGNORECASE)
_PID_PATTERN = re.compile(r"PID (\d+)")



class StoreCore:
    """An open connection to a kt store. Use :meth:`open`; do not construct directly."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection) -> None:
        self.path = path
        self._con = con
        self._in_transaction = False

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    @contextmanager
    def open(cls: type[S], path: Path | str = DEFAULT_STORE, *, lock_timeout: float = 10.0,
             create: bool = True) -> Iterator[S]:
        """Open (migrating if needed) the store at ``path``; always closes it. ``create=False`` (commands that
        only read) refuses a path with no store instead of creating an empty one and its folders."""
        path = Path(path)
        if not create and not path.is_file():
            raise StoreError(
                f"There is no kt store at {path}. Commands that need an existing store (kt runs, kt knowledge, "
                "kt compare, kt eval, kt show) never create one: check --store or KT_STORE, or make the store "
                "with the first kt profile, kt embed or kt train.")
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

    @contextmanager
    def _registered(self, name: str, frame: pd.DataFrame | pa.Table) -> Iterator[None]:
        """``frame`` visible to SQL as ``name`` inside the block. When a statement failed inside a transaction,
        DuckDB refuses even the unregistering until the rollback: the statement's own error is the one raised."""
        self._con.register(name, frame)
        try:
            yield
        except BaseException:
            try:
                self._con.unregister(name)
            except duckdb.Error:
                pass  # the transaction is aborted; the view goes with the connection
            raise
        self._con.unregister(name)

    def _insert_frame(self, table: str, frame: pd.DataFrame | pa.Table) -> None:
        with self._registered("_kt_frame", frame):
            self._con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _kt_frame")

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        """First row or None. DuckDB 2 refuses new work on a connection with an undrained result."""
        rows = self._con.execute(sql, params).fetchall()
        return rows[0] if rows else None

    def schema_version(self) -> int:
        row = self._one("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(row[0])

