"""The Amazon importer: every supported dump format, read back from the atomic files it writes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from kt_cli.datasets.amazon import ITEM_FIRST, USER_FIRST, import_amazon
from kt_cli.errors import DataFormatError, UsageError

INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"
ITEM_HEADER = "item_id:token\ttitle:token_seq\tcategories:token_seq\tbrand:token\tyear:token\tprice:token"

U1, U2, U3 = "A1RSDE90N6RSZF", "A2JXS1JII6SAUD", "AGKHLEW2SOWHNMFQIJGBECAF7INQ"
I1, I2, I3 = "0001393774", "B000002L9T", "B00005NTJ9"


def write(path: Path, lines: list[str], *, gz: bool = False) -> Path:
    """A fixture dump; ``gz`` compresses it whatever the file name says."""
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def read_rows(path: Path) -> tuple[str, list[list[str]]]:
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    return header, [row.split("\t") for row in rows]


def test_2014_ratings_csv_is_user_first(tmp_path: Path) -> None:
    src = write(tmp_path / "ratings.csv", [f"{U1},{I1},5.0,1093996800", f"{U2},{I2},3.0,1361232000",
                                           f"{U1},{I3},4.0,1200000000"])
    report = import_amazon(tmp_path / "out", "amazon-cds", ratings=src)
    header, rows = read_rows(tmp_path / "out" / "amazon-cds.inter")
    assert header == INTER_HEADER
    assert rows == [[U1, I1, "5", "1093996800"], [U2, I2, "3", "1361232000"], [U1, I3, "4", "1200000000"]]
    assert report.ratings_columns == USER_FIRST
    assert (report.n_interactions, report.n_users, report.n_items) == (3, 2, 3)
    assert report.files == [tmp_path / "out" / "amazon-cds.inter"]
    assert (report.n_duplicates, report.n_bad_lines, report.n_items_with_meta) == (0, 0, 0)


def test_2018_ratings_csv_is_item_first_and_gzipped(tmp_path: Path) -> None:
    src = write(tmp_path / "CDs_and_Vinyl.csv", [f"{I1},{U1},5.0,1093996800", f"{I2},{U3},2.0,1361232000"],
                gz=True)
    report = import_amazon(tmp_path, "cds", ratings=src)
    _, rows = read_rows(tmp_path / "cds.inter")
    assert rows == [[U1, I1, "5", "1093996800"], [U3, I2, "2", "1361232000"]]
    assert report.ratings_columns == ITEM_FIRST


def test_2023_ratings_csv_header_and_milliseconds(tmp_path: Path) -> None:
    src = write(tmp_path / "CDs.csv", ["user_id,parent_asin,rating,timestamp",
                                       f"{U3},{I2},4.0,1588687728923", f"{U1},{I1},1.0,1588687729000"])
    report = import_amazon(tmp_path, "cds", ratings=src)
    _, rows = read_rows(tmp_path / "cds.inter")
    assert rows == [[U3, I2, "4", "1588687728.923"], [U1, I1, "1", "1588687729"]]
    assert report.ratings_columns == USER_FIRST
    assert report.n_bad_lines == 0


def test_ratings_columns_override_beats_the_guess(tmp_path: Path) -> None:
    src = write(tmp_path / "r.csv", [f"{U1},{I1},5,100000000"])
    report = import_amazon(tmp_path, "x", ratings=src, ratings_columns=ITEM_FIRST)
    _, rows = read_rows(tmp_path / "x.inter")
    assert rows == [[I1, U1, "5", "100000000"]]
    assert report.ratings_columns == ITEM_FIRST


def test_reviews_2018_jsonl_keeps_four_values(tmp_path: Path) -> None:
    lines = [json.dumps({"reviewerID": U1, "asin": I1, "overall": 5.0, "unixReviewTime": 1093996800,
                         "reviewText": "Great\tcd\nreally", "summary": "x"}),
             json.dumps({"reviewerID": U2, "asin": I1, "overall": 2.0, "unixReviewTime": 1361232000})]
    src = write(tmp_path / "reviews.json.gz", lines, gz=True)
    report = import_amazon(tmp_path, "r", reviews=src)
    header, rows = read_rows(tmp_path / "r.inter")
    assert header == INTER_HEADER
    assert rows == [[U1, I1, "5", "1093996800"], [U2, I1, "2", "1361232000"]]
    assert report.ratings_columns is None
    assert (report.n_users, report.n_items) == (2, 1)


def test_reviews_2023_jsonl_parent_asin_falls_back_to_asin(tmp_path: Path) -> None:
    lines = [json.dumps({"user_id": U3, "parent_asin": I2, "asin": "B0XXXXXXXX", "rating": 4.0,
                         "timestamp": 1588687728923, "text": "long text"}),
             json.dumps({"user_id": U1, "asin": I3, "rating": 3, "timestamp": 1600000000000})]
    src = write(tmp_path / "CDs_and_Vinyl.jsonl", lines)
    import_amazon(tmp_path, "r", reviews=src)
    _, rows = read_rows(tmp_path / "r.inter")
    assert rows == [[U3, I2, "4", "1588687728.923"], [U1, I3, "3", "1600000000"]]


def test_meta_2014_python_literals(tmp_path: Path) -> None:
    ratings = write(tmp_path / "r.csv", [f"{U1},{I1},5,1093996800", f"{U1},{I2},4,1093996801"])
    meta = write(tmp_path / "meta.json.gz", [
        str({"asin": I1, "title": "Rock &amp; <b>Roll</b>", "price": 12.99, "brand": "EMI",
             "categories": [["CDs & Vinyl", "Rock"], ["CDs & Vinyl", "Pop"]]}),
        str({"asin": I3, "title": "Not interacted", "categories": [["Jazz"]]}),
    ], gz=True)
    report = import_amazon(tmp_path, "m", ratings=ratings, meta=meta)
    header, rows = read_rows(tmp_path / "m.item")
    assert header == ITEM_HEADER
    assert rows == [[I1, "Rock & Roll", "CDs & Vinyl | Rock | Pop", "EMI", "", "12.99"]]
    assert report.files == [tmp_path / "m.inter", tmp_path / "m.item"]
    assert (report.n_items, report.n_items_with_meta, report.n_items_without_meta) == (2, 1, 1)


def test_meta_2018_json(tmp_path: Path) -> None:
    ratings = write(tmp_path / "r.csv", [f"{I1},{U1},5,1093996800"])
    meta = write(tmp_path / "meta_CDs.json", [
        json.dumps({"asin": I1, "title": "Blue\tTrain\nremastered", "category": ["CDs & Vinyl", "Jazz"],
                    "brand": "Blue Note", "price": "$12.99", "date": "Mar 3, 2005"}),
        json.dumps({"asin": I1, "title": "a repeated row is ignored"}),
    ])
    report = import_amazon(tmp_path, "m", ratings=ratings, meta=meta)
    _, rows = read_rows(tmp_path / "m.item")
    assert rows == [[I1, "Blue Train remastered", "CDs & Vinyl | Jazz", "Blue Note", "2005", "$12.99"]]
    assert report.n_items_with_meta == 1


def test_meta_2023_json(tmp_path: Path) -> None:
    ratings = write(tmp_path / "r.csv", ["user_id,parent_asin,rating,timestamp",
                                         f"{U3},{I2},4.0,1588687728923", f"{U3},{I3},4.0,1588687728923"])
    meta = write(tmp_path / "meta_CDs.jsonl", [
        json.dumps({"parent_asin": I2, "title": "Kind of Blue", "main_category": "Digital Music",
                    "categories": ["CDs & Vinyl", "Jazz"], "store": "Miles Davis", "price": 9.5,
                    "details": {"Date First Available": "August 17, 1959"}}),
        json.dumps({"parent_asin": I3, "title": "No price", "categories": [], "store": None,
                    "price": None}),
    ])
    import_amazon(tmp_path, "m", ratings=ratings, meta=meta)
    _, rows = read_rows(tmp_path / "m.item")
    assert rows == [[I2, "Kind of Blue", "Digital Music | CDs & Vinyl | Jazz", "Miles Davis", "1959", "9.5"],
                    [I3, "No price", "", "", "", ""]]


def test_duplicates_keep_the_latest_timestamp(tmp_path: Path) -> None:
    src = write(tmp_path / "r.csv", [f"{U1},{I1},2,200000000", f"{U1},{I1},5,100000000",
                                     f"{U2},{I1},1,100000000", f"{U2},{I1},4,300000000"])
    report = import_amazon(tmp_path, "d", ratings=src)
    _, rows = read_rows(tmp_path / "d.inter")
    assert rows == [[U1, I1, "2", "200000000"], [U2, I1, "4", "300000000"]]
    assert (report.n_duplicates, report.n_interactions) == (2, 2)


def good_rows(n: int) -> list[str]:
    return [f"A{k:013d},B0{k:08d},{k % 5 + 1},{1000000000 + k}" for k in range(n)]


def test_more_than_one_percent_bad_lines_raises_and_writes_nothing(tmp_path: Path) -> None:
    lines = good_rows(97)
    lines[4] = f"{U1},{I1},five,1000000000"
    lines.insert(10, "just,three,fields")
    lines.insert(20, f"{U1},{I1},4,never")
    src = write(tmp_path / "r.csv", lines)
    with pytest.raises(DataFormatError, match=r"line 5 \(non-numeric rating 'five'\)") as info:
        import_amazon(tmp_path / "out", "bad", ratings=src)
    assert str(src) in str(info.value) and "3 of 99 lines" in str(info.value)
    assert list((tmp_path / "out").glob("*")) == []


def test_up_to_one_percent_bad_lines_is_tolerated_and_counted(tmp_path: Path) -> None:
    lines = [json.dumps({"reviewerID": f"A{k:013d}", "asin": I1, "overall": 4, "unixReviewTime": 10**9})
             for k in range(150)]
    lines.insert(7, '{"reviewerID": "A1", "asin": truncated')
    src = write(tmp_path / "reviews.json", lines)
    report = import_amazon(tmp_path, "ok", reviews=src)
    assert (report.n_bad_lines, report.n_interactions) == (1, 150)
    _, rows = read_rows(tmp_path / "ok.inter")
    assert len(rows) == 150 and rows[7] == ["A0000000000007", I1, "4", "1000000000"]


def test_bad_metadata_removes_the_interactions_too(tmp_path: Path) -> None:
    ratings = write(tmp_path / "r.csv", [f"{U1},{I1},5,1093996800"])
    meta = write(tmp_path / "meta.json", [json.dumps({"asin": I1}), "not an object at all"])
    with pytest.raises(DataFormatError, match=r"meta\.json.*line 2"):
        import_amazon(tmp_path / "out", "m", ratings=ratings, meta=meta)
    assert list((tmp_path / "out").glob("*")) == []


def test_gzip_is_detected_by_magic_bytes_not_extension(tmp_path: Path) -> None:
    plain_named_gz = write(tmp_path / "plain.csv.gz", [f"{U1},{I1},5,1093996800"])
    gz_named_csv = write(tmp_path / "packed.csv", [f"{U2},{I2},3,1093996800"], gz=True)
    import_amazon(tmp_path, "a", ratings=plain_named_gz)
    import_amazon(tmp_path, "b", ratings=gz_named_csv)
    assert read_rows(tmp_path / "a.inter")[1] == [[U1, I1, "5", "1093996800"]]
    assert read_rows(tmp_path / "b.inter")[1] == [[U2, I2, "3", "1093996800"]]


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataFormatError, match="nope.csv"):
        import_amazon(tmp_path, "x", ratings=missing)
    ratings = write(tmp_path / "r.csv", [f"{U1},{I1},5,1093996800"])
    with pytest.raises(DataFormatError, match="meta_missing.json"):
        import_amazon(tmp_path, "x", ratings=ratings, meta=tmp_path / "meta_missing.json")


@pytest.mark.parametrize("kwargs", [{}, {"ratings": Path("r.csv"), "reviews": Path("r.json")},
                                    {"reviews": Path("r.json"), "ratings_columns": USER_FIRST},
                                    {"ratings": Path("r.csv"), "ratings_columns": ("user", "item")}])
def test_usage_errors(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(UsageError):
        import_amazon(tmp_path, "x", **kwargs)


def test_truncated_gzip_is_a_data_format_error(tmp_path: Path) -> None:
    packed = gzip.compress(("\n".join(good_rows(2000)) + "\n").encode())
    src = tmp_path / "r.csv.gz"
    src.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataFormatError, match=r"r\.csv\.gz: unreadable after line \d+"):
        import_amazon(tmp_path / "out", "t", ratings=src)
    assert list((tmp_path / "out").glob("*")) == []


def test_csv_header_without_a_rating_role_is_rejected(tmp_path: Path) -> None:
    src = write(tmp_path / "r.csv", ["user_id,parent_asin,ratings_count,timestamp", f"{U1},{I1},5,1"])
    with pytest.raises(DataFormatError, match="lacks one of"):
        import_amazon(tmp_path, "h", ratings=src)
