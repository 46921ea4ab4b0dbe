"""kt eval and compare on real trained runs: stored per-user values, slices, paired tests."""

import numpy as np
import pytest
from scipy.stats import ttest_rel

from kt_cli.evaluation.compare import compare_runs, paired_test
from kt_cli.evaluation.evaluate import evaluate_run
from kt_cli.evaluation.settings import EvalSettings
from kt_cli.store import Store
from kt_cli.training.config import TrainConfig
from kt_cli.training.trainer import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "kt.duckdb"
    for name, seed in (("a", 1), ("b", 2)):
        train(path, TrainConfig(model="multvae", distill_epochs=3, finetune_epochs=2, seed=seed), name)
    return path


def test_per_user_values_are_stored_and_aggregate_to_the_means(trained) -> None:
    result = evaluate_run(trained, "a")
    with Store.open(trained) as store:
        users = store.eval_users(result.eval_id)
    assert set(users["slice"]) >= {"all", "warm"}  # item slices are stored beside all held-out items
    users = users[users["slice"] == "all"]
    assert len(users) == 943 * 5 * 3
    ndcg = users[(users.metric == "ndcg") & (users.k == 10)]
    table = result.metrics.set_index(["slice", "metric", "k"])
    assert table.loc[("all", "ndcg", 10), "value"] == pytest.approx(ndcg.value.mean())
    sparse = ndcg[ndcg.n_train < 20]
    assert table.loc[("n_train<20", "ndcg", 10), "n_users"] == len(sparse) > 0
    assert table.loc[("n_train<20", "ndcg", 10), "value"] == pytest.approx(sparse.value.mean())
    assert 0 < ndcg.value.mean() < 1


def test_evaluation_is_cached_and_deterministic(trained) -> None:
    first = evaluate_run(trained, "a")
    again = evaluate_run(trained, "a")
    forced = evaluate_run(trained, "a", force=True)
    assert again.cached and not forced.cached
    assert np.allclose(first.metrics.value, forced.metrics.value)


def test_sampled_ranking_is_never_harder_than_full_ranking(trained) -> None:
    full = evaluate_run(trained, "a").metrics.set_index(["slice", "metric", "k"])
    sampled = evaluate_run(trained, "a", EvalSettings(mode="uni100")).metrics.set_index(["slice", "metric", "k"])
    assert sampled.loc[("all", "recall", 10), "value"] >= full.loc[("all", "recall", 10), "value"]


def test_compare_uses_a_paired_test_over_the_same_users(trained) -> None:
    evaluate_run(trained, "a")
    evaluate_run(trained, "b")
    with Store.open(trained) as store:
        result = compare_runs(store, ["a", "b"], correct="none")  # raw p; adjustments: test_runs_cli.py
        a = store.eval_users(store.evaluation_id("a", EvalSettings().to_dict())).query("slice == 'all'")
        b = store.eval_users(store.evaluation_id("b", EvalSettings().to_dict())).query("slice == 'all'")
        itself = compare_runs(store, ["a", "a"])
        sparse = compare_runs(store, ["a", "b"], max_train=20)
    pick = lambda f: f[(f.metric == "ndcg") & (f.k == 10)].set_index("user_id").value.sort_index()
    base, other = pick(a), pick(b)
    cell = result.rows["ndcg@10"][1]
    assert cell.p_value == pytest.approx(ttest_rel(other, base).pvalue)
    assert cell.delta_pct == pytest.approx((other.mean() - base.mean()) / base.mean() * 100)
    assert itself.rows["ndcg@10"][1].p_value == 1.0 and itself.rows["ndcg@10"][1].delta_pct == 0
    assert sparse.n_users < result.n_users == 943


def test_bootstrap_interval_brackets_the_mean_difference() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(500)
    shifted = base + 0.05 + rng.normal(0, 0.01, 500)
    p, (low, high) = paired_test(base, shifted, "bootstrap")
    assert p < 0.001 and low < 0.05 < high
    p_same, _ = paired_test(base, base + rng.normal(0, 0.01, 500), "bootstrap")
    assert p_same > 0.01
