"""Tests for reading knowledge-vector files: every format, every alias, every problem and error path."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kt_cli.errors import DataFormatError, InvalidVectorsError
from kt_cli.knowledge.vector_files import VectorProblems, read_vector_file


def _matrix(rows: int = 4, dim: int = 3) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((rows, dim)).astype(np.float32)


def _assert_read(path: Path, ids: list[str], matrix: np.ndarray) -> None:
    result = read_vector_file(path)
    assert result.ids == ids
    assert result.vectors.dtype == np.float32
    assert result.vectors.flags.c_contiguous
    np.testing.assert_array_equal(result.vectors, matrix)
    assert result.problems == VectorProblems()
    assert result.problems.total == 0


def _records(ids: list[object], matrix: np.ndarray, id_key: str = "id", vector_key: str = "embedding") -> list:
    return [{id_key: i, vector_key: row.tolist()} for i, row in zip(ids, matrix, strict=True)]


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


# --- formats and aliases ---------------------------------------------------------------------------


def test_npz_int_ids_become_strings(tmp_path: Path) -> None:
    matrix = _matrix()
    np.savez(tmp_path / "v.npz", ids=np.array([10, 11, 12, 13]), embeddings=matrix)
    _assert_read(tmp_path / "v.npz", ["10", "11", "12", "13"], matrix)


@pytest.mark.parametrize("id_key", ["ids", "user_id", "item_id"])
@pytest.mark.parametrize("vector_key", ["embeddings", "vectors"])
def test_npz_aliases(tmp_path: Path, id_key: str, vector_key: str) -> None:
    matrix = _matrix()
    np.savez(tmp_path / "v.npz", **{id_key: np.array(["a", "b", "c", "d"]), vector_key: matrix})
    _assert_read(tmp_path / "v.npz", ["a", "b", "c", "d"], matrix)


def test_npz_whole_float_ids_lose_their_fraction(tmp_path: Path) -> None:
    matrix = _matrix(3)
    np.savez(tmp_path / "v.npz", ids=np.array([3.0, 4.0, 4.5]), embeddings=matrix.astype(np.float64))
    _assert_read(tmp_path / "v.npz", ["3", "4", "4.5"], matrix)


def test_npz_missing_keys_names_found_and_expected(tmp_path: Path) -> None:
    np.savez(tmp_path / "v.npz", names=np.array([1, 2]), embeddings=_matrix(2))
    with pytest.raises(DataFormatError, match="names") as error:
        read_vector_file(tmp_path / "v.npz")
    assert "expected an id array (ids / user_id / item_id)" in str(error.value)


def test_npz_non_2d_vectors(tmp_path: Path) -> None:
    np.savez(tmp_path / "v.npz", ids=np.array([1, 2]), embeddings=np.zeros((2, 3, 4)))
    with pytest.raises(DataFormatError, match="2-D"):
        read_vector_file(tmp_path / "v.npz")


def test_npz_id_count_mismatch(tmp_path: Path) -> None:
    np.savez(tmp_path / "v.npz", ids=np.array([1, 2, 3]), embeddings=_matrix(2))
    with pytest.raises(DataFormatError, match="3 ids but 2 vectors"):
        read_vector_file(tmp_path / "v.npz")


def test_npy_with_sidecar_and_uppercase_suffix(tmp_path: Path) -> None:
    matrix = _matrix()
    with (tmp_path / "V.NPY").open("wb") as handle:  # np.save would append ".npy" to this name
        np.save(handle, matrix)
    (tmp_path / "V.ids.txt").write_text("u1\nu2\nu3\nu4\n")
    _assert_read(tmp_path / "V.NPY", ["u1", "u2", "u3", "u4"], matrix)


def test_npy_missing_sidecar_names_the_expected_path(tmp_path: Path) -> None:
    np.save(tmp_path / "vectors.npy", _matrix())
    with pytest.raises(DataFormatError, match="vectors.ids.txt") as error:
        read_vector_file(tmp_path / "vectors.npy")
    assert str(tmp_path / "vectors.ids.txt") in str(error.value)


def test_npy_one_dimensional(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.zeros(3))
    (tmp_path / "v.ids.txt").write_text("a\nb\nc\n")
    with pytest.raises(DataFormatError, match="2-D"):
        read_vector_file(tmp_path / "v.npy")


@pytest.mark.parametrize(
    ("id_key", "vector_key"), [("id", "embedding"), ("user_id", "vector"), ("item_id", "embedding")]
)
def test_parquet_list_column_and_aliases(tmp_path: Path, id_key: str, vector_key: str) -> None:
    matrix = _matrix()
    table = pa.table({id_key: [1, 2, 3, 4], vector_key: list(matrix), "note": ["x"] * 4})
    pq.write_table(table, tmp_path / "v.parquet")
    _assert_read(tmp_path / "v.parquet", ["1", "2", "3", "4"], matrix)


def test_parquet_fixed_size_list(tmp_path: Path) -> None:
    matrix = _matrix()
    column = pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), 3)
    pq.write_table(pa.table({"id": ["a", "b", "c", "d"], "embedding": column}), tmp_path / "v.parquet")
    _assert_read(tmp_path / "v.parquet", ["a", "b", "c", "d"], matrix)


@pytest.mark.parametrize("prefix", ["", "e"])
def test_parquet_wide_layout(tmp_path: Path, prefix: str) -> None:
    matrix = _matrix()
    columns = {f"{prefix}{j}": matrix[:, j].astype(np.float64) for j in range(3)}
    pq.write_table(pa.table({"user_id": [5, 6, 7, 8], **columns}), tmp_path / "v.parquet")
    _assert_read(tmp_path / "v.parquet", ["5", "6", "7", "8"], matrix)


def test_parquet_wide_layout_rejects_text_columns(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": [1], "e0": [0.5], "label": ["x"]}), tmp_path / "v.parquet")
    with pytest.raises(DataFormatError, match="label"):
        read_vector_file(tmp_path / "v.parquet")


def test_parquet_without_id_column(tmp_path: Path) -> None:
    pq.write_table(pa.table({"key": [1], "embedding": [[0.5]]}), tmp_path / "v.parquet")
    with pytest.raises(DataFormatError, match="has columns key, embedding; expected an id column"):
        read_vector_file(tmp_path / "v.parquet")


@pytest.mark.parametrize(("id_key", "vector_key"), [("id", "embedding"), ("user_id", "vector"), ("item_id", "vector")])
def test_json_list_of_records_and_aliases(tmp_path: Path, id_key: str, vector_key: str) -> None:
    matrix = _matrix()
    records = _records([1, 2.0, "c", 4], matrix, id_key, vector_key)
    (tmp_path / "v.json").write_text(json.dumps(records))
    _assert_read(tmp_path / "v.json", ["1", "2", "c", "4"], matrix)


def test_json_mapping_of_id_to_vector(tmp_path: Path) -> None:
    matrix = _matrix()
    (tmp_path / "v.json").write_text(json.dumps({f"u{i}": row.tolist() for i, row in enumerate(matrix)}))
    _assert_read(tmp_path / "v.json", ["u0", "u1", "u2", "u3"], matrix)


def test_json_gzip(tmp_path: Path) -> None:
    matrix = _matrix()
    with gzip.open(tmp_path / "v.json.gz", "wt") as handle:
        json.dump(_records([1, 2, 3, 4], matrix), handle)
    _assert_read(tmp_path / "v.json.gz", ["1", "2", "3", "4"], matrix)


def test_json_record_missing_keys(tmp_path: Path) -> None:
    (tmp_path / "v.json").write_text(json.dumps([{"uid": 1, "embedding": [1.0]}]))
    with pytest.raises(DataFormatError, match="item 0 has keys uid, embedding; expected an id key"):
        read_vector_file(tmp_path / "v.json")


def test_json_of_the_wrong_shape(tmp_path: Path) -> None:
    (tmp_path / "v.json").write_text(json.dumps({"id": 1, "embedding": [1.0]}))
    with pytest.raises(DataFormatError, match="must hold"):
        read_vector_file(tmp_path / "v.json")


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".JSONL"])
def test_jsonl_skips_blank_lines(tmp_path: Path, suffix: str) -> None:
    matrix = _matrix()
    lines = [json.dumps(record) for record in _records([1, 2, 3, 4], matrix)]
    (tmp_path / f"v{suffix}").write_text("\n".join([lines[0], "", *lines[1:], "  ", ""]))
    _assert_read(tmp_path / f"v{suffix}", ["1", "2", "3", "4"], matrix)


def test_jsonl_gzip(tmp_path: Path) -> None:
    matrix = _matrix()
    with gzip.open(tmp_path / "v.jsonl.gz", "wt") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in _records(["a", "b", "c", "d"], matrix))
    _assert_read(tmp_path / "v.jsonl.gz", ["a", "b", "c", "d"], matrix)


def test_jsonl_bad_line_reports_its_number(tmp_path: Path) -> None:
    (tmp_path / "v.jsonl").write_text('{"id": 1, "embedding": [1.0]}\n\n{"id": 2, "embedding": [2.0\n')
    with pytest.raises(DataFormatError, match="line 3 is not valid JSON"):
        read_vector_file(tmp_path / "v.jsonl")


def test_jsonl_non_numeric_values(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "v.jsonl", [{"id": 1, "embedding": ["x", 1.0]}])
    with pytest.raises(DataFormatError, match="only numbers"):
        read_vector_file(tmp_path / "v.jsonl")


# --- problems --------------------------------------------------------------------------------------


def _problem_file(tmp_path: Path) -> Path:
    """Ten rows: ids 3 and 5 repeated, one NaN row (id 7), one ragged row (id 8)."""
    matrix = np.arange(30, dtype=np.float32).reshape(10, 3)
    records = _records([0, 1, 2, 3, 4, 5, 3, 7, 8, 5], matrix)
    records[7]["embedding"][1] = float("nan")
    records[8]["embedding"].append(1.0)
    return _write_jsonl(tmp_path / "vectors.jsonl", records)


def test_problems_raise_one_message_with_counts(tmp_path: Path) -> None:
    with pytest.raises(InvalidVectorsError) as error:
        read_vector_file(_problem_file(tmp_path))
    message = str(error.value)
    assert "vectors.jsonl has 4 invalid rows out of 10: 2 duplicate ids, 1 row with NaN/inf, 1 ragged row" in message
    assert "examples: 3, 7, 8, 5" in message
    assert "most rows have 3 values" in message
    assert "--skip-invalid to import the 6 valid rows" in message
    assert "\n" not in message


def test_problems_dropped_and_counted(tmp_path: Path) -> None:
    result = read_vector_file(_problem_file(tmp_path), drop_invalid=True)
    assert result.problems == VectorProblems(duplicate_ids=2, nan_rows=1, ragged_rows=1, examples=("3", "7", "8", "5"))
    assert result.problems.total == 4
    assert result.ids == ["0", "1", "2", "3", "4", "5"]
    np.testing.assert_array_equal(result.vectors, np.arange(18, dtype=np.float32).reshape(6, 3))
    assert result.vectors.flags.c_contiguous


def test_duplicates_keep_the_first_occurrence(tmp_path: Path) -> None:
    matrix = _matrix(4)
    np.savez(tmp_path / "v.npz", ids=np.array(["a", "b", "a", "a"]), embeddings=matrix)
    with pytest.raises(InvalidVectorsError, match="2 invalid rows out of 4: 2 duplicate ids, 0 rows with NaN/inf"):
        read_vector_file(tmp_path / "v.npz")
    result = read_vector_file(tmp_path / "v.npz", drop_invalid=True)
    assert (result.ids, result.problems.duplicate_ids, result.problems.examples) == (["a", "b"], 2, ("a", "a"))
    np.testing.assert_array_equal(result.vectors, matrix[:2])


def test_int_and_whole_float_ids_are_the_same_id(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "v.jsonl", _records([1, 1.0, 2], _matrix(3)))
    assert read_vector_file(tmp_path / "v.jsonl", drop_invalid=True).ids == ["1", "2"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_rows(tmp_path: Path, bad: float) -> None:
    matrix = _matrix(5)
    matrix[[1, 3], 2] = bad
    np.savez(tmp_path / "v.npz", ids=np.arange(5), embeddings=matrix)
    with pytest.raises(InvalidVectorsError, match="2 rows with NaN/inf.*import the 3 valid rows"):
        read_vector_file(tmp_path / "v.npz")
    result = read_vector_file(tmp_path / "v.npz", drop_invalid=True)
    assert (result.ids, result.problems.nan_rows, result.problems.total) == (["0", "2", "4"], 2, 2)
    np.testing.assert_array_equal(result.vectors, matrix[[0, 2, 4]])


def test_ragged_rows_in_parquet(tmp_path: Path) -> None:
    vectors = [[1.0, 2.0], [3.0], [4.0, 5.0], None, [6.0, 7.0, 8.0]]
    pq.write_table(pa.table({"id": ["a", "b", "c", "d", "e"], "embedding": vectors}), tmp_path / "v.parquet")
    with pytest.raises(InvalidVectorsError, match="3 ragged rows .*most rows have 2 values"):
        read_vector_file(tmp_path / "v.parquet")
    result = read_vector_file(tmp_path / "v.parquet", drop_invalid=True)
    assert (result.ids, result.problems.ragged_rows, result.problems.examples) == (["a", "c"], 3, ("b", "d", "e"))
    np.testing.assert_array_equal(result.vectors, np.array([[1, 2], [4, 5]], dtype=np.float32))


def test_no_valid_rows_is_an_error_even_when_dropping(tmp_path: Path) -> None:
    np.savez(tmp_path / "v.npz", ids=np.arange(2), embeddings=np.full((2, 3), np.nan))
    with pytest.raises(InvalidVectorsError, match="None of the rows are valid"):
        read_vector_file(tmp_path / "v.npz", drop_invalid=True)


# --- files that cannot be read ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["v.csv", "v.npz.gz", "vectors"])
def test_unsupported_suffix_lists_formats(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("x")
    with pytest.raises(DataFormatError, match=r"supported formats are .npz, .npy, .parquet, .json, .jsonl"):
        read_vector_file(tmp_path / name)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="does not exist") as error:
        read_vector_file(tmp_path / "nope.npz")
    assert str(tmp_path / "nope.npz") in str(error.value)


@pytest.mark.parametrize(("name", "content"), [("v.jsonl", "\n\n"), ("v.json", "[]"), ("v.json", "")])
def test_empty_text_files(tmp_path: Path, name: str, content: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(DataFormatError, match="has no rows|is empty"):
        read_vector_file(tmp_path / name)


def test_zero_row_array(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.zeros((0, 4)))
    (tmp_path / "v.ids.txt").write_text("")
    with pytest.raises(DataFormatError, match="has no rows"):
        read_vector_file(tmp_path / "v.npy")


@pytest.mark.parametrize("name", ["v.npz", "v.npy", "v.parquet", "v.json.gz"])
def test_corrupt_files(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"not really")
    (tmp_path / "v.ids.txt").write_text("a\n")
    with pytest.raises(DataFormatError, match="Cannot read"):
        read_vector_file(tmp_path / name)
