"""kt recommend: top-K unseen items of a trained ranking run, through faiss (models with item vectors) or the
model's own scores, with the user's history; and the errors a new user meets (unknown user, k 0, an unfinished
or CTR run, an empty users file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kt_cli.evaluation.evaluate import trained_session
from kt_cli.store import Store
from tests.test_cli_errors import assert_fails, kt, ok_json

FAST = ["--distill-epochs", "2", "--finetune-epochs", "0", "--threads", "1"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recommend") / "kt.duckdb"
    ok_json(kt("train", "--model", "bpr", *FAST, "--name", "bpr", "--store", path, "--json"))
    ok_json(kt("train", "--model", "neumf", "--distill-epochs", "1", "--finetune-epochs", "0", "--name", "neumf",
               "--store", path, "--json"))
    return path


def _seen(store: Path, user: str) -> set[str]:
    with Store.open(store) as db:
        inter = db.interactions("ml-100k")
    return set(inter.loc[inter["user_id"] == user, "item_id"])


@pytest.mark.parametrize("run", ["bpr", "neumf"])
def test_top_k_is_the_models_best_unseen_items(store: Path, run: str) -> None:
    answer = ok_json(kt("recommend", run, "--user", "196", "-k", "10", "--store", store, "--json"))
    assert answer["index"] == ("exact" if run == "bpr" else "scores")
    picks = answer["users"][0]["items"]
    seen = _seen(store, "196")
    assert [p["rank"] for p in picks] == list(range(1, 11))
    assert not {p["item_id"] for p in picks} & seen
    assert all(a["score"] >= b["score"] for a, b in zip(picks, picks[1:]))
    session = trained_session(store, run)  # the same ten, from the model's own scores of every item
    user = int(session.parts.internal_ids("user", ["196"])[0])
    with torch.no_grad():
        from kt_cli.evaluation.ranking import score_items
        from kt_cli.training.recbole_adapter import interaction
        scores = score_items(session.model, torch.tensor([user]), session.parts.num("item"), session.parts.user_field,
                             session.parts.item_field, interaction)[0].numpy()
    external = session.parts.external_ids("item")
    ranked = [str(external[i]) for i in np.argsort(-scores, kind="stable") if i > 0 and str(external[i]) not in seen]
    assert [p["item_id"] for p in picks] == ranked[:10]
    assert answer["users"][0]["history"][0]["part"] in ("train", "valid", "test")


def test_approximate_indexes_report_their_recall_and_batches_of_users_work(store: Path, tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("# every user\n" + "\n".join(str(u) for u in range(1, 944)) + "\n")
    for index in ("ivf", "hnsw"):
        answer = ok_json(kt("recommend", "bpr", "--users-file", users, "-k", "10", "--index", index,
                            "--history", "0", "--store", store, "--json"))
        assert len(answer["users"]) == 943 and answer["index"] == index
        assert 0.5 <= answer["recall_vs_exact"] <= 1.0
        assert all(len(u["items"]) == 10 and not u["history"] for u in answer["users"])


def test_recommend_errors(store: Path, tmp_path: Path) -> None:
    assert_fails(kt("recommend", "bpr", "--user", "99999", "--store", store), 2, "Unknown user '99999'", "943 users")
    assert_fails(kt("recommend", "bpr", "--user", "196", "-k", "0", "--store", store), 2, "-k must be at least 1")
    assert_fails(kt("recommend", "bpr", "--store", store), 2, "--user ID")
    assert_fails(kt("recommend", "nope", "--user", "1", "--store", store), 1, "no run named 'nope'", "bpr")
    assert_fails(kt("recommend", "bpr", "--user", "1", "--index", "lsh", "--store", store), 2, "exact, ivf, hnsw")
    empty = tmp_path / "none.txt"
    empty.write_text("\n# nobody\n")
    assert_fails(kt("recommend", "bpr", "--users-file", empty, "--store", store), 2, "holds no user id")
    with Store.open(store) as db:  # a run that has not finished training has no final weights
        db._con.execute("UPDATE runs SET status = 'interrupted' WHERE name = 'neumf'")
    assert_fails(kt("recommend", "neumf", "--user", "1", "--store", store), 2, "has not finished training")
