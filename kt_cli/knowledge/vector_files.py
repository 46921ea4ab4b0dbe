"""Read precomputed knowledge vectors (one per user or item) from a file into ids + a float32 matrix.

Every reader turns its format into the same flat form (raw ids, per-row lengths, all values
concatenated) so that validation is written once and stays vectorised: ragged rows are found from the
lengths before anything is stacked, and bad rows are counted and reported, never silently dropped.
"""

from __future__ import annotations

import gzip
import json
import math
import zipfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import IO

import numpy as np

from kt_cli.errors import DataFormatError, InvalidVectorsError

_ID_KEYS = ("id", "user_id", "item_id")
_NPZ_ID_KEYS = ("ids", "user_id", "item_id")
_NPZ_VECTOR_KEYS = ("embeddings", "vectors")
_VECTOR_KEYS = ("embedding", "vector")
_JSON_SHAPE = 'a list of {"id": ..., "embedding": [...]} objects or one object mapping id -> list'


@dataclass(frozen=True)
class VectorProblems:
    """Rows removed from a file, by reason.

    Each row counts under one reason only, the first that applies of: duplicate id, ragged, NaN/inf;
    so ``total`` is exactly the number of rows removed.
    """

    duplicate_ids: int = 0
    nan_rows: int = 0
    ragged_rows: int = 0
    examples: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """Number of rows removed."""
        return self.duplicate_ids + self.nan_rows + self.ragged_rows


@dataclass(frozen=True)
class VectorFile:
    """Validated vectors: ``vectors[i]`` belongs to ``ids[i]``."""

    ids: list[str]
    vectors: np.ndarray
    problems: VectorProblems


@dataclass(frozen=True)
class _Rows:
    """A file's content before validation: ``values`` is every row's numbers, concatenated."""

    ids: Sequence[object]
    lengths: np.ndarray
    values: np.ndarray


def read_vector_file(path: Path, *, drop_invalid: bool = False) -> VectorFile:
    """Read ``path`` (format chosen by suffix) and validate it.

    Raises ``InvalidVectorsError`` on duplicate ids, NaN/inf or ragged rows unless ``drop_invalid``,
    in which case those rows are removed (the first occurrence of a duplicate id is kept) and counted.
    """
    name = path.name.lower()
    compressed = name.endswith(".gz")
    suffix = Path(name[:-3] if compressed else name).suffix
    reader = _READERS.get(suffix)
    if reader is None or (compressed and suffix not in _TEXT_SUFFIXES):
        supported = ", ".join([*_READERS, *(f"{s}.gz" for s in _TEXT_SUFFIXES)])
        raise DataFormatError(f"Cannot read vectors from {path}: supported formats are {supported}.")
    if not path.is_file():
        raise DataFormatError(f"Vector file {path} does not exist.")
    try:
        rows = reader(path)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise DataFormatError(f"Cannot read {path} as {suffix[1:]}: {e}") from e
    return _validate(rows, path.name, drop_invalid)


