"""What else could make LLM-KT work here? Validation-only variations around the benchmark's chosen configuration.

For each model, starting from what bench/llmkt.py chose on validation (its search runs are cached in
bench/bench-<model>.duckdb, so this reuses them), it trains on seeds 42 and 43:
the tuned baseline; the chosen LLM-KT configuration; and one change at a time: the cosine loss instead of
RMSE, a much larger reconstruction weight (alpha 0.95; MultVAE 0.999), twice the distillation epochs with
no fine-tuning phase (the knowledge is never trained away), and raw (unscaled) targets. Each variant also
runs with random vectors of the same width, so an effect of the LLM's knowledge shows as LLM above random,
not as a change against the baseline alone. The chosen configuration also runs with two more targets,
reduced the same way: the history text of the training ratings only (no leak, no LLM), and the user's
training interactions themselves (what the model already learns from): if even those do not help, the
reconstruction task is what fails, not the profiles. Only the validation split is read. Writes
docs/ablation.md.

Usage: python bench/llmkt_ablation.py [--models simplex,neumf,multvae] (after bench/llmkt.py has searched; its
runs side by side on a local Ray, 1 thread each)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llmkt import BUDGETS, DATASET, ROOT, Budget, _config, _fit, search, set_name  # noqa: E402
from vector_signal import train_matrix  # noqa: E402

from kt_cli.datasets.splits import SplitSpec, ensure_split  # noqa: E402
from kt_cli.knowledge.encoders import MiniLM  # noqa: E402
from kt_cli.knowledge.sets import import_vectors, reduce_set  # noqa: E402
from kt_cli.knowledge.texts import embed_history  # noqa: E402
from kt_cli.profiles.prompts import HistoryRules  # noqa: E402
from kt_cli.store import Store  # noqa: E402

SEEDS = (42, 43)


def variants(model: str, budget: Budget) -> dict[str, tuple[dict, dict]]:
    """Variant label -> (changes to the LLM-KT settings, changes to the TrainConfig)."""
    strong = 0.999 if model == "multvae" else 0.95
    return {
        "chosen": ({}, {}),
        "cosine loss": ({}, {"recon_loss": "cosine"}),
        f"alpha {strong:g}": ({"alpha": strong}, {}),
        "2x distill, no fine-tune": ({}, {"distill_epochs": 2 * budget.distill, "finetune_epochs": 0}),
        "raw targets": ({}, {"target_scale": "none"}),
    }


EXTRA_ARMS = ("history-train", "interactions")


def extra_sets(store_path: Path, kt: dict) -> None:
    """The leak-free history text and the users' training interaction rows, reduced like the LLM vectors."""
    with Store.open(store_path) as store:
        embed_history(store, DATASET, MiniLM(), HistoryRules(), name="history-train")
        user_ids, train, *_ = train_matrix(store.split_rows(ensure_split(store, DATASET, SplitSpec())))
        file = store_path.with_name(f"{store_path.stem}.interactions.npz")
        np.savez(file, ids=np.array(user_ids), embeddings=train[:, 1:])
        import_vectors(store, DATASET, file, "interactions")
        for parent in EXTRA_ARMS:
            reduce_set(store, DATASET, parent, method=kt["method"], dim=kt["width"],
                       name=set_name(parent, kt["method"], kt["width"]))


def run(model: str, store: Path, epochs: int | None) -> list[str]:
    """One model's table; every run of it trained side by side on Ray."""
    budget = BUDGETS[model] if epochs is None else replace(BUDGETS[model], distill=epochs, finetune=epochs)
    best = search(store, model, budget)
    base, kt = best["base"], best["kt"]
    extra_sets(store, kt)
    configs = {("baseline", seed): (f"{model}-ablation-baseline-s{seed}", _config(model, budget, seed, base))
               for seed in SEEDS}
    for label, (kt_change, config_change) in variants(model, budget).items():
        for arm in ("llm", "random") + (EXTRA_ARMS if label == "chosen" else ()):
            for seed in SEEDS:
                config = replace(_config(model, budget, seed, base, {**kt, **kt_change}, arm), **config_change)
                name = f"{model}-ablation-{arm}-{label.replace(' ', '_').replace(',', '')}-s{seed}"
                configs[(f"{label} | {arm}", seed)] = (name, config)
    done = _fit(store, dict(configs.values()))
    scores: dict[str, list[float]] = {}
    for (key, _), (name, _) in configs.items():
        scores.setdefault(key, []).append(done[name]["best_valid"])
    chosen = f"{kt['method']} to {kt['width']}, alpha {kt['alpha']:g}, {kt['layer']}"
    lines = [f"**{model}** (chosen: {chosen}; baseline lr {base['lr']:g}, dropout {base['dropout']:g}, weight "
             f"decay {base['weight_decay']:g}; {budget.distill} + {budget.finetune} epochs)", "",
             "| variant | LLM vectors: seed 42 | seed 43 | mean | random vectors: mean | LLM - random |",
             "|---|---|---|---|---|---|",
             f"| baseline (no hook) | {scores['baseline'][0]:.4f} | {scores['baseline'][1]:.4f} | "
             f"{np.mean(scores['baseline']):.4f} | | |"]
    for label in variants(model, budget):
        llm, rnd = scores[f"{label} | llm"], scores[f"{label} | random"]
        lines.append(f"| {label} | {llm[0]:.4f} | {llm[1]:.4f} | {np.mean(llm):.4f} | {np.mean(rnd):.4f} | "
                     f"{np.mean(llm) - np.mean(rnd):+.4f} |")
    lines += ["", "The chosen configuration with other targets (mean of seeds 42 and 43): " + "; ".join(
        f"{arm} vectors {np.mean(scores[f'chosen | {arm}']):.4f}" for arm in EXTRA_ARMS) + ".", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="simplex,neumf,multvae")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ablation.md")
    parser.add_argument("--store", type=Path, default=ROOT / "bench" / "bench.duckdb", help="bench/llmkt.py's store")
    parser.add_argument("--epochs", type=int, help="override the epochs per phase (smoke runs, with the same "
                        "--epochs and --store as a smoke run of bench/llmkt.py)")
    args = parser.parse_args()
    lines = ["# LLM-KT variations on validation", "",
             "Generated by `python bench/llmkt_ablation.py` (its docstring says what it varies). Validation "
             "NDCG@10 (the test split is not read), seeds 42 and 43, two seeds only: differences below about "
             "0.005 are within the seed-to-seed spread of these models (docs/results.md, per-seed table).", ""]
    for model in args.models.split(","):
        lines += run(model, args.store, args.epochs)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
