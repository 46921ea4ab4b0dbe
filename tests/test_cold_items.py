"""The cold-items split and the item slices of a ranking evaluation (cold, warm, long tail), with one user's
cold-slice NDCG recomputed by hand from the model's scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kt_cli.datasets.splits import ensure_split, parse_split
from kt_cli.evaluation.evaluate import trained_session
from kt_cli.evaluation.ranking import score_items
from kt_cli.store import Store
from kt_cli.training.recbole_adapter import interaction
from tests.test_cli_errors import assert_fails, kt, ok_json


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cold") / "kt.duckdb"
    for name in ("cold-a", "cold-b"):
        ok_json(kt("train", "--model", "bpr", "--split", "cold-items", "--distill-epochs", "2", "--finetune-epochs",
                   "0", "--seed", "1" if name == "cold-a" else "2", "--name", name, "--store", path, "--json"))
    ok_json(kt("eval", "cold-a", "cold-b", "--k", "10", "--store", path, "--json"))
    return path


def test_cold_items_never_appear_in_training(store: Path) -> None:
    with Store.open(store) as db:
        run = db.run("cold-a")
        rows = db.split_rows(run.split_id)
        label = db.split_label(run.split_id)
        again = ensure_split(db, "ml-100k", parse_split("cold-items:0.2", "time", 42))
        other = ensure_split(db, "ml-100k", parse_split("cold-items", "time", 7))
        other_rows = db.split_rows(other)
    assert label == "cold-items 0.2 seed 42, warm time 0.7/0.1/0.2" and again == run.split_id
    train_items = set(rows.loc[rows["part"] == 0, "item_id"])
    cold = set(rows["item_id"]) - train_items
    assert 0.2 * 1682 <= len(cold) < 0.3 * 1682  # the drawn 20%, plus warm items whose ratings all fell later
    held = rows[rows["item_id"].isin(cold)]
    assert set(held["part"]) == {1, 2} and 0.25 < (held["part"] == 1).mean() < 0.42  # 1 : 2, drawn
    other_cold = set(other_rows["item_id"]) - set(other_rows.loc[other_rows["part"] == 0, "item_id"])
    assert other_cold != cold  # another split seed draws other items


def test_item_slices_and_one_users_cold_ndcg_by_hand(store: Path) -> None:
    with Store.open(store) as db:
        eval_id = db.evaluations("cold-a")[0][0]
        metrics = db.eval_metrics(eval_id)
        users = db.eval_users(eval_id)
        rows = db.split_rows(db.run("cold-a").split_id)
    assert {"all", "cold", "warm", "tail<5"} <= set(metrics["slice"])
    cold_users = users[(users["slice"] == "cold") & (users["metric"] == "ndcg") & (users["k"] == 10)]
    assert 0 < len(cold_users) < users.loc[users["slice"] == "all", "user_id"].nunique()
    user = cold_users.sort_values("user_id").iloc[0]
    train_items = set(rows.loc[rows["part"] == 0, "item_id"])
    mine = rows[rows["user_id"] == user["user_id"]]
    targets = set(mine.loc[(mine["part"] == 2) & ~mine["item_id"].isin(train_items), "item_id"])
    hidden = set(mine.loc[mine["part"] < 2, "item_id"]) | (set(mine.loc[mine["part"] == 2, "item_id"]) - targets)
    session = trained_session(store, "cold-a")
    internal = int(session.parts.internal_ids("user", [user["user_id"]])[0])
    with torch.no_grad():
        scores = score_items(session.model, torch.tensor([internal]), session.parts.num("item"),
                             session.parts.user_field, session.parts.item_field, interaction)[0].numpy()
    external = session.parts.external_ids("item")
    ranked = [str(external[i]) for i in np.argsort(-scores, kind="stable") if i > 0 and str(external[i]) not in hidden]
    gains = sum(1 / np.log2(rank + 2) for rank, item in enumerate(ranked[:10]) if item in targets)
    ideal = sum(1 / np.log2(rank + 2) for rank in range(min(len(targets), 10)))
    assert user["value"] == pytest.approx(gains / ideal, abs=1e-9)


def test_compare_by_item_slice(store: Path) -> None:
    cold = ok_json(kt("compare", "cold-a", "cold-b", "--k", "10", "--slice", "cold", "--store", store, "--json"))
    everyone = ok_json(kt("compare", "cold-a", "cold-b", "--k", "10", "--store", store, "--json"))
    assert cold["slice"] == "cold" and cold["n_users"] < everyone["n_users"]
    assert_fails(kt("compare", "cold-a", "cold-b", "--k", "10", "--slice", "frozen", "--store", store), 2,
                 "cold, warm, tail<5")
    assert_fails(kt("train", "--model", "bpr", "--split", "cold-items:1.5", "--store", store), 2,
                 "between 0 and 1")
