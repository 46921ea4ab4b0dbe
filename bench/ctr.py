"""KAR and LLM-KT on DCN and DeepFM (CTR on ml-100k) against the base model and two controls; writes
docs/results-ctr.md and docs/results-ctr.svg.

The LLM-KT paper's Table III claims that its hook helps context-aware models too and is competitive with KAR
(AUC, Base / KAR / LLM-KT). This bench runs that comparison on kt's protocol: each user's ratings in time
order split 70/10/20, label = rating >= 4 on every interaction of a part, early stopping on validation AUC,
the test part read once per final configuration. Arms, for each model:

- base: the model alone;
- llm-kt: LLM-KT's hook at the model's registered layer (the deep tower's last layer), reconstructing the
  shipped user profiles (all-MiniLM-L6-v2, PCA to 32 dims as the paper), then fine-tuned without it;
- kar: KAR's hybrid-expert adaptor on the user profiles and the item profiles (MiniLM, 384 dims), two
  extra feature fields;
- kar-random: the same adaptor fed random vectors for the same users and items, with each column's mean and
  spread (does any extra input help?);
- kar-no-llm: the same adaptor fed the no-LLM text of the same inputs, by the same encoder: each user's
  history lines (what the profile prompt showed) and each item's metadata line (what the item prompt showed).

Equal search budget: every arm tries three configurations on validation AUC with seed 1 (base, kar and
both controls: learning rate; llm-kt: alpha at the default learning rate), then trains the chosen one with
seeds 1-5. Reported per model: AUC, GAUC, LogLoss as mean ± std over seeds, change against base, a paired
bootstrap over users (each user's samples resampled together, every metric recomputed) and a Welch t-test
over seed means, Holm-adjusted over the three metrics (kt compare's rules); an A/A check (base seed 1 against
base seed 2); epoch time of each arm against base's from the same runs, and the adaptor's size.

Usage:
  python bench/ctr.py                          # everything (background it)
  python bench/ctr.py --models dcn --seeds 1   # a quick look; prints tables, writes no docs
Each search stage and the finals train side by side as tasks on a local Ray (one thread each); the store
(bench/ctr.duckdb) caches every finished run and evaluation: delete it to retrain. Time it with nothing else
running on the machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.llmkt import SHIPPED_HISTORY  # noqa: E402
from bench.plots import grouped_bars  # noqa: E402
from kt_cli.evaluation.compare import Comparison, compare_runs  # noqa: E402
from kt_cli.evaluation.evaluate import evaluate_run  # noqa: E402
from kt_cli.knowledge.encoders import MiniLM  # noqa: E402
from kt_cli.knowledge.sets import random_like, reduce_set, restrict_like  # noqa: E402
from kt_cli.knowledge.texts import embed_history, embed_item_metadata, embed_profiles  # noqa: E402
from kt_cli.profiles.generate import ProfileJob, generate_profiles  # noqa: E402
from kt_cli.profiles.models import DEFAULT_CHAT_MODEL  # noqa: E402
from kt_cli.profiles.prompts import load_template  # noqa: E402
from kt_cli.store import Store  # noqa: E402
from kt_cli.training.config import TrainConfig  # noqa: E402
from kt_cli.sweep import train_runs  # noqa: E402

DATASET = "ml-100k"
MODELS = ("dcn", "deepfm")
ARMS = ("base", "llm-kt", "kar", "kar-random", "kar-no-llm")
KAR_SETS = {"kar": ("user-llm", "item-llm"), "kar-random": ("user-random", "item-random"),
            "kar-no-llm": ("user-history", "item-metadata"),
            "kar-pca32": ("user-llm-pca32", "item-llm-pca32")}  # not an arm: its epoch cost only
WIDTH_EPOCHS = 3  # epochs of the two cost-only runs (base and KAR on 32-d knowledge, side by side)
LEARNING_RATES = (1e-3, 2e-3, 4e-3)  # RecBole's default is 1e-3; at (5e-4, 1e-3, 2e-3) every DCN arm chose 2e-3
ALPHAS = (0.1, 0.3, 0.5)  # the paper's grid without 0.8, at the default learning rate
# At 10 + 5 epochs with patience 2, every DCN run's best epoch was the first phase's last or next to last and
# the second phase still improved: the budget cut training short. A DCN epoch is ~3 s, so the cap costs little.
EPOCHS, FINETUNE, PATIENCE = 30, 10, 3
METRICS = ("auc", "gauc", "logloss")
PAPER = {  # LLM-KT's Table III, AUC: base / KAR / LLM-KT (ML-1M and Amazon CDs; not ml-100k)
    "dcn": {"ML-1M": (0.7753, 0.7755, 0.7889), "CDs": (0.8214, 0.8204, 0.8273)},
    "deepfm": {"ML-1M": (0.7934, 0.7983, 0.8175), "CDs": (0.8427, 0.8477, 0.8463)},
}


def prepare(store_path: Path) -> dict[str, int]:
    """Shipped profiles (offline), their embeddings, the PCA-32 user set, and both controls' sets."""
    encoder = MiniLM()
    coverage = {}
    with Store.open(store_path) as store:
        for entity in ("user", "item"):
            job = ProfileJob(DATASET, entity, load_template(entity, domain="movies"), DEFAULT_CHAT_MODEL, "local",
                             rules=SHIPPED_HISTORY)
            report = generate_profiles(store, job, lambda: None, cache_dir=ROOT / "profiles_cache", offline=True)
            made = embed_profiles(store, DATASET, report.set.name, encoder, name=f"{entity}-llm")
            coverage[entity] = made.set.n_vectors
            random_like(store, DATASET, f"{entity}-llm", name=f"{entity}-random")
        for entity in ("user", "item"):
            reduce_set(store, DATASET, f"{entity}-llm", method="pca", dim=32, name=f"{entity}-llm-pca32")
        embed_history(store, DATASET, encoder, SHIPPED_HISTORY, name="user-history-all")
        embed_item_metadata(store, DATASET, encoder, name="item-metadata-all")
        for entity, control in (("user", "user-history"), ("item", "item-metadata")):  # the LLM sets' coverage
            restrict_like(store, DATASET, f"{control}-all", f"{entity}-llm", name=control)
    return coverage


