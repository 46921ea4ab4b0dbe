"""The validation-only MultVAE ablation quoted in docs/results.md ("What was tried before the benchmark").

Trains MultVAE at RecBole's defaults (100 + 100 epochs, patience 10) on seeds 42 and 43: the baseline,
then alpha 0.5 with LLM, UMAP, random and history-text vectors (raw and --target-scale layer) and the
cosine loss, then alpha 0.99 and 0.999 with LLM and random vectors. Prints validation NDCG@10 only; the
test split is never read. Needs the sets bench/llmkt.py prepares (llm-pca, llm-umap, random-pca,
history-pca), so run that first (its prepare step is enough).

Usage: python bench/llmkt_ablation.py [--store bench/bench.duckdb]
The figures in docs/results.md were taken with 411 of 943 users profiled; with the complete set they differ.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kt_cli.training.config import TrainConfig  # noqa: E402
from kt_cli.training.trainer import train  # noqa: E402


def configs() -> list[tuple[str, dict]]:
    runs: list[tuple[str, dict]] = [("baseline", {})]
    for knowledge in ("llm-pca", "llm-umap", "random-pca", "history-pca"):
        for scale in ("none", "layer"):
            runs.append((f"{knowledge} {scale} a0.5", {"knowledge": knowledge, "target_scale": scale, "alpha": 0.5}))
    runs.append(("llm-pca cosine a0.5", {"knowledge": "llm-pca", "recon_loss": "cosine", "alpha": 0.5}))
    for alpha in (0.99, 0.999):
        for knowledge in ("llm-pca", "random-pca"):
            runs.append((f"{knowledge} layer a{alpha}", {"knowledge": knowledge, "target_scale": "layer", "alpha": alpha}))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=ROOT / "bench" / "bench.duckdb")
    args = parser.parse_args()
    store = args.store.with_name(f"{args.store.stem}-ablation.duckdb")  # its own copy: runs cached there
    if not store.exists():
        shutil.copyfile(args.store, store)
    for seed in (42, 43):
        for label, settings in configs():
            result = train(store, TrainConfig("ml-100k", "multvae", seed=seed, **settings),
                           f"ablation-{label.replace(' ', '-')}-s{seed}")
            print(f"seed {seed} | {label:28} | valid ndcg@10 {result.summary['best_valid']:.4f}", flush=True)


if __name__ == "__main__":
    main()
