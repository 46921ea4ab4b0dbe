"""Ranking metrics against values computed by hand, for full-sort and predict-only models."""

import math

import numpy as np
import pytest
import torch

from kt_cli.evaluation.ranking import Truth, _sample_negatives, build_truth, evaluate_users

# 6 items (0 is RecBole's padding). User 1 saw item 1 in training; held out: items 2 and 4.
SCORES = torch.tensor([[0.0, 9.0, 5.0, 8.0, 1.0, 3.0]])  # ranking after masking item 1: 3, 2, 5, 4


class FullSort(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def full_sort_predict(self, interaction):
        return SCORES[interaction["user_id"] - 1]


class PredictOnly(FullSort):
    def full_sort_predict(self, interaction):
        raise NotImplementedError

    def predict(self, interaction):
        return SCORES[interaction["user_id"] - 1, interaction["item_id"]]


TRUTH = Truth(np.array([1]), [np.array([2, 4])], [np.array([1])], [np.array([1, 2, 4])])


@pytest.mark.parametrize("model", [FullSort(), PredictOnly()])
def test_metrics_match_hand_computation(model) -> None:
    values = evaluate_users(model, TRUTH, n_items=6, uid="user_id", iid="item_id",
                            make_interaction=lambda d: d, ks=[1, 2, 4])
    # top-4 after masking: 3 (miss), 2 (hit at rank 2), 5 (miss), 4 (hit at rank 4)
    assert values[("hit", 1)][0] == 0 and values[("hit", 2)][0] == 1
    assert values[("recall", 2)][0] == 0.5 and values[("recall", 4)][0] == 1.0
    assert values[("precision", 4)][0] == 0.5
    assert values[("mrr", 4)][0] == 0.5 and values[("mrr", 1)][0] == 0
    idcg = 1 + 1 / math.log2(3)
    assert values[("ndcg", 2)][0] == pytest.approx((1 / math.log2(3)) / idcg)
    assert values[("ndcg", 4)][0] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / idcg)


def test_sampled_mode_ranks_among_sampled_negatives_only() -> None:
    # Only items 3 and 5 are unused: whatever is drawn, the held-out items 2 and 4 rank among them.
    values = evaluate_users(FullSort(), TRUTH, n_items=6, uid="user_id", iid="item_id",
                            make_interaction=lambda d: d, ks=[4], mode="uni1")
    assert values[("recall", 4)][0] == 1.0 and values[("mrr", 4)][0] in (0.5, 1.0)


def test_sampled_negatives_follow_recboles_definition() -> None:
    """uni1 for a user with 2 held-out items and 3 drawable items: 2 draws with replacement, redrawn
    when used, duplicates once. Expected distinct candidates 3 * (1 - (2/3)**2) = 5/3, not 2."""
    users = 20_000
    truth = Truth(np.arange(users), [np.array([2, 4])] * users, [np.array([1])] * users,
                  [np.array([1, 2, 4])] * users)
    mask = _sample_negatives(truth, 0, users, 1, "uni", 7, None, np.random.default_rng(0)).numpy()
    assert not mask[:, [0, 1, 2, 4]].any()  # padding and used items are never drawn
    distinct = mask.sum(1)
    assert set(distinct.tolist()) == {1, 2} and distinct.mean() == pytest.approx(5 / 3, abs=0.02)
    # pop: weights are interaction counts; an item nobody interacted with is never drawn
    popularity = np.array([0, 5, 5, 9, 5, 1, 0])
    pop = _sample_negatives(truth, 0, users, 1, "pop", 7, popularity, np.random.default_rng(0)).numpy()
    assert not pop[:, 6].any() and pop[:, 3].mean() == pytest.approx(1 - (1 / 10) ** 2, abs=0.01)


def test_build_truth_hides_earlier_parts() -> None:
    users = np.array([1, 1, 1, 2, 2])
    items = np.array([3, 4, 5, 3, 6])
    parts = np.array([0, 1, 2, 0, 0])
    valid = build_truth(users, items, parts, 1)
    test = build_truth(users, items, parts, 2)
    assert valid.users.tolist() == [1] and valid.positives[0].tolist() == [4] and valid.exclude[0].tolist() == [3]
    assert test.positives[0].tolist() == [5] and sorted(test.exclude[0].tolist()) == [3, 4]
    # RecBole's phases: validation negatives may be test items; test negatives exclude every part
    assert sorted(valid.used[0].tolist()) == [3, 4] and sorted(test.used[0].tolist()) == [3, 4, 5]
