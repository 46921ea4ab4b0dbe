"""LLM-KT against a tuned baseline and two controls on ml-100k; writes docs/results.md and a plot.

For each model (NeuMF, SimpleX, MultVAE), on kt's default split (each user's ratings in time order,
70/10/20, the LLM-KT paper's protocol), full ranking, early stopping on validation NDCG@10:

- baseline: the model alone; learning rate x dropout, then weight decay, searched on validation (8
  configurations);
- LLM-KT: reconstruct the shipped LLM profile vectors (all-MiniLM-L6-v2, reduced by PCA or UMAP); on the
  baseline's choices, alpha x reducer at the reference's layer and width 64, then layer (the reference's or
  the user's ID embedding; MultVAE: the encoder's mean) x width (64, or the first 16 columns), searched on
  validation (8 configurations, one of them a repeat: the same budget);
- control random: the best LLM-KT configuration with random vectors for the same users, same scale;
- control history-text: the best LLM-KT configuration with the no-LLM text of the same history (the lines
  the profile prompt shows) embedded by the same encoder and reduced the same way. The shipped profiles
  and this text both come from the training part of the split only: neither has seen a held-out item.
The test split is read once per final configuration: 5 training seeds per arm. Reported: mean and
standard deviation over seeds, change against the baseline, a paired t-test over users (each user's
metric averaged over the seeds) and, because that test sees user noise but not training noise, a Welch
t-test over the seed means and an A/A check (baseline seed 1 against baseline seed 2 with the per-user
test); the same for users with fewer than 20 training interactions; epoch time with the hook against the
baseline's, and the time of each pipeline stage.

Usage:
  python bench/llmkt.py                                   # everything (background it)
  python bench/llmkt.py --models multvae --seeds 1        # one model, one seed: the rerun check
docs/results.md and docs/results.svg are written only by a run of all models with 5 seeds (or --out);
other runs print their tables. Each search stage and the finals train their runs side by side as tasks on a
local Ray (kt_cli.sweep.train_runs: one thread each, all cores), the bench the only writer of its store
(bench/bench.duckdb), which caches every finished run and evaluation: delete it to retrain.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kt_cli.evaluation.compare import paired_test  # noqa: E402
from kt_cli.evaluation.evaluate import evaluate_run  # noqa: E402
from kt_cli.evaluation.settings import EvalSettings  # noqa: E402
from kt_cli.knowledge.encoders import MiniLM  # noqa: E402
from kt_cli.knowledge.sets import random_like, reduce_set  # noqa: E402
from kt_cli.knowledge.texts import embed_history, embed_profiles  # noqa: E402
from kt_cli.profiles.generate import ProfileJob, generate_profiles  # noqa: E402
from kt_cli.profiles.models import DEFAULT_CHAT_MODEL  # noqa: E402
from kt_cli.profiles.prompts import HistoryRules, load_template  # noqa: E402
from kt_cli.store import Store  # noqa: E402
from kt_cli.training.config import TrainConfig  # noqa: E402
from kt_cli.sweep import train_runs  # noqa: E402

DATASET = "ml-100k"
REDUCERS = ("pca", "umap")
WIDTHS = (64, 16)  # 64: the width of every default layer (the reference's choice); 16: the first 16 columns only
WEIGHT_DECAYS = (1e-6, 1e-5, 1e-4, 1e-3)  # the baseline's second search stage (RecBole's default is 0)
METRICS = ("ndcg@10", "recall@10", "hit@10")
SPARSE = "n_train<20"
ARMS = ("baseline", "llm-kt", "random", "history-text")


@dataclass(frozen=True)
class Budget:
    """Epochs per phase, patience and the search grids: the same for every arm of one model.

    Both searches have two stages of the same size, so neither side gets more tuning than the other:
    the baseline's learning rate x dropout, then its weight decay; LLM-KT's alpha x reducer, then layer x
    width (on top of the baseline's choices). ``layers[0]`` is the model's default layer.
    """

    distill: int
    finetune: int
    patience: int
    learning_rates: tuple[float, ...]
    dropouts: tuple[float, ...]
    alphas: tuple[float, ...]
    layers: tuple[str, str]

    def __post_init__(self) -> None:
        assert len(self.learning_rates) * len(self.dropouts) == len(self.alphas) * len(REDUCERS)
        assert len(WEIGHT_DECAYS) == len(self.layers) * len(WIDTHS)


# Sized to the 2-hour limit on 2 cores (measured: MultVAE ~0.15 s an epoch + ~0.3 s to validate; SimpleX
# ~1.4 s + 0.4 s; NeuMF ~0.8 s + ~4 s, because it validates by scoring every user-item pair).
# Alphas: MultVAE's own loss is a sum over items (~460 a user) against an RMSE of ~0.4, so at the
# reference's alphas its hook is nearly inert (a validation ablation found alpha 0.5 indistinguishable
# from the baseline and 0.999 harmful); NeuMF's and SimpleX's losses are below 1.
# Layers: the reference's, then one closer to the user's identity: MultVAE's encoder output (its first 64
# columns are the posterior mean, the deterministic twin of the sampled z), SimpleX's and NeuMF's (GMF) user
# ID embedding.
BUDGETS = {
    "multvae": Budget(100, 100, 10, (1e-3, 5e-3), (0.3, 0.5), (0.5, 0.99), ("decoder:input", "encoder:output")),
    "simplex": Budget(15, 15, 4, (1e-3, 5e-3), (0.1, 0.3), (0.3, 0.8), ("dropout:input", "user_emb:output")),
    "neumf": Budget(8, 8, 3, (1e-3, 5e-3), (0.0, 0.2), (0.3, 0.8), ("mlp_layers:output", "user_mf_embedding:output")),
}
# Every run with knowledge (LLM-KT and both controls) centres its vectors and matches the hooked layer's
# norm (kt train --target-scale layer): UMAP's raw coordinates are ~100x a fresh layer's norm.
TARGET_SCALE = "layer"
# The shipped profiles show the training part of the default split only; the history-text control is built
# from the same lines.
SHIPPED_HISTORY = HistoryRules()


def _seconds(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def prepare(store_path: Path) -> dict[str, float]:
    """Profiles (shipped, offline), embeddings, reductions and controls; returns each stage's seconds.

    The first run on a new bench store times each stage as it does the work and keeps the figures beside
    the store; later runs reuse both the stored sets and those figures.
    """
    times_file = store_path.with_name(store_path.stem + ".stages.json")
    fresh = not store_path.exists()
    encoder = MiniLM()
    times: dict[str, float] = {}
    with Store.open(store_path) as store:
        job = ProfileJob(DATASET, "user", load_template("user", domain="movies"), DEFAULT_CHAT_MODEL, "local",
                         rules=SHIPPED_HISTORY)
        report, times["profile (import shipped answers)"] = _seconds(
            generate_profiles, store, job, lambda: None, cache_dir=ROOT / "profiles_cache", offline=True)
        llm, times["embed profiles (MiniLM)"] = _seconds(embed_profiles, store, DATASET, report.set.name, encoder,
                                                         name="llm")
        _, times["embed history text (MiniLM)"] = _seconds(embed_history, store, DATASET, encoder, SHIPPED_HISTORY,
                                                           name="history")
        for method in REDUCERS:
            for width in WIDTHS:
                for parent in ("llm", "history"):
                    _, times[f"reduce {parent} to {width} ({method})"] = _seconds(
                        reduce_set, store, DATASET, parent, method=method, dim=width,
                        name=set_name(parent, method, width))
                random_like(store, DATASET, set_name("llm", method, width), name=set_name("random", method, width))
    if fresh or not times_file.exists():
        times_file.write_text(json.dumps(times))
    times = json.loads(times_file.read_text())
    times["coverage"] = llm.set.n_vectors
    return times


def set_name(parent: str, method: str, width: int) -> str:
    """``llm-pca64``: the vectors (llm, history, random), how they were reduced, and to what width."""
    return f"{parent}-{method}{width}"


def _config(model: str, budget: Budget, seed: int, base: dict, kt: dict | None = None, arm: str = "llm") -> TrainConfig:
    """``base``: the baseline's settings (lr, dropout, weight decay); ``kt``: LLM-KT's (method, width, alpha,
    layer), applied with the vectors of ``arm`` (llm, random or history)."""
    knowledge = set_name(arm, kt["method"], kt["width"]) if kt else None
    return TrainConfig(DATASET, model, knowledge=knowledge, alpha=kt["alpha"] if kt else 0.5,
                       inject_layer=kt["layer"] if kt else None,
                       target_scale=TARGET_SCALE if kt else "none", distill_epochs=budget.distill,
                       finetune_epochs=budget.finetune, patience=budget.patience, seed=seed,
                       recbole={"learning_rate": base["lr"], "dropout_prob": base["dropout"],
                                "weight_decay": base["weight_decay"]})


def _label(settings: dict, readable: bool = False) -> str:
    """``lr0.001-dropout0`` for run names, or ``lr 0.001, dropout 0`` for the report."""
    parts = [(k, f"{v:g}" if isinstance(v, float) else str(v)) for k, v in settings.items()]
    if readable:
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in parts)
    return "-".join(k + v for k, v in parts).replace(":", ".")


def _fit(store_path: Path, configs: dict[str, TrainConfig]) -> dict[str, dict]:
    """Train the named runs side by side on a local Ray (one thread each); their summaries by name."""
    return train_runs(store_path, configs, threads=1)


def _best(store_path: Path, model: str, budget: Budget, candidates: list[dict], kt_fixed: dict | None,
          base_fixed: dict) -> tuple[dict, dict[str, float]]:
    """Train each candidate on seed 42; the best by validation NDCG@10 (the first on a tie), and every score.

    A candidate is one stage's settings, merged over the fixed ones; run names carry all settings, so a
    candidate that repeats an earlier configuration is the cached run, not a second one."""
    runs: dict[str, tuple[str, TrainConfig]] = {}
    for candidate in candidates:
        base, kt = (base_fixed, {**kt_fixed, **candidate}) if kt_fixed is not None else ({**base_fixed, **candidate}, None)
        name = f"{model}-search-" + (f"kt-{_label(kt)}" if kt else f"base-{_label(base)}")
        runs[_label(candidate, True)] = (name, _config(model, budget, 42, base, kt))
    done = _fit(store_path, dict(runs.values()))
    scores = {label: done[name]["best_valid"] for label, (name, _) in runs.items()}
    best = max(range(len(candidates)), key=lambda i: scores[_label(candidates[i], True)])
    return candidates[best], scores


def search(store_path: Path, model: str, budget: Budget) -> dict:
    """Validation-only choices in two stages for each side, the same number of configurations each."""
    base, base_scores = _best(store_path, model, budget, [
        {"lr": lr, "dropout": d, "weight_decay": 0.0} for lr in budget.learning_rates for d in budget.dropouts],
        None, {})
    decay, decay_scores = _best(store_path, model, budget, [{"weight_decay": wd} for wd in WEIGHT_DECAYS], None, base)
    if max(decay_scores.values()) > base_scores[_label(base, True)]:
        base = {**base, **decay}
    first, kt_scores = _best(store_path, model, budget, [
        {"method": m, "width": WIDTHS[0], "alpha": a, "layer": budget.layers[0]} for m in REDUCERS
        for a in budget.alphas], {}, base)
    second, shape_scores = _best(store_path, model, budget, [
        {"layer": layer, "width": width} for layer in budget.layers for width in WIDTHS], first, base)
    return {"base": base, "kt": {**first, **second}, "scores": {
        "baseline lr x dropout": base_scores, "baseline weight decay": decay_scores,
        "llm-kt reducer x alpha": kt_scores, "llm-kt layer x width": shape_scores}}


def finals(store_path: Path, model: str, budget: Budget, best: dict, seeds: list[int], train_missing: bool = True
           ) -> tuple[dict, dict]:
    """Train and test-evaluate every arm for every seed; returns run names by arm and test-eval seconds.

    Without ``train_missing`` (--report-only) it stops at the first seed whose four runs are not all
    finished, so a report never mixes seeds across arms.
    """
    vectors = {"llm-kt": "llm", "random": "random", "history-text": "history"}
    runs: dict[str, list[str]] = {arm: [] for arm in ARMS}
    timings = store_path.with_suffix(".eval.json")
    eval_seconds: list[float] = json.loads(timings.read_text()) if timings.exists() else []
    if train_missing:  # every arm and seed side by side
        _fit(store_path, {f"{model}-final-{arm}-s{seed}": _config(
            model, budget, seed, best["base"], best["kt"] if arm in vectors else None, vectors.get(arm, "llm"))
            for seed in seeds for arm in ARMS})
    for seed in seeds:
        names = {arm: f"{model}-final-{arm}-s{seed}" for arm in ARMS}
        if not train_missing:
            with Store.open(store_path) as store:
                if not all((row := store.run(n)) is not None and row.status == "finished" for n in names.values()):
                    break
        for arm in ARMS:
            result = evaluate_run(store_path, names[arm], EvalSettings())
            if not result.cached:
                eval_seconds.append(result.seconds)
                timings.write_text(json.dumps(eval_seconds))
            runs[arm].append(names[arm])
    if not eval_seconds and runs["baseline"]:  # all evaluations cached and none timed: time one again
        eval_seconds.append(evaluate_run(store_path, runs["baseline"][-1], EvalSettings(), force=True).seconds)
        timings.write_text(json.dumps(eval_seconds))
    return runs, {"test evaluation (full ranking, 943 users)": float(np.mean(eval_seconds)) if eval_seconds else None}


def run_model(model: str, budget: Budget, seeds: list[int], path: Path, train_missing: bool) -> dict:
    """Search, finals and summary for one model (each stage's runs side by side on Ray)."""
    best = search(path, model, budget)
    print(model, "search:", {k: v for k, v in best.items() if "scores" not in k}, flush=True)
    runs, eval_seconds = finals(path, model, budget, best, seeds, train_missing)
    with Store.open(path) as store:  # compute spent on this model: every run's training and validation
        minutes = sum(row.summary.get("seconds", 0.0) for row in store.runs()  # not the ablation's runs
                      if row.name.startswith((f"{model}-search-", f"{model}-final-"))) / 60
    return {"budget": budget, "search": best, "summary": summarize(path, runs), "runs": runs,
            "eval_seconds": eval_seconds, "minutes": minutes}


def _per_user(store: Store, run: str, metric: str, sparse: bool) -> "np.ndarray":
    eval_id = store.evaluation_id(run, EvalSettings().to_dict())
    frame = store.eval_users(eval_id, "all")
    name, k = metric.split("@")
    frame = frame[(frame["metric"] == name) & (frame["k"] == int(k))]
    if sparse:
        frame = frame[frame["n_train"] < EvalSettings().sparse_below]
    assert frame["user_id"].is_unique, f"{run}: more than one {metric} value for a user"
    return frame.set_index("user_id")["value"].sort_index()


def summarize(store_path: Path, runs: dict[str, list[str]]) -> dict:
    """Per arm and metric: mean and spread over seeds, the change against the baseline, a paired t-test over
    users of the seed-averaged metric, and a Welch t-test over the seed means (training noise); plus the
    per-user test of baseline seed 1 against baseline seed 2 (an A/A check: same config, other seed)."""
    from scipy.stats import ttest_ind

    out: dict = {}
    with Store.open(store_path) as store:
        for sparse in (False, True):
            table = {}
            for metric in METRICS:
                per_arm = {arm: [_per_user(store, r, metric, sparse) for r in names] for arm, names in runs.items()}
                base_users = np.mean([s.to_numpy() for s in per_arm["baseline"]], axis=0)
                base_seed_means = [float(s.mean()) for s in per_arm["baseline"]]
                for arm, series in per_arm.items():
                    seed_means = [float(s.mean()) for s in series]
                    users = np.mean([s.to_numpy() for s in series], axis=0)
                    compared = arm != "baseline"
                    p_users = paired_test(base_users, users, "ttest")[0] if compared else None
                    p_seeds = (float(ttest_ind(seed_means, base_seed_means, equal_var=False).pvalue)
                               if compared and len(seed_means) > 1 else None)
                    table[(arm, metric)] = {
                        "seeds": seed_means, "mean": float(np.mean(seed_means)),
                        "std": float(np.std(seed_means, ddof=1)) if len(seed_means) > 1 else 0.0,
                        "delta_pct": (np.mean(seed_means) / np.mean(base_seed_means) - 1) * 100,
                        "p": p_users, "p_seeds": p_seeds, "n_users": len(users)}
                llm_users = np.mean([s.to_numpy() for s in per_arm["llm-kt"]], axis=0)
                llm_seeds = [float(s.mean()) for s in per_arm["llm-kt"]]
                for control in ("random", "history-text"):
                    users = np.mean([s.to_numpy() for s in per_arm[control]], axis=0)
                    seeds = [float(s.mean()) for s in per_arm[control]]
                    table[(f"llm-kt vs {control}", metric)] = {
                        "delta_pct": (np.mean(llm_seeds) / np.mean(seeds) - 1) * 100,
                        "p": paired_test(users, llm_users, "ttest")[0],
                        "p_seeds": float(ttest_ind(llm_seeds, seeds, equal_var=False).pvalue) if len(seeds) > 1 else None}
                if len(per_arm["baseline"]) > 1:
                    first, second = (s.to_numpy() for s in per_arm["baseline"][:2])
                    table[("A/A", metric)] = {"delta_pct": (second.mean() / first.mean() - 1) * 100,
                                              "p": paired_test(first, second, "ttest")[0]}
            out[SPARSE if sparse else "all"] = table
        overhead = {}
        for arm in ARMS:
            seconds = [store.run(r).summary["seconds_per_epoch"] for r in runs[arm]]
            first_phase = "train" if arm == "baseline" else "distill"
            overhead[arm] = float(np.mean([s[first_phase] for s in seconds if first_phase in s]))
        out["epoch_seconds"] = overhead
    return out


def _cell(row: dict, with_delta: bool) -> str:
    text = f"{row['mean']:.4f} ± {row['std']:.4f}"
    if with_delta:
        star = "*" if row["p"] < 0.05 else ""
        seeds = f", seeds p={row['p_seeds']:.2g}" if row["p_seeds"] is not None else ""
        text += f" ({row['delta_pct']:+.1f}%{star}, users p={row['p']:.2g}{seeds})"
    return text


def _svg(results: dict[str, dict]) -> str:
    """A bar chart of NDCG@10 (mean ± std over seeds) by model and arm, as plain SVG (no plotting library)."""
    colours = {"baseline": "#888888", "llm-kt": "#1f77b4", "random": "#d62728", "history-text": "#2ca02c"}
    width, height, left, bottom, bar = 640, 320, 50, 40, 30
    top = max(r["summary"]["all"][(a, "ndcg@10")]["mean"] + r["summary"]["all"][(a, "ndcg@10")]["std"]
              for r in results.values() for a in ARMS) * 1.1
    scale = (height - bottom - 20) / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             'font-size="11">', f'<text x="{left}" y="14">NDCG@10 on the test split, mean ± std over seeds</text>']
    for i, (model, result) in enumerate(results.items()):
        x0 = left + i * (len(ARMS) * bar + 40)
        parts.append(f'<text x="{x0}" y="{height - 10}">{model}</text>')
        for j, arm in enumerate(ARMS):
            row = result["summary"]["all"][(arm, "ndcg@10")]
            x, h = x0 + j * bar, row["mean"] * scale
            y = height - bottom - h
            parts.append(f'<rect x="{x}" y="{y:.1f}" width="{bar - 4}" height="{h:.1f}" fill="{colours[arm]}"/>')
            lo, hi = height - bottom - (row["mean"] - row["std"]) * scale, height - bottom - (row["mean"] + row["std"]) * scale
            parts.append(f'<line x1="{x + bar / 2 - 2}" x2="{x + bar / 2 - 2}" y1="{lo:.1f}" y2="{hi:.1f}" stroke="black"/>')
    for j, arm in enumerate(ARMS):
        parts.append(f'<rect x="{width - 120}" y="{30 + 16 * j}" width="10" height="10" fill="{colours[arm]}"/>'
                     f'<text x="{width - 105}" y="{39 + 16 * j}">{arm}</text>')
    return "\n".join(parts + ["</svg>"])


def _grid(values: tuple) -> str:
    return "{" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values) + "}"


