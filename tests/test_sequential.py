"""The sequential task: next-item samples exported without leaks, SASRec and GRU4Rec trained by kt's loop, and
kt's metrics equal to RecBole's own evaluator on the same weights and leave-one-out samples."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
import pytest

from kt_cli.evaluation.evaluate import trained_session
from kt_cli.store import Store
from tests.test_cli_errors import assert_fails, kt, ok_json

SMALL = ["--set", "MAX_ITEM_LIST_LENGTH=10", "--set", "hidden_size=32", "--set", "inner_size=64",
         "--set", "n_layers=1", "--distill-epochs", "2", "--finetune-epochs", "0"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sequential") / "kt.duckdb"
    ok_json(kt("train", "--model", "sasrec", "--split", "loo", *SMALL, "--name", "sas", "--store", path, "--json"))
    ok_json(kt("eval", "sas", "--k", "10,20", "--store", path, "--json"))
    return path


def _samples(store: Path, part: str) -> pd.DataFrame:
    files = list((store.parent / "kt.artifacts" / "splits").glob(f"*/sequences-10/kt/kt.{part}.inter"))
    assert len(files) == 1
    frame = pd.read_csv(files[0], sep="\t", dtype=str)
    frame.columns = ["user_id", "history", "item_id"]
    return frame


def test_samples_hold_only_earlier_items_of_earlier_parts(store: Path) -> None:
    with Store.open(store) as db:
        rows = db.split_sequences(db.run("sas").split_id)
    train, valid, test = (_samples(store, p) for p in ("train", "valid", "test"))
    assert (len(valid), len(test)) == (943, 943)
    assert len(train) == int((rows["part"] == 0).sum()) - 943  # every training item but each user's first
    order = {user: list(frame["item_id"]) for user, frame in rows.groupby("user_id", sort=False)}
    parts = {user: list(frame["part"]) for user, frame in rows.groupby("user_id", sort=False)}
    for frame, part in ((valid, 1), (test, 2)):
        for sample in frame.head(50).itertuples():
            sequence = order[sample.user_id]
            at = sequence.index(sample.item_id)
            earlier = [i for i, p in zip(sequence[:at], parts[sample.user_id][:at]) if p <= part]
            assert sample.history.split() == earlier[-10:]
    user = train["user_id"].iloc[0]
    mine = train[train["user_id"] == user]
    assert all(set(h.split()) <= set(order[user][:order[user].index(t)]) for h, t in zip(mine["history"], mine["item_id"]))
    assert all(valid_item not in h.split() for h, valid_item in zip(train["history"], valid.set_index("user_id").loc[
        train["user_id"], "item_id"]))


def test_metrics_equal_recboles_own_evaluator(store: Path) -> None:
    from recbole.utils import get_trainer

    from kt_cli.training.recbole_adapter import recbole_isolation

    with Store.open(store) as db:
        eval_id = db.evaluations("sas")[0][0]
        stored = db.eval_metrics(eval_id).set_index(["slice", "metric", "k"])["value"]
    session = trained_session(store, "sas")
    config = session.parts.config
    config["metrics"], config["topk"], config["metric_decimal_place"] = ["NDCG", "Hit", "MRR"], [10, 20], 12
    with recbole_isolation():
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, session.model)
        theirs = trainer.evaluate(session.parts.eval_data[1], load_best_model=False, show_progress=False)
    for metric in ("ndcg", "hit", "mrr"):
        for k in (10, 20):
            assert theirs[f"{metric}@{k}"] == pytest.approx(stored[("all", metric, k)], abs=1e-9)
    assert stored[("all", "hit", 10)] == stored[("all", "recall", 10)]  # one target per sample
    assert stored[("all", "hit", 10)] > 0.02  # above chance (10 of 1,682 items: 0.006)


def test_gru4rec_trains_and_compares_with_sasrec(store: Path) -> None:
    ok_json(kt("train", "--model", "gru4rec", "--split", "loo", "--set", "MAX_ITEM_LIST_LENGTH=10", "--distill-epochs",
               "1", "--finetune-epochs", "0", "--name", "gru", "--store", store, "--json"))
    ok_json(kt("eval", "gru", "--k", "10,20", "--store", store, "--json"))
    table = ok_json(kt("compare", "sas", "gru", "--k", "10,20", "--store", store, "--json"))
    assert table["task"] == "sequential" and table["n_users"] == 943


def test_sequential_errors_name_what_to_do(store: Path) -> None:
    assert_fails(kt("train", "--model", "sasrec", "--split-order", "random", *SMALL, "--name", "never", "--store",
                    store), 2, "time-ordered split", "--split loo")
    assert_fails(kt("eval", "sas", "--mode", "uni100", "--store", store), 2, "sequential run", "Drop --mode")
    assert_fails(kt("train", "--model", "sasrec", "--method", "kar", "--user-knowledge", "x", "--name", "never",
                    "--store", store), 2, "ctr")
    with Store.open(store) as db:
        assert db.run("never") is None


def test_llmkt_reconstructs_users_at_sasrecs_sequence_output(store: Path, tmp_path: Path) -> None:
    from kt_cli.training.config import TrainConfig
    from kt_cli.training.session import Session, read_inputs
    from tests.test_cli_errors import random_vectors, write_vectors

    users = [str(u) for u in range(1, 944)]
    ok_json(kt("embed", "--from-file", write_vectors(tmp_path / "u.npz", users, random_vectors(943, 32)), "--name", "u32",
               "--store", store, "--json"))
    run = ok_json(kt("train", "--model", "sasrec", "--split", "loo", *SMALL, "--knowledge", "u32", "--name", "sas-kt",
                     "--store", store, "--json"))
    assert run["layer"] == "trm_encoder:output" and run["phases"][0]["phase"] == "distill"
    with Store.open(store) as db:
        epochs = db.epochs("sas-kt")
        config = TrainConfig.from_dict(db.run("sas-kt").config)
        inputs = read_inputs(db, config)
    assert epochs["recon_loss"].notna().all() and (epochs["masked_rows"] == 0).all()
    session = Session(config, inputs, tmp_path / "run")
    session.attach_knowledge()
    batch = next(iter(session.parts.train_data))
    model = session.model
    model.eval()  # no dropout: the hooked rows must be exactly SASRec's sequence output
    with torch.no_grad():
        _, hidden, ids = session.method.hooked_rows(batch)
        session.method.capture.remove()
        expected = model.forward(batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN])
    assert hidden.shape == expected.shape == (len(batch), 32)
    assert torch.allclose(hidden, expected) and torch.equal(ids, batch["user_id"])


def test_loading_recboles_sequential_models_leaves_anomaly_detection_off(store: Path) -> None:
    trained_session(store, "sas")  # imports recbole.model.sequential_recommender, whose sine.py switches it on
    assert not torch.is_anomaly_enabled()
