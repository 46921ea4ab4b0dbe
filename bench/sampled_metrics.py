"""kt's sampled metrics (uni100, pop100) against RecBole's own evaluator, on the same weights and split.

One BPR run is trained by kt on ml-100k (default split). Its weights are then scored twice per sampling
seed: by ``kt eval --mode uniN/popN`` (kt_cli.evaluation.ranking) and by RecBole 1.2.1's own
``Trainer.evaluate`` over its ``NegSampleEvalDataLoader`` built on the very files kt exported for the
run. The two samplers draw different random numbers, so that check is statistical: over 5 seeds each, the
difference of the means must lie within sampling noise (Welch's t-test; the table gives mean and std).
Exact checks separate the sampler from the metric code: kt's metric code scoring RecBole's own
candidates of one pass must give RecBole's numbers; over 20 passes of each sampler, no sampler may draw an
item the other forbids for that user, and the mean number of distinct negatives per user and the
per-item draw counts must agree (chi-square test). Full ranking is shown too (it must be identical). Writes docs/sampled_metrics.md.

Usage: python bench/sampled_metrics.py [--seeds 5] [--epochs 30]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kt_cli.evaluation import ranking  # noqa: E402
from kt_cli.evaluation.evaluate import evaluate_run  # noqa: E402
from kt_cli.evaluation.settings import EvalSettings  # noqa: E402
from kt_cli.store import Store  # noqa: E402
from kt_cli.training import recbole_adapter  # noqa: E402
from kt_cli.training.config import TrainConfig  # noqa: E402
from kt_cli.training.session import Session, read_inputs  # noqa: E402
from kt_cli.training.trainer import train  # noqa: E402

import torch  # noqa: E402  (after kt_cli: its compat shims must load before RecBole)
from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.evaluator import Collector, Evaluator  # noqa: E402
from recbole.trainer import Trainer  # noqa: E402
from recbole.utils import get_model, init_seed  # noqa: E402

METRICS = ("ndcg@10", "hit@10", "recall@10", "mrr@10")


def _recbole_test_data(store_path: Path, config: TrainConfig, run: str, mode: str, seed: int):
    """RecBole's config and test dataloader (its sampler) on the files kt exported, and the run's folder."""
    with Store.open(store_path) as store:
        inputs = read_inputs(store, config, with_knowledge=False)
        folder = store.run_folder(run)
    settings = recbole_adapter.recbole_config_dict(inputs.data_path, folder, seed=seed, device="cpu",
                                                   overrides={})
    settings.update({"eval_args": {"group_by": "user", "order": "RO", "mode": mode},
                     "metrics": ["NDCG", "Hit", "Recall", "MRR"], "topk": [10], "eval_batch_size": 4096})
    with recbole_adapter.recbole_isolation():
        rb_config = Config(model=get_model("BPR"), dataset=recbole_adapter.RECBOLE_DATASET, config_dict=settings)
        init_seed(seed, True)
        _, _, test_data = data_preparation(rb_config, create_dataset(rb_config))
    return rb_config, test_data, inputs, folder


def _trained(folder: Path, model: torch.nn.Module) -> torch.nn.Module:
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True)["model"])
    return model.eval()


def recbole_scores(store_path: Path, config: TrainConfig, run: str, mode: str, seed: int) -> dict[str, float]:
    """RecBole's evaluator on kt's weights: same exported split files, RecBole's sampler and metrics."""
    rb_config, test_data, _, folder = _recbole_test_data(store_path, config, run, mode, seed)
    with recbole_adapter.recbole_isolation():
        model = _trained(folder, get_model("BPR")(rb_config, test_data._dataset))
        init_seed(seed, True)  # RecBole draws eval negatives from numpy's global state while iterating
        with contextlib.chdir(folder):  # RecBole's Trainer writes ./log_tensorboard wherever it runs
            result = Trainer(rb_config, model).evaluate(test_data, load_best_model=False, show_progress=False)
    return {m: float(result[m]) for m in METRICS}