def write_report(results: dict[str, dict], stages: dict[str, float], seeds: list[int], wall: float | None,
                 out: Path) -> None:
    lines = ["# Results: LLM-KT on ml-100k, with controls", "",
             (f"Generated by `python bench/llmkt.py` ({wall / 60:.0f} min wall on this machine for the run that "
              "trained everything: 2 cores, two runs at a time, 1 thread each)" if wall is not None else
              "Assembled by `python bench/llmkt.py --report-only` from the finished runs in the model stores "
              "(training time per model below)")
             + "; do not edit the tables by hand. What they mean, what was tried and what "
             "holds: the analysis at the end (from bench/results_notes.md).", "",
             f"Setting: ml-100k, each user's ratings in time order split 70/10/20 (kt's default, the paper's "
             "protocol), full ranking over all items, "
             f"early stopping on validation NDCG@10 in each phase; training seeds 1 to {len(seeds)} (fewer where "
             "the table below says so); "
             f"the shipped LLM profiles cover {int(stages['coverage'])} of 943 users.", "",
             "Budget per model (every arm alike): max epochs of the first phase (with the hook) + the fine-tune "
             "phase, and patience. Search on validation only, seed 42, in two stages for each side with the same "
             "number of configurations: the baseline's learning rate x dropout, then its weight decay "
             f"{_grid(WEIGHT_DECAYS)} (kept only if it beats no decay); LLM-KT, on the baseline's choices, alpha x "
             "reducer (PCA or UMAP to 64 dims, the width of the reference's layers) at the reference's layer, then "
             f"layer x width {_grid(WIDTHS)} (a width below the layer's compares its first columns, as the reference "
             "does). Every run with knowledge (LLM-KT and both controls) uses `--target-scale layer` (vectors "
             "centred and matched to the layer's norm at initialisation). The controls reuse LLM-KT's choice. The "
             "test split is read once per final run (4 arms x seeds).", "",
             "| model | epochs | patience | baseline grid (lr x dropout; weight decay) | LLM-KT grid (alpha x reducer; "
             "layer x width) | chosen baseline | chosen LLM-KT | seeds | training minutes (all its runs) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for model, r in results.items():
        b, base, kt = r["budget"], r["search"]["base"], r["search"]["kt"]
        lines.append(f"| {model} | {b.distill} + {b.finetune} | {b.patience} | {_grid(b.learning_rates)} x "
                     f"{_grid(b.dropouts)}; {_grid(WEIGHT_DECAYS)} | {_grid(b.alphas)} x {_grid(REDUCERS)}; "
                     f"{_grid(b.layers)} x {_grid(WIDTHS)} | lr {base['lr']:g}, dropout {base['dropout']:g}, weight "
                     f"decay {base['weight_decay']:g} | {kt['method']}, alpha {kt['alpha']:g}, {kt['layer']}, width "
                     f"{kt['width']} | {len(r['runs']['baseline'])} | {r['minutes']:.0f} |")
    lines += ["", "![NDCG@10 by model and arm](results.svg)", ""]
    for slice_name, title in (("all", "All users"), (SPARSE, "Sparse users (fewer than 20 training interactions)")):
        lines += [f"## {title}", "", "Mean ± std over seeds. In brackets: the change of the mean against the "
                  "baseline; the paired t-test over users of the seed-averaged metric (* p < 0.05); the Welch "
                  "t-test over the seed means. The 'llm-kt vs' rows test LLM-KT against each control the same way. The A/A row is the per-user test of baseline seed 1 against "
                  "baseline seed 2: how large a 'significant' change training noise alone produces.", ""]
        for model, r in results.items():
            table = r["summary"][slice_name]
            n_users = table[("baseline", "ndcg@10")]["n_users"]
            lines += [f"**{model}** ({n_users} users)", "", "| arm | " + " | ".join(METRICS) + " |",
                      "|---|" + "---|" * len(METRICS)]
            for arm in ARMS:
                lines.append(f"| {arm} | " + " | ".join(_cell(table[(arm, m)], arm != "baseline") for m in METRICS)
                             + " |")
            for control in ("random", "history-text"):
                row = f"llm-kt vs {control}"
                lines.append(f"| {row} | " + " | ".join(
                    f"{table[(row, m)]['delta_pct']:+.1f}%{'*' if table[(row, m)]['p'] < 0.05 else ''}, "
                    f"users p={table[(row, m)]['p']:.2g}"
                    + (f", seeds p={table[(row, m)]['p_seeds']:.2g}" if table[(row, m)]['p_seeds'] is not None else "")
                    for m in METRICS) + " |")
            if ("A/A", METRICS[0]) in table:
                lines.append("| A/A (seed 2 vs 1) | " + " | ".join(
                    f"{table[('A/A', m)]['delta_pct']:+.1f}%, users p={table[('A/A', m)]['p']:.2g}" for m in METRICS)
                    + " |")
            lines.append("")
    lines += ["## Per seed (NDCG@10, all users)", "", "For the rerun check: `python bench/llmkt.py --models M "
              "--seeds 1` retrains seed 1 of every arm after the same search (on a fresh clone, or after deleting bench/bench-M.duckdb, which caches finished runs) and prints these values.", "",
              "| model | arm | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---|---|" + "---|" * len(seeds)]
    for model, r in results.items():
        for arm in ARMS:
            lines.append(f"| {model} | {arm} | " + " | ".join(
                f"{v:.4f}" for v in r["summary"]["all"][(arm, "ndcg@10")]["seeds"]) + " |")
    lines += ["", "## Cost", "", "Training seconds per epoch (mean over seeds; first phase, with the hook for LLM-KT and "
              "the controls), and the ratio to the baseline's (target: at most 1.10). Validation is not included. "
              "These runs shared the machine with another run's worker and differ in epochs and "
              "configuration; the overhead measured alone, epoch by epoch, is in "
              "[hook_overhead.md](hook_overhead.md) (`python bench/hook_overhead.py`).",
              "", "| model | baseline | LLM-KT | ratio | random | history-text | test evaluation (s) |",
              "|---|---|---|---|---|---|---|"]
    for model, r in results.items():
        e = r["summary"]["epoch_seconds"]
        evaluation = next(iter(r["eval_seconds"].values()))
        lines.append(f"| {model} | {e['baseline']:.3f} | {e['llm-kt']:.3f} | {e['llm-kt'] / e['baseline']:.2f} | "
                     f"{e['random']:.3f} | {e['history-text']:.3f} | "
                     f"{f'{evaluation:.1f}' if evaluation is not None else 'cached'} |")
    lines += ["", "Pipeline stages before training (seconds, measured when the bench store was made):", "",
              "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in stages.items() if k != "coverage"]
    lines += ["", "## Search (validation NDCG@10, seed 42)", ""]
    for model, r in results.items():
        lines.append(f"- **{model}**")
        for stage, scores in r["search"]["scores"].items():
            lines.append(f"  - {stage}: " + "; ".join(f"{label}: {value:.4f}" for label, value in scores.items()))
    notes = ROOT / "bench" / "results_notes.md"
    if notes.exists():
        lines += ["", notes.read_text()]
    out.write_text("\n".join(lines) + "\n")
    (out.parent / "results.svg").write_text(_svg(results))


def print_tables(results: dict[str, dict]) -> None:
    for model, r in results.items():
        for slice_name in ("all", SPARSE):
            table = r["summary"][slice_name]
            for arm in ARMS:
                print(f"{model:8} {slice_name:10} {arm:13}", " | ".join(
                    f"{m} {_cell(table[(arm, m)], arm != 'baseline')}" for m in METRICS), flush=True)
        print(f"{model:8} ndcg@10 per seed", {arm: [round(v, 4) for v in r["summary"]["all"][(arm, "ndcg@10")]["seeds"]]
                                             for arm in ARMS})
        print(f"{model:8} epoch seconds", {k: round(v, 3) for k, v in r["summary"]["epoch_seconds"].items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="neumf,simplex,multvae", help="comma-separated; slowest first")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--store", type=Path, default=ROOT / "bench" / "bench.duckdb")
    parser.add_argument("--out", type=Path, help="report path [default: docs/results.md for a full run, else none]")
    parser.add_argument("--report-only", action="store_true", help="train nothing: report the seeds whose four "
                        "runs are finished in the model stores (search runs must be finished)")
    parser.add_argument("--epochs", type=int, help="override every budget's epochs per phase (smoke runs: use "
                        "another --store, run names do not carry the budget)")
    args = parser.parse_args()
    models = args.models.split(",")
    unknown = set(models) - set(BUDGETS)
    if unknown:
        parser.error(f"unknown model(s) {', '.join(sorted(unknown))}; choose from {', '.join(BUDGETS)}")
    full = set(models) == set(BUDGETS) and args.seeds == 5 and args.epochs is None
    out = args.out or (ROOT / "docs" / "results.md" if full else None)
    started = time.perf_counter()
    wall_file = args.store.with_name(args.store.stem + ".wall.json")  # the training run's wall time, for reports
    stages = prepare(args.store)
    print("stages:", json.dumps({k: round(v, 1) for k, v in stages.items()}), flush=True)
    seeds = list(range(1, args.seeds + 1))
    results: dict[str, dict] = {}
    for model in models:
        budget = BUDGETS[model] if args.epochs is None else replace(BUDGETS[model], distill=args.epochs,
                                                                     finetune=args.epochs)
        results[model] = result = run_model(model, budget, seeds, args.store, not args.report_only)
        print_tables({model: result})
        if full and not args.report_only and len(results) == len(models) and not wall_file.exists():
            wall_file.write_text(json.dumps(time.perf_counter() - started))  # the first complete run's
        wall = json.loads(wall_file.read_text()) if wall_file.exists() and len(results) == len(models) else None
        if out:  # after each model, so an interrupted benchmark keeps what it finished
            write_report({m: results[m] for m in models if m in results}, stages, seeds, wall, out)
    if out:
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
