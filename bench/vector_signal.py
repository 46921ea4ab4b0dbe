"""How much of a user's taste do the knowledge vectors carry on their own? A user-kNN probe, validation only.

LLM-KT can only help if the profile vectors say something about what a user will watch next that the
interactions do not already say. This probe recommends to each user the training items of the 50 users
whose vectors are most similar (cosine), weighted by that similarity, and scores the ranking on the
validation split with kt's own metrics (full ranking, seen items masked; the test split is never read).
The same probe on the users' interaction rows is the collaborative reference, popularity the floor.
Compared: the LLM profile vectors and the no-LLM history-text vectors (raw 384-d MiniLM, and reduced as
the benchmark trains on them), random vectors, and the history text built from the training part of the
split only (``history-train``, made here). It also counts how many of the lines the shipped profiles' prompts
showed are validation or test items: the shipped profiles were written from every rating.

Usage: python bench/vector_signal.py [--store bench/bench.duckdb] [--neighbours 50]
Needs the sets bench/llmkt.py prepares (its prepare step is enough). Writes docs/vector_signal.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kt_cli.datasets.splits import SplitSpec, ensure_split  # noqa: E402
from kt_cli.evaluation.ranking import build_truth, evaluate_users  # noqa: E402
from kt_cli.knowledge.encoders import MiniLM  # noqa: E402
from kt_cli.knowledge.texts import embed_history  # noqa: E402
from kt_cli.profiles.prompts import HistoryRules, histories, shown_items  # noqa: E402
from kt_cli.store import Store  # noqa: E402

DATASET = "ml-100k"
SETS = ("llm", "history", "history-train", "llm-pca64", "history-pca64", "llm-umap64", "history-umap64",
        "random-pca64")


class FixedScores(torch.nn.Module):
    """A score matrix posing as a RecBole model, so kt's ranking metrics score it unchanged."""

    def __init__(self, scores: np.ndarray) -> None:
        super().__init__()
        self.scores = torch.nn.Parameter(torch.from_numpy(scores.astype(np.float32)), requires_grad=False)

    def full_sort_predict(self, interaction: dict) -> torch.Tensor:
        return self.scores[interaction["user"]]


def knn_scores(vectors: np.ndarray, train: np.ndarray, neighbours: int) -> np.ndarray:
    """Item scores from the ``neighbours`` most cosine-similar users' training rows (never the user's own)."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    top = np.argpartition(-similarity, neighbours, axis=1)[:, :neighbours]
    weights = np.zeros_like(similarity)
    rows = np.arange(len(vectors))[:, None]
    weights[rows, top] = np.maximum(similarity[rows, top], 0.0)
    return weights @ train


def train_matrix(rows) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """User ids (row order), the users' training rows over the items (column 0 is padding, as in RecBole),
    and the split's rows as (user index, item index, part) arrays."""
    user_ids = sorted(rows["user_id"].unique())
    item_ids = sorted(rows["item_id"].unique())
    user_index = {u: i for i, u in enumerate(user_ids)}
    item_index = {t: i + 1 for i, t in enumerate(item_ids)}
    users = rows["user_id"].map(user_index).to_numpy()
    items = rows["item_id"].map(item_index).to_numpy()
    parts = rows["part"].to_numpy()
    train = np.zeros((len(user_ids), len(item_ids) + 1), dtype=np.float32)
    train[users[parts == 0], items[parts == 0]] = 1.0
    return user_ids, train, users, items, parts


def leak_share(store: Store, rows) -> float:
    """Share of the lines shown by whole-history prompts (the shipped profiles') that are validation or
    test items of the split."""
    part = dict(zip(zip(rows["user_id"], rows["item_id"]), rows["part"]))
    items = store.item_fields(DATASET)
    shown = held_out = 0
    for user, history in histories(store.interactions(DATASET)).items():
        liked, disliked = shown_items(history, items, HistoryRules(split=None))
        for item, _ in liked + disliked:
            shown += 1
            held_out += part[(user, item)] > 0
    return held_out / shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=ROOT / "bench" / "bench.duckdb")
    parser.add_argument("--neighbours", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "vector_signal.md")
    args = parser.parse_args()
    with Store.open(args.store) as store:
        rows = store.split_rows(ensure_split(store, DATASET, SplitSpec()))
        embed_history(store, DATASET, MiniLM(), HistoryRules(), name="history-train")  # cached after the first run
        vector_sets = {name: store.knowledge_vectors(DATASET, name) for name in SETS}
        leaked = leak_share(store, rows)
    user_ids, train, users, items, parts = train_matrix(rows)
    user_index = {u: i for i, u in enumerate(user_ids)}
    truth = build_truth(users, items, parts, 1)

    def score(matrix: np.ndarray) -> dict[str, float]:
        values = evaluate_users(FixedScores(matrix), truth, n_items=train.shape[1], uid="user", iid="item",
                                make_interaction=lambda d: d, ks=[10])
        return {m: float(values[(m, 10)].mean()) for m in ("ndcg", "recall", "hit")}

    results = {"popularity (no personalisation)": score(np.tile(train.sum(0), (len(user_ids), 1))),
               "interactions (collaborative reference)": score(knn_scores(train, train, args.neighbours))}
    for name, (ids, vectors) in vector_sets.items():
        aligned = np.zeros((len(user_ids), vectors.shape[1]), dtype=np.float32)
        for external, vector in zip(ids, vectors):
            if external in user_index:
                aligned[user_index[external]] = vector
        results[f"{name} ({vectors.shape[1]}-d)"] = score(knn_scores(aligned, train, args.neighbours))
    lines = ["# What the knowledge vectors know: a user-kNN probe on validation", "",
             f"Generated by `python bench/vector_signal.py` (its docstring says how). Each user is recommended the "
             f"training items of the {args.neighbours} users with the most similar vectors; validation split, full "
             "ranking, K = 10, all users (the test split is not read).", "",
             f"The shipped profiles' prompts showed each user's most recent ratings from every split: {leaked:.1%} "
             "of the lines they showed are validation or test items (the split holds 30% of ratings there). "
             "`history` is the text of those same lines; `history-train` the same rule on the training part only.",
             "",
             "| neighbours found by | NDCG@10 | Recall@10 | Hit@10 |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['ndcg']:.4f} | {r['recall']:.4f} | {r['hit']:.4f} |" for name, r in results.items()]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
