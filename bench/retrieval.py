"""kt recommend's retrieval: faiss exact against IVF and HNSW on a synthetic catalogue; writes docs/retrieval.md.

The item and query vectors are synthetic (no dataset has a million items here): items drawn from a mixture
of Gaussian clusters in 64 dims (the width of kt's models), queries from the same mixture, so an inner-product
search has structure an approximate index can exploit, as trained embeddings do. For each index kind,
built by ``kt_cli.retrieval.build_index`` exactly as ``kt recommend`` builds it: build time, search latency
per query (a batch of queries, one thread, and one query at a time), and recall@100 against the exact
answer for the same queries.

Then ``kt recommend`` itself on ml-100k, as a user runs it (a new process each time): BPR (exact faiss over its
ID embeddings, and HNSW), NeuMF (no item vectors: every item scored) and LEARN (faiss over its towers' vectors),
each trained for a few epochs in a store of its own (latency does not depend on the weights' values); for one
user and for all 943 (``--users-file``): the process's wall time, and inside it the time to rebuild the run and
the search per user that the command reports (its ``--json``). Median of three.

Usage: python bench/retrieval.py [--items 1000000] [--queries 1000]   (time it with nothing else running)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kt_cli.retrieval import INDEXES, build_index, recall_at  # noqa: E402


def synthetic(items: int, queries: int, dim: int = 64, clusters: int = 1000, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)

    def draw(n: int) -> np.ndarray:
        return (centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, dim))).astype(np.float32)

    return draw(items), draw(queries)


def measure(vectors: np.ndarray, queries: np.ndarray, k: int) -> list[dict]:
    import faiss

    faiss.omp_set_num_threads(1)
    rows, truth = [], None
    for kind in INDEXES:
        started = time.perf_counter()
        index = build_index(vectors, kind)
        built = time.perf_counter() - started
        started = time.perf_counter()
        _, found = index.search(queries, k)
        batch = (time.perf_counter() - started) / len(queries)
        started = time.perf_counter()
        for q in queries[:100]:
            index.search(q[None, :], k)
        single = (time.perf_counter() - started) / 100
        truth = found if kind == "exact" else truth
        rows.append({"index": kind, "build_s": built, "batch_ms": batch * 1000, "single_ms": single * 1000,
                     "recall": recall_at(found, truth)})
    return rows


RECOMMEND = {"bpr": ("exact", "hnsw"), "neumf": ("exact",), "learn": ("exact",)}  # NeuMF: no vectors, scores all


def recommend_latency(store_path: Path, repeats: int = 3) -> list[dict]:
    """``kt recommend`` in a new process per call, for one user and for every user, on short ml-100k runs."""
    from kt_cli.knowledge.encoders import MiniLM
    from kt_cli.knowledge.texts import embed_item_metadata
    from kt_cli.store import Store
    from kt_cli.sweep import train_runs
    from kt_cli.training.config import TrainConfig

    with Store.open(store_path) as store:
        embed_item_metadata(store, "ml-100k", MiniLM(), name="items-minilm")  # LEARN's item vectors
        users = sorted(set(store.interactions("ml-100k")["user_id"]), key=lambda u: (len(u), u))
    train_runs(store_path, {f"latency-{model}": TrainConfig(
        dataset="ml-100k", model=model, distill_epochs=2, finetune_epochs=0 if model != "learn" else 1,
        item_knowledge="items-minilm" if model == "learn" else None) for model in RECOMMEND}, threads=1)
    users_file = store_path.with_suffix(".users")
    users_file.write_text("\n".join(users) + "\n")
    kt = str(Path(sys.executable).with_name("kt"))
    rows = []
    for model, indexes in RECOMMEND.items():
        for index in indexes:
            for who, asked in (("1 user", ["--user", "196"]), (f"{len(users)} users", ["--users-file", str(users_file)])):
                walls, answers = [], []
                for _ in range(repeats):
                    started = time.perf_counter()
                    out = subprocess.run([kt, "recommend", f"latency-{model}", *asked, "-k", "10", "--index", index,
                                          "--json", "--store", str(store_path)], check=True, capture_output=True,
                                         text=True).stdout
                    walls.append(time.perf_counter() - started)
                    answers.append(json.loads(out))
                rows.append({"model": model, "index": index, "users": who, "wall_s": statistics.median(walls),
                             "load_s": statistics.median(a["load_seconds"] for a in answers),
                             "query_ms": statistics.median(a["seconds_per_query"] for a in answers) * 1000})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "retrieval.md")
    parser.add_argument("--store", type=Path, help="store for the kt recommend runs (default: a temporary one)")
    args = parser.parse_args()
    vectors, queries = synthetic(args.items, args.queries)
    rows = measure(vectors, queries, args.k)
    del vectors, queries
    with tempfile.TemporaryDirectory() as scratch:
        latency = recommend_latency(args.store or Path(scratch) / "recommend.duckdb")
    lines = [
        "# Retrieval: faiss exact, IVF and HNSW (kt recommend's indexes)", "",
        f"Generated by `python bench/retrieval.py --items {args.items} --queries {args.queries}`; one thread. "
        f"Synthetic catalogue: {args.items:,} items and {args.queries:,} queries, 64 dims, a mixture of 1,000 "
        f"Gaussian clusters; recall@{args.k} of each index's answer against the exact one on the same queries.", "",
        "| index | build (s) | search per query, batched (ms) | search, one query at a time (ms) | "
        f"recall@{args.k} |", "|---|---|---|---|---|",
        *[f"| {r['index']} | {r['build_s']:.1f} | {r['batch_ms']:.3f} | {r['single_ms']:.3f} | {r['recall']:.3f} |"
          for r in rows], "",
        "## kt recommend on ml-100k", "",
        "A new `kt recommend RUN ... -k 10 --json` process per call (median of three); *wall* includes Python's "
        "start-up and imports, *rebuild* is the command's own time to load the run (store, RecBole dataset, weights), "
        "*search* its time per user (faiss, or scoring every item where the model has no item vectors).", "",
        "| model | index | users | wall (s) | rebuild (s) | search per user (ms) |", "|---|---|---|---|---|---|",
        *[f"| {r['model']} | {r['index']} | {r['users']} | {r['wall_s']:.2f} | {r['load_s']:.2f} | "
          f"{r['query_ms']:.3f} |" for r in latency], "",
    ]
    print("\n".join(lines))
    args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