def same_candidates(store_path: Path, config: TrainConfig, run: str, mode: str) -> dict[str, tuple[float, float]]:
    """One pass of RecBole's sampler, scored by RecBole's metric code and by kt's on the very same candidates;
    plus the mean number of distinct candidates per user of that pass and of kt's sampler (seed 0)."""
    rb_config, test_data, inputs, folder = _recbole_test_data(store_path, config, run, mode, 0)
    session = Session(config, inputs, folder)
    model = _trained(folder, session.model)
    n_items = session.parts.num("item")
    candidates: dict[int, set[int]] = {}
    with recbole_adapter.recbole_isolation(), torch.no_grad():
        collector = Collector(rb_config)
        collector.data_collect(test_data)
        for interaction, row_idx, positive_u, positive_i in test_data:
            scores = torch.full((int(positive_u[-1]) + 1, n_items), -np.inf)
            scores[row_idx, interaction["item_id"]] = model.predict(interaction)
            scores[:, 0] = -np.inf
            collector.eval_batch_collect(scores, interaction, positive_u, positive_i)
            for user, item in zip(interaction["user_id"].tolist(), interaction["item_id"].tolist()):
                candidates.setdefault(user, set()).add(item)
        theirs = Evaluator(rb_config).evaluate(collector.get_data_struct())
    truth = session.truth(2)
    kind, per_positive = ranking.parse_mode(mode)
    drawn = ranking._sample_negatives(truth, 0, len(truth.users), per_positive, kind, n_items,
                                      session.item_popularity(), np.random.default_rng(0))
    kt_count = float((drawn.sum(1).numpy() + [len(p) for p in truth.positives]).mean())
    given = {u: torch.tensor(sorted(items)) for u, items in candidates.items()}

    def recboles_draw(truth, start, stop, *_):
        mask = torch.zeros((stop - start, n_items), dtype=torch.bool)
        for row, index in enumerate(range(start, stop)):
            mask[row, given[int(truth.users[index])]] = True
        return mask

    own = ranking._sample_negatives
    ranking._sample_negatives = recboles_draw
    try:
        ours = session.evaluate(truth, (10,), mode=mode)
    finally:
        ranking._sample_negatives = own
    out = {m: (float(ours[tuple_key(m)].mean()), float(theirs[m])) for m in METRICS}
    out["distinct candidates per user"] = (kt_count, float(np.mean([len(c) for c in candidates.values()])))
    return out


def draw_law(store_path: Path, config: TrainConfig, run: str, passes: int = 20) -> dict[str, float]:
    """Both samplers' uni100 draws over ``passes`` passes: forbidden items drawn, mean distinct negatives per
    user, and a chi-square test of the per-item totals (kt's sampler vs RecBole's)."""
    from scipy.stats import chi2_contingency

    _, test_data, inputs, folder = _recbole_test_data(store_path, config, run, "uni100", 0)
    session = Session(config, inputs, folder)
    truth, n_items = session.truth(2), session.parts.num("item")
    row = {int(u): i for i, u in enumerate(truth.users)}
    forbidden = np.zeros((len(truth.users), n_items), dtype=bool)
    forbidden[:, 0] = True
    for index, used in enumerate(truth.used):
        forbidden[index, used] = True
    positive = np.zeros_like(forbidden)
    for index, items in enumerate(truth.positives):
        positive[index, items] = True
    ours, theirs = np.zeros(forbidden.shape), np.zeros(forbidden.shape)
    for seed in range(passes):
        ours += ranking._sample_negatives(truth, 0, len(truth.users), 100, "uni", n_items, None,
                                          np.random.default_rng(seed)).numpy()
        drawn = np.zeros_like(forbidden)
        with recbole_adapter.recbole_isolation():
            for interaction, *_ in test_data:
                drawn[[row[u] for u in interaction["user_id"].tolist()], interaction["item_id"].numpy()] = True
        theirs += drawn & ~positive
    totals = np.vstack([ours.sum(0)[1:], theirs.sum(0)[1:]]) + 1
    return {"forbidden items drawn, kt": float((ours[forbidden] > 0).sum()),
            "forbidden items drawn, RecBole": float((theirs[forbidden] > 0).sum()),
            "distinct negatives per user, kt": float(ours.sum(1).mean() / passes),
            "distinct negatives per user, RecBole": float(theirs.sum(1).mean() / passes),
            "chi-square p, per-item draw counts": float(chi2_contingency(totals)[1])}


def tuple_key(metric: str) -> tuple[str, int]:
    name, k = metric.split("@")
    return name, int(k)