def _validate(rows: _Rows, source: str, drop_invalid: bool) -> VectorFile:
    n = len(rows.ids)
    if n == 0:
        raise DataFormatError(f"{source} has no rows.")
    ids = [_id_str(value, source) for value in rows.ids]
    sizes, counts = np.unique(rows.lengths, return_counts=True)
    dim = int(sizes[counts.argmax()])
    if dim == 0:
        raise DataFormatError(f"{source}: the vectors are empty (length 0).")
    off_length = rows.lengths != dim
    values = rows.values[np.repeat(~off_length, rows.lengths)] if off_length.any() else rows.values
    with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32 become inf: flagged
        matrix = values.reshape(-1, dim).astype(np.float32, copy=False)
    nonfinite = np.zeros(n, dtype=bool)
    nonfinite[~off_length] = ~np.isfinite(matrix).all(axis=1)
    duplicate = np.ones(n, dtype=bool)
    duplicate[np.unique(np.asarray(ids), return_index=True)[1]] = False
    ragged = off_length & ~duplicate
    nonfinite &= ~(duplicate | ragged)
    bad = duplicate | ragged | nonfinite
    if not bad.any():
        return VectorFile(ids, np.ascontiguousarray(matrix), VectorProblems())
    examples = tuple(ids[i] for i in np.flatnonzero(bad)[:5])
    problems = VectorProblems(int(duplicate.sum()), int(nonfinite.sum()), int(ragged.sum()), examples)
    if not drop_invalid or problems.total == n:
        raise InvalidVectorsError(_problem_message(source, n, problems, dim))
    keep = ~bad
    kept_ids = [ids[i] for i in np.flatnonzero(keep)]
    return VectorFile(kept_ids, np.ascontiguousarray(matrix[keep[~off_length]]), problems)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _problem_message(source: str, n: int, problems: VectorProblems, dim: int) -> str:
    valid = n - problems.total
    remedy = (
        f"Fix the file, or pass --skip-invalid to import the {_plural(valid, 'valid row')}."
        if valid
        else "None of the rows are valid; fix the file."
    )
    return (
        f"{source} has {_plural(problems.total, 'invalid row')} out of {n}: "
        f"{_plural(problems.duplicate_ids, 'duplicate id')}, "
        f"{_plural(problems.nan_rows, 'row')} with NaN/inf, "
        f"{_plural(problems.ragged_rows, 'ragged row')} (examples: {', '.join(problems.examples)}"
        f"{f'; most rows have {dim} values' if problems.ragged_rows else ''}). {remedy}"
    )


