"""Costs that grow with users x items: validation every N epochs, RecBole's dataset built once per split,
NeuMF-type scoring in bounded blocks of items and RecBole's history matrices filled without a Python loop; each
gives the numbers the plain path gives."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from kt_cli.evaluation import ranking
from kt_cli.evaluation.evaluate import trained_session
from kt_cli.store import Store
from kt_cli.training.config import TrainConfig
from kt_cli.training.recbole_adapter import history_matrix, interaction, recbole_history_matrix
from kt_cli.training.trainer import train


def test_eval_every_validates_every_nth_epoch_and_each_phase_end(store_path: Path) -> None:
    config = TrainConfig(model="multvae", distill_epochs=5, finetune_epochs=0, patience=10, eval_every=2)
    train(store_path, config, "every2")
    with Store.open(store_path) as store:
        valid = store.epochs("every2")["valid_metric"].tolist()
    assert [math.isnan(v) for v in valid] == [True, False, True, False, False]  # epochs 2, 4 and the last
    assert TrainConfig(model="multvae", eval_every=1).digest() == TrainConfig(model="multvae").digest()
    assert TrainConfig(model="multvae", eval_every=2).digest() != TrainConfig(model="multvae").digest()


def test_the_dataset_is_built_once_per_split_and_read_back_gives_the_same_run(store_path: Path) -> None:
    config = TrainConfig(model="multvae", distill_epochs=2, finetune_epochs=0)
    first = train(store_path, config, "built").summary
    caches = list(store_path.parent.glob("kt.artifacts/splits/*/kt/recbole-Dataset-*.pth"))
    assert len(caches) == 1
    stamp = caches[0].stat().st_mtime_ns
    again = train(store_path, config, "read-back").summary
    assert caches[0].stat().st_mtime_ns == stamp  # read, not rebuilt
    assert again["best_valid"] == first["best_valid"] and again["phases"] == first["phases"]
    train(store_path, TrainConfig(model="bpr", distill_epochs=1, finetune_epochs=0, seed=3), "bpr")  # another
    assert len(list(store_path.parent.glob("kt.artifacts/splits/*/kt/recbole-Dataset-*.pth"))) == 1  # model, seed


def test_scoring_without_full_sort_predict_in_blocks_equals_one_block(store_path: Path, monkeypatch) -> None:
    train(store_path, TrainConfig(model="neumf", distill_epochs=1, finetune_epochs=0), "neumf")
    session = trained_session(store_path, "neumf")
    parts = session.parts
    users = torch.arange(1, 40)

    def scores() -> torch.Tensor:
        with torch.no_grad():
            return ranking.score_items(session.model.eval(), users, parts.num("item"), parts.user_field,
                                       parts.item_field, interaction)

    whole = scores()  # 39 users x 1,683 items < MAX_PAIRS: one call
    monkeypatch.setattr(ranking, "MAX_PAIRS", 1000)  # 25 items a call: 68 blocks, the last one short
    blocked = scores()
    torch.testing.assert_close(blocked, whole, rtol=1e-5, atol=1e-6)  # matmuls of another shape round differently
    assert torch.equal(blocked.topk(10).indices, whole.topk(10).indices)


def test_history_matrices_equal_recboles_from_the_same_random_state(store_path: Path) -> None:
    train(store_path, TrainConfig(model="multvae", distill_epochs=1, finetune_epochs=0), "history")
    dataset = trained_session(store_path, "history").parts.train_data.dataset
    for row, value_field, cap in (("user", None, None), ("item", None, None), ("user", "item_id", 20)):
        state = torch.get_rng_state()
        ours = history_matrix(dataset, row, value_field, cap)
        after = torch.get_rng_state()
        torch.set_rng_state(state)
        theirs = recbole_history_matrix(dataset, row, value_field, cap)
        assert torch.equal(torch.get_rng_state(), after)  # the same draw: later batches and negatives unchanged
        for mine, recbole in zip(ours, theirs):
            assert mine.dtype == recbole.dtype and torch.equal(mine, recbole)
    assert int(ours[2].max()) == 20 and ours[0].shape[1] == 20  # the cap keeps each row's first 20
