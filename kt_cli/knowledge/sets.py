"""Named knowledge sets: importing vectors from a file, and reducing a set to a target width.

A knowledge set is one vector per user (or item) of a dataset, stored with its provenance: where it
came from (``source``), how it was made (``method`` and ``params``) and from which set (``parent``).
Both operations are keyed: rerunning with the same inputs returns the stored set without recomputing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kt_cli.datasets.registry import ensure_dataset
from kt_cli.errors import InvalidVectorsError, MissingInputError, UsageError
from kt_cli.knowledge.vector_files import read_vector_file
from kt_cli.store import KnowledgeSetRow, Store, _now

ENTITIES = ("user", "item")
METHODS = ("umap", "pca")


@dataclass(frozen=True)
class ImportReport:
    """What an import kept, skipped and left uncovered."""

    set: KnowledgeSetRow
    cached: bool
    rows_in_file: int
    invalid_rows: int  # duplicates, NaN/inf, ragged (only with skip_invalid)
    unknown_ids: int  # ids that are not users/items of the dataset (only with skip_invalid)
    without_vector: int  # dataset users/items that got no vector


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def import_vectors(
    store: Store, dataset: str, path: Path, name: str, *, entity: str = "user", skip_invalid: bool = False
) -> ImportReport:
    """Import vectors from ``path`` as set ``name``; unknown ids are an error unless ``skip_invalid``."""
    if entity not in ENTITIES:
        raise UsageError(f"--entity must be 'user' or 'item', not '{entity}'.")
    ensure_dataset(store, dataset)
    known = store.entity_ids(dataset, entity)
    params = {"file": str(path.resolve()), "sha256": _file_digest(path) if path.is_file() else None,
              "skip_invalid": skip_invalid}
    existing = store.knowledge_set(dataset, name)
    if existing and existing.source == "file" and existing.params.get("sha256") == params["sha256"] \
            and existing.params.get("skip_invalid") == skip_invalid and existing.entity == entity:
        return ImportReport(existing, True, existing.n_vectors, 0, 0, len(known) - existing.n_vectors)
    data = read_vector_file(path, drop_invalid=skip_invalid)
    ids = np.asarray(data.ids, dtype=object)
    is_known = np.fromiter((i in known for i in data.ids), dtype=bool, count=len(data.ids))
    unknown = int((~is_known).sum())
    if unknown and not skip_invalid:
        examples = ", ".join(map(str, ids[~is_known][:5]))
        raise InvalidVectorsError(
            f"{path.name} has {unknown} of {len(ids)} ids that are not {entity}s of {dataset} "
            f"(examples: {examples}). Check that the file belongs to this dataset and --entity"
            + (f", or pass --skip-invalid to import the {len(ids) - unknown} known ids." if unknown < len(ids) else
               ": none of its ids is known.")
        )
    vectors = data.vectors[is_known]
    kept = [str(i) for i in ids[is_known]]
    if not kept:
        raise InvalidVectorsError(
            f"{path.name} has no usable vector: of its {len(data.ids) + data.problems.total} rows, "
            f"{data.problems.total} are invalid and {unknown} have ids that are not {entity}s of {dataset} "
            f"(examples: {', '.join(map(str, ids[:5])) or 'none'}). Nothing was stored. Check that the file "
            "belongs to this dataset and --entity.")
    row = KnowledgeSetRow(dataset, name, entity, int(vectors.shape[1]), len(kept), "file", None,
                          params, None, _now())
    store.save_knowledge_set(row, kept, vectors)
    return ImportReport(row, False, len(data.ids) + data.problems.total, data.problems.total, unknown,
                        len(known) - len(kept))


def import_metadata_vectors(store: Store, dataset: str, name: str) -> ImportReport:
    """Store the no-LLM metadata vectors of ``dataset`` (see :mod:`kt_cli.knowledge.metadata`)."""
    from kt_cli.knowledge.metadata import metadata_vectors

    existing = store.knowledge_set(dataset, name)
    known = store.entity_ids(dataset, "user") if existing else set()
    if existing and existing.source == "metadata":
        return ImportReport(existing, True, existing.n_vectors, 0, 0, len(known) - existing.n_vectors)
    ids, vectors, columns = metadata_vectors(store, dataset)
    row = KnowledgeSetRow(dataset, name, "user", vectors.shape[1], len(ids), "metadata", "genre-era-shares",
                          {"columns": columns}, None, _now())
    store.save_knowledge_set(row, ids, vectors)
    return ImportReport(row, False, len(ids), 0, 0, 0)


def _reduce_matrix(vectors: np.ndarray, method: str, dim: int, seed: int) -> np.ndarray:
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=dim, random_state=seed).fit_transform(vectors)
    import warnings

    import umap  # slow to import (numba): only when asked for

    with warnings.catch_warnings():  # "n_jobs overridden by random_state": seeding is the point
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        return umap.UMAP(n_components=dim, random_state=seed).fit_transform(vectors)


def reduce_set(
    store: Store, dataset: str, parent: str, *, method: str = "umap", dim: int = 64, seed: int = 42,
    name: str | None = None,
) -> tuple[KnowledgeSetRow, bool]:
    """Reduce set ``parent`` to ``dim`` columns; returns the new set and whether it was cached.

    UMAP uses the library's defaults (as the LLM-KT reference does) with a fixed ``random_state``.
    """
    if method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)}, not '{method}'.")
    source = store.knowledge_set(dataset, parent)
    if source is None:
        names = ", ".join(k.name for k in store.knowledge_sets(dataset)) or "none yet"
        raise MissingInputError(
            f"There is no knowledge set '{parent}' for dataset {dataset} (sets: {names}).",
            f"kt embed --dataset {dataset} --from-file FILE --name {parent}",
        )
    limit = min(source.dim, source.n_vectors - 2 if method == "umap" else source.n_vectors)
    if not 1 <= dim <= limit:
        raise UsageError(
            f"--dim must be between 1 and {limit} for {method} on set '{parent}' "
            f"({source.n_vectors} vectors of {source.dim} dimensions), got {dim}."
        )
    name = name or f"{parent}-{method}{dim}"
    params = {"dim": dim, "seed": seed, "parent_created_at": source.created_at.isoformat()}
    existing = store.knowledge_set(dataset, name)
    if existing and existing.parent == parent and existing.method == method and existing.params == params:
        return existing, True
    ids, vectors = store.knowledge_vectors(dataset, parent)
    reduced = _reduce_matrix(vectors, method, dim, seed).astype(np.float32)
    row = KnowledgeSetRow(dataset, name, source.entity, dim, len(ids), "reduce", method, params, parent, _now())
    store.save_knowledge_set(row, ids, reduced)
    return row, False


def random_like(store: Store, dataset: str, like: str, *, seed: int = 42, name: str | None = None
                ) -> tuple[KnowledgeSetRow, bool]:
    """Random vectors for exactly the entities of set ``like``, with its per-column mean and spread.

    The control for "any auxiliary target regularises": the same users are covered (so the same users
    are masked in training) and the target has the same width and scale, but carries no knowledge.
    """
    source = store.knowledge_set(dataset, like)
    if source is None:
        names = ", ".join(k.name for k in store.knowledge_sets(dataset)) or "none yet"
        raise MissingInputError(f"There is no knowledge set '{like}' for dataset {dataset} (sets: {names}).",
                                f"kt reduce --dataset {dataset} --from SET --dim N")
    name = name or f"{like}-random"
    params = {"seed": seed, "like_created_at": source.created_at.isoformat()}
    existing = store.knowledge_set(dataset, name)
    if existing and existing.parent == like and existing.method == "random-like" and existing.params == params:
        return existing, True
    ids, vectors = store.knowledge_vectors(dataset, like)
    noise = np.random.default_rng(seed).standard_normal(vectors.shape)
    matched = (noise * vectors.std(axis=0) + vectors.mean(axis=0)).astype(np.float32)
    row = KnowledgeSetRow(dataset, name, source.entity, source.dim, len(ids), "random", "random-like", params, like,
                          _now())
    store.save_knowledge_set(row, ids, matched)
    return row, False


def restrict_like(store: Store, dataset: str, source: str, like: str, *, name: str) -> tuple[KnowledgeSetRow, bool]:
    """Set ``source``'s vectors for only the entities set ``like`` covers.

    A control (say no-LLM text) compared with partial LLM knowledge must cover the same entities, or the
    comparison mixes what the vectors carry with how many entities have one.
    """
    rows = {}
    for set_name in (source, like):
        rows[set_name] = store.knowledge_set(dataset, set_name)
        if rows[set_name] is None:
            names = ", ".join(k.name for k in store.knowledge_sets(dataset)) or "none yet"
            raise MissingInputError(f"There is no knowledge set '{set_name}' for dataset {dataset} (sets: {names}).",
                                    f"kt embed --dataset {dataset} ...")
    params = {"like": like, "like_created_at": rows[like].created_at.isoformat(),
              "source_created_at": rows[source].created_at.isoformat()}
    existing = store.knowledge_set(dataset, name)
    if existing and existing.parent == source and existing.method == "restrict-like" and existing.params == params:
        return existing, True
    keep = set(store.knowledge_vectors(dataset, like)[0])
    ids, vectors = store.knowledge_vectors(dataset, source)
    chosen = [i for i, entity in enumerate(ids) if entity in keep]
    row = KnowledgeSetRow(dataset, name, rows[source].entity, rows[source].dim, len(chosen), rows[source].source,
                          "restrict-like", params, source, _now())
    store.save_knowledge_set(row, [ids[i] for i in chosen], vectors[chosen])
    return row, False
