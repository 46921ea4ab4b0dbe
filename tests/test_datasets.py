"""Datasets: the built-in ml-100k, strict atomic-file reading, filters, and stored splits."""

from pathlib import Path

import pandas as pd
import pytest

from kt_cli.datasets.registry import Filters, ensure_dataset, register_dataset
from kt_cli.datasets.splits import SplitSpec, assign_parts, ensure_split, export_for_recbole, parse_split
from kt_cli.errors import DataFormatError, NotFoundError, UsageError
from kt_cli.store import Store

HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def _folder(tmp_path: Path, lines: list[str], name: str = "mini") -> Path:
    """A folder ``name`` holding the atomic file of dataset ``mini``."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "mini.inter").write_text(HEADER + "".join(line + "\n" for line in lines))
    return folder


def test_ml100k_is_built_in_and_imported_once(store_path) -> None:
    with Store.open(store_path) as store:
        row = ensure_dataset(store, "ml-100k")
        assert (row.n_users, row.n_items, row.n_interactions) == (943, 1682, 100_000)
        assert ensure_dataset(store, "ml-100k").created_at == row.created_at
        assert store.item_fields("ml-100k")["1"]["movie_title"] == "Toy Story"


def test_unknown_dataset_lists_the_valid_ones(store_path) -> None:
    with Store.open(store_path) as store, pytest.raises(NotFoundError, match="ml-100k") as error:
        ensure_dataset(store, "amazon-cds")
    assert "kt data register" in str(error.value)


def test_truncated_inter_file_names_the_line(store_path, tmp_path) -> None:
    folder = _folder(tmp_path, ["1\t10\t5\t100", "1\t11\t4\t101", "2\t1"])
    with Store.open(store_path) as store, pytest.raises(DataFormatError, match="line 4"):
        register_dataset(store, "mini", folder)


@pytest.mark.parametrize(("lines", "message"), [
    (["1\t10\tfive\t100"], "must be numeric"),
    (["1\t10\t5\t100\textra"], "malformed"),
])
def test_malformed_values_are_reported(store_path, tmp_path, lines, message) -> None:
    with Store.open(store_path) as store, pytest.raises(DataFormatError, match=message):
        register_dataset(store, "mini", _folder(tmp_path, lines))


def test_missing_columns_and_files_name_what_is_expected(store_path, tmp_path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "bad.inter").write_text("user_id:token\trating:float\n1\t5\n")
    with Store.open(store_path) as store:
        with pytest.raises(DataFormatError, match="item_id"):
            register_dataset(store, "bad", folder)
        with pytest.raises(DataFormatError, match="does not exist"):
            register_dataset(store, "x", tmp_path / "nowhere")


def test_filters_are_applied_iteratively_and_recorded(store_path, tmp_path) -> None:
    # user 3 has one interaction; removing it leaves item 12 with one user, which then goes too.
    lines = ["1\t10\t5\t1", "1\t11\t4\t1", "1\t12\t2\t1", "2\t10\t5\t1", "2\t11\t5\t1", "3\t12\t5\t1"]
    with Store.open(store_path) as store:
        row = register_dataset(store, "mini", _folder(tmp_path, lines), Filters(min_user_inter=2, min_item_inter=2))
        kept = store.interactions("mini")
    assert sorted(zip(kept.user_id, kept.item_id)) == [("1", "10"), ("1", "11"), ("2", "10"), ("2", "11")]
    assert row.filters["min_user_inter"] == 2
    assert Filters(min_rating=4).apply(pd.DataFrame({"user_id": ["1", "1"], "item_id": ["a", "b"],
                                                     "rating": [5.0, 3.0], "timestamp": [0.0, 0.0]})).item_id.tolist() == ["a"]


def test_reregistering_different_data_needs_replace(store_path, tmp_path) -> None:
    with Store.open(store_path) as store:
        register_dataset(store, "mini", _folder(tmp_path, ["1\t10\t5\t1", "2\t10\t5\t1"], "one"))
        same = register_dataset(store, "mini", tmp_path / "one")
        assert same.n_interactions == 2
        with pytest.raises(UsageError, match="--replace"):
            register_dataset(store, "mini", _folder(tmp_path, ["1\t10\t5\t1"], "two"))
        assert register_dataset(store, "mini", tmp_path / "two", replace=True).n_interactions == 1


def test_random_split_is_per_user_seeded_and_complete() -> None:
    frame = pd.DataFrame({"user_id": ["u"] * 10 + ["v"] * 3, "item_id": [str(i) for i in range(13)],
                          "timestamp": 0.0})
    parts = assign_parts(frame, SplitSpec((0.7, 0.1, 0.2), seed=1, order="random"))
    counts = parts.groupby(["user_id", "part"]).size().to_dict()
    assert counts == {("u", 0): 7, ("u", 1): 1, ("u", 2): 2, ("v", 0): 1, ("v", 1): 1, ("v", 2): 1}
    assert sorted(parts.item_id) == sorted(frame.item_id)
    assert parts.equals(assign_parts(frame, SplitSpec(seed=1, order="random")))
    assert not parts.equals(assign_parts(frame, SplitSpec(seed=2, order="random")))


def _timed() -> pd.DataFrame:
    """User u rated items 0..9 at times 9..0 (item 9 first), except items 4 and 5 at the same time."""
    times = [9, 8, 7, 6, 5, 5, 3, 2, 1, 0]
    return pd.DataFrame({"user_id": ["u"] * 10 + ["v"] * 4, "item_id": [str(i) for i in range(10)] + list("abcd"),
                         "timestamp": [float(t) for t in times] + [1.0, 2.0, 3.0, 4.0]})


def _parts_of(parts: pd.DataFrame, user: str) -> list[list[str]]:
    mine = parts[parts["user_id"] == user]
    return [sorted(mine.loc[mine["part"] == p, "item_id"]) for p in (0, 1, 2)]


def test_time_split_trains_on_the_past_and_breaks_ties_by_item_id() -> None:
    parts = assign_parts(_timed(), SplitSpec())  # the default: time order, 70/10/20
    # u's oldest 7 ratings are items 9..3; items 4 and 5 share a time and item id 4 sorts first
    assert _parts_of(parts, "u") == [["3", "4", "5", "6", "7", "8", "9"], ["2"], ["0", "1"]]
    assert _parts_of(parts, "v") == [["a", "b"], ["c"], ["d"]]
    assert SplitSpec().as_dict() == {"scheme": "ratio", "order": "time", "ratios": [0.7, 0.1, 0.2],
                                     "ties": "item_id ascending, compared as text"}
    # a tie at the boundary: 4 and 5 at time 5; with 50/10/40 the fifth-oldest row is the tie's first (item 4)
    half = assign_parts(_timed(), SplitSpec((0.5, 0.1, 0.4)))
    assert "4" in _parts_of(half, "u")[0] and "5" in _parts_of(half, "u")[1]
    assert SplitSpec(seed=1) == SplitSpec(seed=2)  # time order does not depend on the seed


def test_leave_one_out_and_global_splits() -> None:
    loo = assign_parts(_timed(), parse_split("loo"))
    assert _parts_of(loo, "u")[1:] == [["1"], ["0"]] and _parts_of(loo, "v")[1:] == [["c"], ["d"]]
    with pytest.raises(UsageError, match="leave-one-out"):
        parse_split("loo", "random")
    glob = assign_parts(_timed(), parse_split("0.5,0.25,0.25", "global"))
    stamps = _timed().merge(glob, on=["user_id", "item_id"])
    by_part = stamps.groupby("part")["timestamp"].agg(["min", "max"])
    assert by_part.loc[0, "max"] < by_part.loc[1, "min"] and by_part.loc[1, "max"] < by_part.loc[2, "min"]


def test_time_orders_need_timestamps() -> None:
    flat = _timed().assign(timestamp=0.0)
    for spec in (SplitSpec(), parse_split("loo"), parse_split("0.7,0.1,0.2", "global")):
        with pytest.raises(UsageError, match="no timestamps.*--split-order random"):
            assign_parts(flat, spec)
    assert len(assign_parts(flat, SplitSpec(order="random"))) == len(flat)


def test_split_is_stored_and_exported_for_recbole(store_path) -> None:
    with Store.open(store_path) as store:
        sid = ensure_split(store, "ml-100k", SplitSpec())
        assert ensure_split(store, "ml-100k", SplitSpec()) == sid
        # the random split kept the id it had before splits recorded their order
        assert ensure_split(store, "ml-100k", SplitSpec(order="random")) == "s0926bd60ba6"
        assert store.split_label(sid) == "time 0.7/0.1/0.2"
        root = export_for_recbole(store, sid)
        rows = store.split_rows(sid)
    sizes = [len((root / "kt" / f"kt.{p}.inter").read_text().splitlines()) - 1 for p in ("train", "valid", "test")]
    assert sizes == rows.groupby("part").size().tolist() and sum(sizes) == 100_000
    assert 0.69 < sizes[0] / 100_000 < 0.72


def test_bad_split_ratios_are_a_usage_error() -> None:
    with pytest.raises(UsageError, match="sum"):
        SplitSpec((0.5, 0.1, 0.1))
