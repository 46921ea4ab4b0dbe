"""Knowledge sets (vectors per user or item) and the text-embedding cache."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from kt_cli.store.core import StoreCore
from kt_cli.store.rows import KnowledgeSetRow, _loads


class KnowledgeTables(StoreCore):
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

    # ------------------------------------------------------------------ text embeddings
    def text_embeddings(self, encoder: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors of ``encoder`` for the texts with these hashes (those that have one)."""
        wanted = pa.table({"text_hash": pa.array(list(hashes), pa.string())})
        with self._registered("_kt_keys", wanted):
            table = self._con.sql(
                "SELECT t.text_hash, t.vector FROM text_embeddings t JOIN _kt_keys USING (text_hash) "
                "WHERE t.encoder = $1", params=[encoder]
            ).to_arrow_table()
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
        with self._registered("_kt_frame", table):
            self._con.execute("INSERT OR IGNORE INTO text_embeddings SELECT * FROM _kt_frame")

