"""LEARN's twin towers (kt's own model, trained by the learn method): causal and padding masks, the dense chunks
cover every target once, training on real MiniLM item-text embeddings ranks cold items far above an ID model,
the stored run scores as it validated, retrieval through its towers, and the errors of a wrong combination."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kt_cli.evaluation.evaluate import trained_session
from kt_cli.store import Store
from tests.test_cli_errors import assert_fails, kt, ok_json

SPLIT = ["--split", "cold-items"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("learn") / "kt.duckdb"
    ok_json(kt("embed", "--dataset", "ml-100k", "--entity", "item", "--name", "items-text", "--store", path, "--json"))
    ok_json(kt("train", "--model", "learn", "--item-knowledge", "items-text", *SPLIT, "--distill-epochs", "4",
               "--finetune-epochs", "1", "--name", "learn", "--store", path, "--json"))
    ok_json(kt("train", "--model", "bpr", *SPLIT, "--distill-epochs", "4", "--finetune-epochs", "0", "--name", "bpr",
               "--store", path, "--json"))
    return path


@pytest.fixture(scope="module")
def session(store: Path):
    return trained_session(store, "learn")


def test_every_training_target_is_in_exactly_one_chunk(store: Path, session) -> None:
    model = session.model
    with Store.open(store) as db:
        histories = db.split_sequences(db.run("learn").split_id, max_part=0)
    seen = []
    for batch in model.batches():
        users, ends = batch["user_id"], batch["chunk_end"]
        inputs, padding = model._window(users, ends - 1)
        targets, _ = model._window(users, ends)
        for row in range(len(users)):  # each input is the item right before its target, in the user's time order
            sequence = model.sequence[model.offsets[users[row]]:model.offsets[users[row] + 1]].tolist()
            pairs = [(a, b) for a, b, pad in zip(inputs[row].tolist(), targets[row].tolist(), padding[row].tolist())
                     if not pad]
            assert all(sequence.index(b) == sequence.index(a) + 1 for a, b in pairs)
            seen += [(int(users[row]), b) for _, b in pairs]
    per_user = histories.groupby("user_id").size()
    assert len(seen) == len(set(seen)) == int((per_user - 1).sum())  # all but each user's first item, once


def test_a_position_sees_only_itself_and_earlier_items(session) -> None:
    model = session.model
    model.eval()
    items = torch.randint(1, model.n_items, (1, model.max_history))
    padding = torch.zeros_like(items, dtype=torch.bool)
    padding[0, :10] = True
    with torch.no_grad():
        base = model._encode(items, padding)
        later = items.clone()
        later[0, 30:] = torch.randint(1, model.n_items, (model.max_history - 30,))
        padded = items.clone()
        padded[0, :10] = torch.randint(1, model.n_items, (10,))  # what sits under padding never matters
        assert torch.allclose(model._encode(later, padding)[0, 10:30], base[0, 10:30], atol=1e-6)
        assert not torch.allclose(model._encode(later, padding)[0, 30:], base[0, 30:], atol=1e-4)
        assert torch.allclose(model._encode(padded, padding)[0, 10:], base[0, 10:], atol=1e-6)
        assert torch.isfinite(base).all()


def _full_loss(model, batch, items: torch.Tensor | None) -> float:
    """The fine-tune loss of ``batch``, the content of ``items`` replaced by random vectors (None: as trained)."""
    saved = model.content.clone()
    if items is not None:
        model.content[items] = torch.nn.functional.normalize(torch.randn(len(items), saved.shape[1]), dim=-1)
    model.train(False)  # no dropout; also drops the item cache
    model.loss_mode = "full"
    with torch.no_grad():
        value = float(model.calculate_loss(batch))
    model.content.copy_(saved)
    model.loss_mode = "contrastive"
    return value


def test_the_fine_tune_softmax_leaves_out_items_no_one_trained_on(store: Path, session) -> None:
    """A new item is not in the catalogue while the model trains: the full softmax must not learn it away as an
    ever-losing negative. The loss must not change when a cold item's content does, and must when a warm one's
    does; with softmax_items=all (the ID models' view) a cold item's content counts."""
    model = session.model
    cold = torch.nonzero(model.untrained).flatten()
    cold, warm = cold[cold > 0], torch.nonzero(~model.untrained).flatten()
    assert len(cold) > 100 and len(warm) > 1000  # ~20% of ml-100k's 1,682 items are cold
    batch = next(model.batches())
    base = _full_loss(model, batch, None)
    assert _full_loss(model, batch, cold) == pytest.approx(base, abs=1e-6)
    assert abs(_full_loss(model, batch, warm[-200:]) - base) > 1e-3

    other = trained_session(store, "learn").model  # a copy of its own: the module's session stays as trained
    other.softmax_items = "all"
    users = np.repeat(np.arange(other.n_users), np.diff(other.offsets.cpu().numpy()))
    other.set_content(other.content.clone(), other.present, users, other.sequence.cpu().numpy())
    assert torch.nonzero(other.untrained).flatten().tolist() == [0]  # padding alone
    base = _full_loss(other, batch, None)
    assert abs(_full_loss(other, batch, cold) - base) > 1e-3


def test_cold_items_are_ranked_far_above_an_id_model(store: Path) -> None:
    ok_json(kt("eval", "learn", "bpr", "--k", "10,50", "--store", store, "--json"))
    table = ok_json(kt("compare", "learn", "bpr", "--k", "10,50", "--slice", "cold", "--store", store, "--json"))
    learn, bpr = (cell["value"] for cell in table["rows"]["recall@50"])
    # 50 of ~1,680 items: an ID model ranks cold items no better than chance (recall@50 near 50 / 1,680 = 0.03)
    assert bpr < 0.06 and learn > 3 * bpr and learn > 0.08, (learn, bpr)


def test_the_stored_run_scores_as_it_validated(store: Path, session) -> None:
    with Store.open(store) as db:
        summary = db.run("learn").summary
    truth = session.truth(1)
    again = float(session.evaluate(truth, [10])[("ndcg", 10)].mean())
    assert again == pytest.approx(summary["best_valid"], abs=1e-6)
    assert summary["method"] == "learn" and summary["coverage"]["items_without_vector"] == 0
    assert summary["phases"][0]["phase"] == "align"


def test_recommend_searches_the_towers(store: Path, session) -> None:
    answer = ok_json(kt("recommend", "learn", "--user", "196", "-k", "10", "--store", store, "--json"))
    assert answer["index"] == "exact"
    users, items = session.model.towers()
    user = int(session.parts.internal_ids("user", ["196"])[0])
    with torch.no_grad():
        scores = (users[user] @ items.T).numpy()
        direct = session.model.full_sort_predict({"user_id": torch.tensor([user])})[0].numpy()
    np.testing.assert_allclose(scores, direct, rtol=1e-5, atol=1e-5)
    picks = answer["users"][0]["items"]
    external = session.parts.external_ids("item")
    assert pytest.approx([p["score"] for p in picks], rel=1e-5) == sorted(
        (float(scores[i]) for i, e in enumerate(external) if i and e in {p["item_id"] for p in picks}), reverse=True)


@pytest.mark.parametrize(("args", "phrases"), [
    (["--model", "learn"], ["needs --item-knowledge"]),
    (["--model", "learn", "--item-knowledge", "items-text", "--method", "llmkt"], ["trained by method 'learn' only"]),
    (["--model", "bpr", "--method", "learn", "--item-knowledge", "items-text"], ["--model learn"]),
    (["--model", "learn", "--item-knowledge", "items-text", "--set", "item_tower=deep"], ["item_tower", "shared, mlp"]),
    (["--model", "learn", "--item-knowledge", "items-text", "--set", "max_history=0"], ["max_history", "positive"]),
])
def test_wrong_combinations_are_refused_before_training(store: Path, args: list[str], phrases: list[str]) -> None:
    assert_fails(kt("train", *args, "--name", "never", "--store", store), 2, *phrases)
    with Store.open(store) as db:
        assert db.run("never") is None
