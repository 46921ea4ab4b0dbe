"""Are MiniLM's vectors reproducible? The figures bench/results_notes.md quotes for why the knowledge arms of
bench/llmkt.py move between machines while the baselines do not.

Embeds the first 128 shipped user profiles with 1 and 2 torch threads, again, and the first two alone (a batch of
one instead of 128), and prints whether each pair is bit-identical and the largest difference.

Usage: python bench/embed_determinism.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kt_cli.knowledge.encoders import MiniLM  # noqa: E402

PROFILES = ROOT / "profiles_cache" / "ml-100k.user.qwen2.5-coder-1.5b.jsonl"


def main() -> None:
    texts = [json.loads(line)["text"] for line in PROFILES.read_text().splitlines()[1:129]]
    runs = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        runs[f"{threads} thread(s)"] = MiniLM().encode(texts)
    runs["again"] = MiniLM().encode(texts)
    runs["alone"] = np.vstack([MiniLM().encode(texts[:1]), MiniLM().encode(texts[1:2])])
    for left, right, rows in (("1 thread(s)", "2 thread(s)", 128), ("2 thread(s)", "again", 128),
                              ("2 thread(s)", "alone", 2)):
        a, b = runs[left][:rows], runs[right][:rows]
        print(f"{left} vs {right}: identical {np.array_equal(a, b)}, largest difference {np.abs(a - b).max():.3g}")


if __name__ == "__main__":
    main()