def config(model: str, arm: str, seed: int, choice: float, epochs: tuple[int, int] = (EPOCHS, FINETUNE),
           base_lr: float | None = None) -> TrainConfig:
    """An arm's configuration; ``choice`` is the searched value (learning rate, or LLM-KT's alpha, which runs at
    the learning rate base chose: the hook is the only difference from base)."""
    common = dict(dataset=DATASET, model=model, seed=seed, distill_epochs=epochs[0], finetune_epochs=epochs[1],
                  patience=PATIENCE)
    if arm == "llm-kt":
        return TrainConfig(**common, knowledge="user-llm-pca32", alpha=choice,
                           recbole={"learning_rate": base_lr} if base_lr is not None else {})
    recbole = {"learning_rate": choice}
    if arm == "base":
        return TrainConfig(**common, recbole=recbole)
    users, items = KAR_SETS[arm]
    return TrainConfig(**common, method="kar", user_knowledge=users, item_knowledge=items, recbole=recbole)


def grid(arm: str) -> tuple[float, ...]:
    return ALPHAS if arm == "llm-kt" else LEARNING_RATES


def _search(path: Path, model: str, arms: list[str], epochs: tuple[int, int], base_lr: float | None) -> dict:
    """Each arm's grid on validation (seed 1), every run side by side; the chosen value per arm."""
    names = {(arm, value): f"{model}-{arm}-tune-{value:g}" for arm in arms for value in grid(arm)}
    done = train_runs(path, {name: config(model, arm, 1, value, epochs, base_lr)
                             for (arm, value), name in names.items()}, threads=1)
    chosen = {}
    for arm in arms:
        scores = {value: done[names[(arm, value)]]["best_valid"] for value in grid(arm)}
        chosen[arm] = max(scores, key=scores.get)
        print(model, arm, "chose", chosen[arm], scores, flush=True)
    return chosen


