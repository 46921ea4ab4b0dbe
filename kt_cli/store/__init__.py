"""The one door to DuckDB: schema, migrations, every SQL string and transaction.

Every stage reads its inputs from and writes its outputs to one DuckDB file, so stages can be rerun,
mixed and cached. Files that do not belong in a database (RecBole's atomic files, model weights)
live in an artifacts folder beside it that the store owns (``kt.duckdb`` -> ``kt.artifacts/``).

The store is opened as a context manager for a short span and always closed, so one long command
(training) does not lock everyone else out: it reopens the store for each write. DuckDB allows one
writing process per file; opening waits briefly for a lock held by another kt process, then fails
with a :class:`~kt_cli.errors.StoreError` that names the holder.
"""

from kt_cli.store.data import DataTables
from kt_cli.store.knowledge import KnowledgeTables
from kt_cli.store.profiles import ProfileTables
from kt_cli.store.rows import DatasetRow, KnowledgeSetRow, ProfileSetRow, RunRow, _now
from kt_cli.store.runs import RunTables
from kt_cli.store.schema import DEFAULT_STORE, SCHEMA_VERSION


class Store(DataTables, KnowledgeTables, ProfileTables, RunTables):
    """An open kt store: ``with Store.open(path) as store: ...``. Each base holds one group of tables."""


__all__ = ["DEFAULT_STORE", "SCHEMA_VERSION", "DatasetRow", "KnowledgeSetRow", "ProfileSetRow", "RunRow", "Store",
           "_now"]