def kt_scores(store_path: Path, run: str, mode: str, seed: int) -> dict[str, float]:
    metrics = evaluate_run(store_path, run, EvalSettings(ks=(10,), mode=mode, seed=seed)).metrics
    table = metrics[metrics["slice"] == "all"]
    return {f"{m}@{k}": float(v) for m, k, v in zip(table["metric"], table["k"], table["value"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "sampled_metrics.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "kt.duckdb"
        config = TrainConfig("ml-100k", "bpr", distill_epochs=args.epochs, finetune_epochs=0, patience=5)
        train(store, config, "bpr")
        with Store.open(store) as db:
            split = db.split_label(db.run("bpr").split_id)
        exact = {mode: same_candidates(store, config, "bpr", mode) for mode in ("uni100", "pop100")}
        law = draw_law(store, config, "bpr")
        print(law, flush=True)
        for mode, checks in exact.items():
            for what, (ours, theirs) in checks.items():
                print(f"{mode:7} same candidates, {what}: kt {ours:.5f}  RecBole {theirs:.5f}", flush=True)
        for mode in ("full", "uni100", "pop100"):
            seeds = range(args.seeds) if mode != "full" else range(1)
            kt = [kt_scores(store, "bpr", mode, s) for s in seeds]
            rb = [recbole_scores(store, config, "bpr", mode, s) for s in seeds]
            for metric in METRICS:
                a, b = np.array([r[metric] for r in kt]), np.array([r[metric] for r in rb])
                p = float(stats.ttest_ind(a, b, equal_var=False).pvalue) if len(a) > 1 and (a.std() + b.std()) > 0 \
                    else float("nan")
                rows.append((mode, metric, a, b, p))
                print(f"{mode:7} {metric:10} kt {a.mean():.4f} ± {a.std(ddof=1) if len(a) > 1 else 0:.4f}  "
                      f"RecBole {b.mean():.4f} ± {b.std(ddof=1) if len(b) > 1 else 0:.4f}  p {p:.3g}", flush=True)
    lines = [
        "# Sampled metrics: kt against RecBole's own evaluator",
        "",
        f"Written by `python bench/sampled_metrics.py --seeds {args.seeds} --epochs {args.epochs}`: one BPR run "
        f"trained by kt on ml-100k, split `{split}`, scored on the test part by `kt eval` and by RecBole 1.2.1's "
        "`Trainer.evaluate` (its `NegSampleEvalDataLoader` on the same exported files), one thread. Sampled "
        f"modes: {args.seeds} sampling seeds each side; mean ± std over seeds, Welch's t-test between the sides "
        "(the two samplers use different random streams, so only the distributions can agree). Full ranking: one "
        "pass each; it must be identical.",
        "",
        "The definition both follow (kt_cli/evaluation/ranking.py): for a user with n held-out items, 100 x n "
        "negatives are drawn with replacement, uniformly (`uni`) or by interaction counts over the whole split "
        "(`pop`); a draw that hits an item of the user's parts up to the evaluated one is redrawn; duplicates "
        "count once.",
        "",
        "| mode | metric | kt | RecBole | difference | p (Welch) |",
        "|---|---|---|---|---|---|",
    ]
    for mode, metric, a, b, p in rows:
        sd = (lambda x: f" ± {x.std(ddof=1):.4f}" if len(x) > 1 else "")
        lines.append(f"| {mode} | {metric} | {a.mean():.4f}{sd(a)} | {b.mean():.4f}{sd(b)} | "
                     f"{a.mean() - b.mean():+.4f} | {'—' if np.isnan(p) else f'{p:.3g}'} |")
    lines += ["", "## Exact checks", "", "One pass of RecBole's sampler (seed 0): its candidates scored by RecBole's "
              "metric code and by kt's (`same candidates`), and the mean number of distinct candidates per user "
              "(held-out items included) in that pass and in one pass of kt's sampler (seed 0; this one agrees only "
              "up to sampling noise).", "", "| mode | what | kt | RecBole |", "|---|---|---|---|"]
    for mode, checks in exact.items():
        for what, (ours, theirs) in checks.items():
            lines.append(f"| {mode} | {what if what.startswith('distinct') else 'same candidates, ' + what} | "
                         f"{ours:.5f} | {theirs:.5f} |")
    lines += ["", "The draw law itself, uni100, 20 passes of each sampler (seeds 0-19):", "",
              "| what | value |", "|---|---|"] + [f"| {what} | {value:.4g} |" for what, value in law.items()]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