def run_model(model: str, seeds: list[int], path: Path, epochs: tuple[int, int]) -> dict:
    """Search on validation (seed 1; LLM-KT's alpha at base's chosen learning rate), then the chosen
    configurations over the seeds side by side on Ray, evaluated on test."""
    chosen = _search(path, model, [a for a in ARMS if a != "llm-kt"], epochs, None)
    chosen |= _search(path, model, ["llm-kt"], epochs, chosen["base"])
    runs = {arm: [f"{model}-{arm}-s{seed}" for seed in seeds] for arm in ARMS}
    train_runs(path, {name: config(model, arm, seed, chosen[arm], epochs, chosen["base"])
                      for arm in ARMS for seed, name in zip(seeds, runs[arm])}, threads=1)
    for names in runs.values():
        for name in names:
            evaluate_run(path, name)
    with Store.open(path) as store:
        rows = {arm: [store.run(n) for n in names] for arm, names in runs.items()}
        comparison = compare_runs(store, [f"{model}-{arm}-s*" for arm in ARMS]) if len(seeds) > 1 else \
            compare_runs(store, [runs[arm][0] for arm in ARMS])
        aa = _aa(store, runs["base"]) if len(seeds) > 1 else None
        controls = compare_runs(store, [f"{model}-{arm}-s*" if len(seeds) > 1 else runs[arm][0]
                                        for arm in ("kar", "kar-random", "kar-no-llm")])
        mine = [r for r in store.runs() if r.name.startswith(f"{model}-") and "-width-" not in r.name]
        minutes = sum(r.summary.get("seconds", 0.0) for r in mine) / 60
        wall = (max(r.finished_at for r in mine) - min(r.created_at for r in mine)).total_seconds()
    first = {arm: "distill" if arm == "llm-kt" else "train" for arm in ARMS}  # LLM-KT's hook runs in its first phase
    epoch = {arm: float(np.mean([r.summary["seconds_per_epoch"][first[arm]] for r in rows[arm]])) for arm in ARMS}
    # What the adaptor's input width costs: KAR on both sets reduced to 32 dims beside base, same epochs, seed 1.
    pair = {"base": chosen["base"], "kar-pca32": chosen["kar"]}
    narrow = train_runs(path, {f"{model}-width-{arm}": config(model, arm, 1, lr, (WIDTH_EPOCHS, 0))
                               for arm, lr in pair.items()}, threads=1)
    base_epoch, kar_epoch = (narrow[f"{model}-width-{arm}"]["seconds_per_epoch"]["train"] for arm in pair)
    return {"chosen": chosen, "comparison": comparison, "controls": controls, "aa": aa, "minutes": minutes,
            "wall": wall,
            "epoch_ratio": {arm: epoch[arm] / epoch["base"] for arm in ARMS}, "epoch_seconds": epoch,
            "adaptor": rows["kar"][0].summary.get("adaptor_parameters"),
            "narrow": {"ratio": kar_epoch / base_epoch,
                       "adaptor": narrow[f"{model}-width-kar-pca32"].get("adaptor_parameters")},
            "coverage": rows["kar"][0].summary.get("coverage")}


def _aa(store: Store, base_runs: list[str]) -> float:
    """Base seed 1 against base seed 2 by the same bootstrap over users: how often 'significant' is noise."""
    return compare_runs(store, base_runs[:2]).rows["auc"][1].p_value


def _cell(comparison: Comparison, metric: str, column: int) -> str:
    cell = comparison.rows[metric][column]
    text = f"{cell.value:.4f}" + (f" ± {cell.std:.4f}" if cell.std is not None else "")
    if column == 0:
        return text
    seeds = f", seeds p={cell.p_seeds:.2g}" if cell.p_seeds is not None else ""
    return text + f" ({cell.delta_pct:+.2f}%{' *' if cell.significant else ''}; users p={cell.p_value:.2g}{seeds})"


