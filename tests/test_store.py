"""The DuckDB store: round trips, transactions, schema versions and locks, on real files."""

import subprocess
import sys
import time

import duckdb
import numpy as np
import pandas as pd
import pytest

from kt_cli.errors import StoreError
from kt_cli.store import SCHEMA_VERSION, KnowledgeSetRow, RunRow, Store, _now


def test_new_store_is_migrated_to_the_current_schema(store_path) -> None:
    with Store.open(store_path) as store:
        assert store.schema_version() == SCHEMA_VERSION
    with Store.open(store_path) as store:  # reopening does not migrate again
        assert store.schema_version() == SCHEMA_VERSION


def test_knowledge_vectors_round_trip_exactly(store_path) -> None:
    vectors = np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32)
    ids = [f"u{i:03d}" for i in range(50)]
    row = KnowledgeSetRow("d", "v", "user", 7, 50, "file", None, {"file": "x.npz"}, None, _now())
    with Store.open(store_path) as store:
        store.save_knowledge_set(row, ids, vectors)
    with Store.open(store_path) as store:
        got_ids, got = store.knowledge_vectors("d", "v")
        assert store.knowledge_set("d", "v").params == {"file": "x.npz"}
    assert got_ids == ids and np.array_equal(got, vectors)


def test_runs_epochs_and_evaluations_round_trip(store_path) -> None:
    run = RunRow("r", "d", "s1", "multvae", None, {"alpha": 0.5}, "h", 1, "running", _now(), None, {}, {}, None)
    per_user = pd.DataFrame({"user_id": ["1", "2"], "n_train": [3, 30], "metric": "ndcg", "k": 10,
                             "value": [0.5, 0.25]})
    aggregates = pd.DataFrame({"slice": ["all"], "metric": ["ndcg"], "k": [10], "value": [0.375], "n_users": [2]})
    with Store.open(store_path) as store:
        store.start_run(run)
        store.replace_epochs("r", [{"phase": "train", "epoch": 0, "model_loss": 1.5, "recon_loss": None,
                                    "valid_metric": 0.1, "aligned_rows": 0, "masked_rows": 0, "seconds": 0.2}])
        store.finish_run("r", "finished", {"best_valid": 0.1})
        store.save_evaluation("e1", "r", {"k": [10]}, per_user, aggregates, 0.5)
    with Store.open(store_path) as store:
        assert store.run("r").status == "finished" and store.run("r").summary == {"best_valid": 0.1}
        assert store.epochs("r")["model_loss"].tolist() == [1.5]
        assert store.evaluation_id("r", {"k": [10]}) == "e1"
        assert store.eval_users("e1")["value"].tolist() == [0.5, 0.25]
        store.delete_run("r")
        assert store.run("r") is None and store.evaluations("r") == []


def test_failed_transaction_leaves_nothing_behind(store_path) -> None:
    with Store.open(store_path) as store:
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.start_run(RunRow("r", "d", "s", "m", None, {}, "h", 1, "running", _now(), None, {}, {}, None))
                raise RuntimeError("boom")
        assert store.run("r") is None


def test_store_from_a_newer_kt_is_refused(store_path) -> None:
    with Store.open(store_path):
        pass
    con = duckdb.connect(str(store_path))
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreError, match="newer kt"):
        with Store.open(store_path):
            pass


def test_a_locked_store_names_the_holder(store_path) -> None:
    with Store.open(store_path):
        pass
    holder = subprocess.Popen([sys.executable, "-c",
                               f"import duckdb, time; c = duckdb.connect({str(store_path)!r}); "
                               "print('ready', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        started = time.monotonic()
        with pytest.raises(StoreError, match=f"locked by process {holder.pid}"):
            with Store.open(store_path, lock_timeout=0.5):
                pass
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()


def test_a_file_that_is_not_a_store_is_refused(tmp_path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("not a database")
    with pytest.raises(StoreError, match="not a usable kt store"):
        with Store.open(path):
            pass


def test_a_key_twice_in_one_import_is_stored_once_and_a_failed_insert_reports_its_own_error(store_path) -> None:
    """The shipped item file answers two items whose prompts render alike (a film listed twice) under one key."""
    row = {"key": "k1", "backend": "openai", "model": "m", "params": "{}", "prompt_hash": "p", "text": "first",
           "tokens_in": 1, "tokens_out": 1, "seconds": 0.0, "finish_reason": "stop",
           "created_at": pd.Timestamp("2026-01-01")}
    frame = pd.DataFrame([row, {**row, "text": "second", "created_at": pd.Timestamp("2026-01-02")},
                          {**row, "key": "k2"}])
    with Store.open(store_path) as store:
        assert store.import_responses(frame) == 2
        assert store.import_responses(frame) == 0
        assert store.latest_responses(["k1"])["text"].tolist() == ["first"]
        with pytest.raises(duckdb.Error) as caught:  # a real failure is reported as itself, not as "aborted"
            store.import_responses(frame.assign(key=["k3", "k4", "k5"], tokens_in="many"))
        assert "aborted" not in str(caught.value).lower()
        assert store.response_counts() == (2, 1)