def _id_str(value: object, source: str) -> str:
    """Ids are compared as strings: 17, 17.0 and "17" are the same id."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    raise DataFormatError(f"{source}: id {value!r} is not a string or a number.")


def _pick(found: Collection[str], keys: tuple[str, ...]) -> str | None:
    return next((key for key in keys if key in found), None)


def _keys_error(
    source: str,
    kind: str,
    found: Iterable[str],
    vector_keys: tuple[str, ...],
    id_keys: tuple[str, ...] = _ID_KEYS,
) -> DataFormatError:
    listed = ", ".join(map(str, found)) or "(none)"
    return DataFormatError(
        f"{source} has {kind} {listed}; expected an id {kind[:-1]} ({' / '.join(id_keys)}) "
        f"and a vector {kind[:-1]} ({' / '.join(vector_keys)})."
    )


def _from_matrix(ids: Sequence[object], matrix: np.ndarray, source: str) -> _Rows:
    if matrix.ndim != 2:
        raise DataFormatError(f"{source}: the vectors must be a 2-D array, got shape {matrix.shape}.")
    if matrix.dtype.kind not in "biuf":
        raise DataFormatError(f"{source}: the vectors must be numbers, got dtype {matrix.dtype}.")
    if len(ids) != matrix.shape[0]:
        raise DataFormatError(f"{source} has {len(ids)} ids but {matrix.shape[0]} vectors.")
    return _Rows(ids, np.full(matrix.shape[0], matrix.shape[1], dtype=np.int64), matrix.reshape(-1))


def _from_lists(ids: Sequence[object], embeddings: Sequence[list[object]], source: str) -> _Rows:
    lengths = np.fromiter(map(len, embeddings), dtype=np.int64, count=len(embeddings))
    try:
        values = np.fromiter(chain.from_iterable(embeddings), dtype=np.float64, count=int(lengths.sum()))
    except (TypeError, ValueError) as e:
        raise DataFormatError(f"{source}: embeddings must contain only numbers ({e}).") from e
    return _Rows(ids, lengths, values)


def _read_npz(path: Path) -> _Rows:
    with np.load(path, allow_pickle=False) as data:
        id_key, vector_key = _pick(data.files, _NPZ_ID_KEYS), _pick(data.files, _NPZ_VECTOR_KEYS)
        if id_key is None or vector_key is None:
            raise _keys_error(path.name, "arrays", data.files, _NPZ_VECTOR_KEYS, _NPZ_ID_KEYS)
        ids, matrix = data[id_key], data[vector_key]
    if ids.ndim != 1:
        raise DataFormatError(f"{path.name}: '{id_key}' must be a 1-D array, got shape {ids.shape}.")
    return _from_matrix(ids.tolist(), matrix, path.name)


def _read_npy(path: Path) -> _Rows:
    sidecar = path.with_name(f"{path.stem}.ids.txt")
    if not sidecar.is_file():
        raise DataFormatError(f"{path.name} holds no ids: expected them one per line in {sidecar}.")
    matrix = np.load(path, allow_pickle=False)
    if not isinstance(matrix, np.ndarray):
        raise DataFormatError(f"{path.name} is an .npz archive, not a single .npy array.")
    lines = [line.strip() for line in sidecar.read_text(encoding="utf-8").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return _from_matrix(lines, matrix, path.name)


def _read_parquet(path: Path) -> _Rows:
    import pyarrow as pa  # lazy: only this format needs it
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    id_key, vector_key = _pick(table.column_names, _ID_KEYS), _pick(table.column_names, _VECTOR_KEYS)
    others = [name for name in table.column_names if name != id_key]
    if id_key is None or (vector_key is None and not others):
        raise _keys_error(path.name, "columns", table.column_names, _VECTOR_KEYS)
    ids = table.column(id_key).to_pylist()
    if vector_key is None:  # wide layout: one numeric column per dimension
        types = table.select(others).schema.types
        if not all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types):
            wide = (*_VECTOR_KEYS, "all-numeric columns")
            raise _keys_error(path.name, "columns", table.column_names, wide)
        matrix = np.empty((table.num_rows, len(others)), dtype=np.float32)
        with np.errstate(over="ignore"):  # values beyond float32 become inf and are flagged
            for j, name in enumerate(others):
                matrix[:, j] = table.column(name).to_numpy()
        return _from_matrix(ids, matrix, path.name)
    column = table.column(vector_key).combine_chunks()
    kind = column.type
    is_list = pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    if not (is_list and (pa.types.is_integer(kind.value_type) or pa.types.is_floating(kind.value_type))):
        raise DataFormatError(f"{path.name}: column '{vector_key}' must be a list of numbers, got {kind}.")
    lengths = pc.list_value_length(column).fill_null(0).to_numpy().astype(np.int64)
    return _Rows(ids, lengths, column.flatten().to_numpy(zero_copy_only=False))


def _open_text(path: Path) -> IO[str]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _split_records(records: Iterable[tuple[str, object]], source: str) -> _Rows:
    ids: list[object] = []
    embeddings: list[list[object]] = []
    for where, record in records:
        if not isinstance(record, dict):
            raise DataFormatError(f"{source}: {where} is not an object; expected {_JSON_SHAPE}.")
        id_key, vector_key = _pick(record, _ID_KEYS), _pick(record, _VECTOR_KEYS)
        if id_key is None or vector_key is None:
            raise _keys_error(f"{source} {where}", "keys", record, _VECTOR_KEYS)
        if not isinstance(record[vector_key], list):
            raise DataFormatError(f"{source}: {where} has a '{vector_key}' that is not a list.")
        ids.append(record[id_key])
        embeddings.append(record[vector_key])
    return _from_lists(ids, embeddings, source)


def _read_json(path: Path) -> _Rows:
    with _open_text(path) as handle:
        text = handle.read()
    if not text.strip():
        raise DataFormatError(f"{path.name} is empty.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path.name} is not valid JSON (line {e.lineno}: {e.msg}).") from e
    if isinstance(data, list):
        return _split_records(((f"item {i}", record) for i, record in enumerate(data)), path.name)
    if isinstance(data, dict) and all(isinstance(vector, list) for vector in data.values()):
        return _from_lists(list(data), list(data.values()), path.name)
    raise DataFormatError(f"{path.name} must hold {_JSON_SHAPE}.")


def _read_jsonl(path: Path) -> _Rows:
    records: list[tuple[str, object]] = []
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{path.name}: line {number} is not valid JSON ({e.msg}).") from e
    return _split_records(records, path.name)


_READERS = {".npz": _read_npz, ".npy": _read_npy, ".parquet": _read_parquet, ".json": _read_json,
            ".jsonl": _read_jsonl, ".ndjson": _read_jsonl}
_TEXT_SUFFIXES = (".json", ".jsonl", ".ndjson")