def tables(results: dict[str, dict]) -> list[str]:
    lines = []
    for model, result in results.items():
        comparison = result["comparison"]
        lines += [f"### {model}", "", "| arm | chosen | " + " | ".join(m.upper() if m != "gauc" else "GAUC"
                                                                     for m in METRICS) + " | epoch time vs base |",
                  "|---|---|" + "---|" * (len(METRICS) + 1)]
        for column, arm in enumerate(ARMS):
            choice = result["chosen"][arm]
            chosen = f"alpha {choice:g}" if arm == "llm-kt" else f"lr {choice:g}"
            if choice in (grid(arm)[0], grid(arm)[-1]):
                chosen += " (grid edge)"  # the search might have gone further that way
            lines.append(f"| {arm} | {chosen} | " + " | ".join(_cell(comparison, m, column) for m in METRICS)
                         + f" | {result['epoch_ratio'][arm]:.2f}x ({result['epoch_seconds'][arm]:.2f} s) |")
        controls = result["controls"]
        lines += ["", "KAR against its controls (the same adaptor; reference: KAR with the LLM's knowledge):", "",
                  "| arm | " + " | ".join(m.upper() if m != "gauc" else "GAUC" for m in METRICS) + " |",
                  "|---|" + "---|" * len(METRICS)]
        lines += [f"| {arm} | " + " | ".join(_cell(controls, m, column) for m in METRICS) + " |"
                  for column, arm in enumerate(("kar", "kar-random", "kar-no-llm"))]
        lines += ["", f"{comparison.n_users} test users; {comparison.test}; `*` = adjusted p < 0.05 over users "
                  "and over seeds. Seed noise (base seed 1 against base seed 2, AUC, same test): p = "
                  + (f"{result['aa']:.2g}" if result["aa"] is not None else "n/a")
                  + f". KAR adaptor: {result['adaptor']:,} parameters. Training and validation: "
                  f"{result['minutes']:.0f} min. KAR on both knowledge sets reduced to 32 dims by PCA (cost only, not "
                  f"an arm: {WIDTH_EPOCHS} epochs beside a base run, seed 1): {result['narrow']['ratio']:.2f}x base's "
                  f"epoch, adaptor {result['narrow']['adaptor']:,} parameters.", ""]
    return lines


def svg(results: dict[str, dict]) -> str:
    """AUC by model and arm, mean ± std over seeds."""
    values = {model: {arm: (r["comparison"].rows["auc"][i].value, r["comparison"].rows["auc"][i].std)
                      for i, arm in enumerate(ARMS)} for model, r in results.items()}
    low = min(mean - (std or 0) for cells in values.values() for mean, std in cells.values()) - 0.01
    return grouped_bars(values, list(ARMS), f"Test AUC, mean ± std over seeds (axis from {low:.3f})", low=low, bar=30)


def verdicts(results: dict[str, dict]) -> list[str]:
    """The plain reading, derived from the numbers: which arms beat base, and the LLM against its controls."""
    lines = []
    for model, result in results.items():
        rows = result["comparison"].rows["auc"]
        better = [a for i, a in enumerate(ARMS) if i and rows[i].significant and rows[i].delta_pct > 0]
        worse = [a for i, a in enumerate(ARMS) if i and rows[i].significant and rows[i].delta_pct < 0]
        controls = result["controls"].rows["auc"]
        beaten = [arm for arm, cell in zip(("kar-random", "kar-no-llm"), controls[1:])
                  if cell.significant and cell.delta_pct < 0]
        lines.append(f"- **{model}**: arms with a significantly higher AUC than base (users and seeds): "
                     f"{', '.join(better) or 'none'}; significantly lower: {', '.join(worse) or 'none'}. "
                     f"KAR with the LLM's knowledge {controls[0].value:.4f}, random vectors {controls[1].value:.4f}, "
                     f"no-LLM text {controls[2].value:.4f}: the LLM's knowledge significantly beats "
                     f"{' and '.join(beaten) if beaten else 'neither control'}.")
    edges = [f"{model} {arm} ({'alpha' if arm == 'llm-kt' else 'lr'} {choice:g})" for model, result in results.items()
             for arm, choice in result["chosen"].items() if choice in (grid(arm)[0], grid(arm)[-1])]
    if edges:
        lines.append(f"- Choices at an edge of their grid (the search might have gone further that way): "
                     f"{', '.join(edges)}. Every arm had three configurations; an arm whose optimum lies outside its "
                     "grid is under-tuned by the same rule for all.")
    return lines


def against_paper(results: dict[str, dict]) -> list[str]:
    """The paper's AUC changes against base beside kt's, model by model, and the epoch-time target."""
    lines = []
    for model, result in results.items():
        rows = result["comparison"].rows["auc"]
        kt = {name: rows[ARMS.index(arm)] for arm, name in (("llm-kt", "LLM-KT"), ("kar", "KAR"))}
        paper = "; ".join(f"{data} LLM-KT {100 * (llmkt / base - 1):+.2f}%, KAR {100 * (kar / base - 1):+.2f}%"
                          for data, (base, kar, llmkt) in PAPER.get(model, {}).items())
        measured = ", ".join(f"{name} {cell.delta_pct:+.2f}% (users p={cell.p_value:.2g}, seeds p={cell.p_seeds:.2g})"
                             for name, cell in kt.items())
        ratios = {arm: result["epoch_ratio"][arm] for arm in ("llm-kt", "kar")}
        target = ", ".join(f"{'LLM-KT' if arm == 'llm-kt' else 'KAR'} {r:.2f}x ({'met' if r <= 1.15 else 'missed'})"
                           for arm, r in ratios.items())
        lines.append(f"- **{model}**: AUC against base, paper: {paper}. kt: {measured}. Epoch time against base "
                     f"(target 1.15x): {target}.")
    return lines


def write_report(results: dict[str, dict], coverage: dict[str, int], seeds: list[int], out: Path) -> None:
    paper = ["| model | dataset | base | KAR | LLM-KT | paper's pattern |", "|---|---|---|---|---|---|"]
    for model, sets in PAPER.items():
        for data, (base, kar, llmkt) in sets.items():
            pattern = f"LLM-KT {'>' if llmkt > base else '<='} base, KAR {'>' if kar > base else '<='} base"
            paper.append(f"| {model} | {data} | {base:.4f} | {kar:.4f} | {llmkt:.4f} | {pattern} |")
    lines = [
        "# Results: KAR and LLM-KT on CTR models (ml-100k), with controls", "",
        "Generated by `python bench/ctr.py` (training wall, first run's start to last run's end: "
        + ", ".join(f"{model} {r['wall'] / 60:.0f} min" for model, r in results.items())
        + "; 2 cores, the runs of each search stage and the finals side by side on a local Ray, one thread each); "
        "do not edit the tables by hand.", "",
        "Setting: ml-100k, each user's ratings in time order split 70/10/20 (kt's default), every interaction a "
        "sample labelled rating >= 4, features: user age, gender, occupation, zip prefix; item year and genres. "
        f"Up to {EPOCHS} epochs + {FINETUNE} fine-tune epochs (fresh optimizer), patience {PATIENCE}, early stopping "
        f"on validation AUC; search on validation with seed 1 (3 configurations per arm: learning rate "
        f"{LEARNING_RATES}, LLM-KT alpha {ALPHAS}); finals with seeds {seeds[0]}-{seeds[-1]}. "
        f"Knowledge: shipped leak-free profiles of {coverage['user']} of 943 users and {coverage['item']} of 1,682 "
        "items (Qwen2.5-Coder-1.5B), embedded by all-MiniLM-L6-v2 (384-d); LLM-KT reconstructs the user vectors "
        "reduced to 32 dims by PCA; entities without a profile are masked (LLM-KT) or get a learned default (KAR).",
        "", "![AUC by arm](results-ctr.svg)", "", "## Measured", "", *tables(results),
        "## What the paper claims (Table III, AUC) and what kt measured", "", *paper, "",
        "The paper's numbers are on ML-1M and Amazon CDs with its own features and splits; ml-100k's are not "
        "comparable in level, only in pattern.", "", *against_paper(results), "",
        "## Reading", "", *verdicts(results), "",
        "Epoch time target: KAR and LLM-KT at most 1.15x the base model's epoch (ratios above, same runs). Where KAR's "
        "cost comes from: its adaptor runs once per distinct user and item of a batch (about 1,600 for 2,048 "
        "samples on ml-100k), and its first layer multiplies each 384-d knowledge vector by a 384 x (8 x 128) "
        "matrix, forward and again for the weights' gradient: about as much arithmetic as DCN's whole batch. At "
        "32-d input that layer does 12 times less (the cost-only line under each model).", "",
    ]
    out.write_text("\n".join(lines))
    (out.parent / "results-ctr.svg").write_text(svg(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--store", type=Path, default=ROOT / "bench" / "ctr.duckdb")
    parser.add_argument("--epochs", default=f"{EPOCHS},{FINETUNE}", help="max epochs: first phase, fine-tune")
    args = parser.parse_args()
    models, seeds = args.models.split(","), list(range(1, args.seeds + 1))
    coverage = prepare(args.store)
    epochs = tuple(int(e) for e in args.epochs.split(","))
    results = {model: run_model(model, seeds, args.store, epochs) for model in models}
    print("\n".join(tables(results)))
    print("\n".join(verdicts(results)))
    if len(seeds) >= 5 and set(models) == set(MODELS) and epochs == (EPOCHS, FINETUNE):
        write_report(results, coverage, seeds, ROOT / "docs" / "results-ctr.md")
        print("wrote docs/results-ctr.md and docs/results-ctr.svg")


if __name__ == "__main__":
    main()
