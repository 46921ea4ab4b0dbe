"""``kt recommend``: the top-K unseen items of a trained ranking run for some users, with their recent history.

Users are checked against the dataset before any model loads; the run's session is rebuilt as for
evaluation (same split, same id mapping, final weights) and asked through kt_cli.retrieval (faiss over item
vectors where the model has them, its own scores of every item otherwise). Times are measured after the
model is loaded: ``load_seconds`` for rebuilding the run, ``seconds_per_query`` for the search itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kt_cli.datasets.fields import TITLE_FIELDS, first_field, year
from kt_cli.errors import UsageError
from kt_cli.evaluation.evaluate import finished_run, trained_session
from kt_cli.evaluation.ranking import score_items
from kt_cli.retrieval import INDEXES, item_vectors, search
from kt_cli.store import Store
from kt_cli.training.recbole_adapter import interaction

PART_NAMES = {0: "train", 1: "valid", 2: "test"}


@dataclass(frozen=True)
class UserRecommendation:
    user_id: str
    items: list[dict] = field(default_factory=list)  # rank, item_id, title, score
    history: list[dict] = field(default_factory=list)  # the user's most recent interactions, newest first


@dataclass(frozen=True)
class Recommendations:
    run: str
    k: int
    index: str
    load_seconds: float
    seconds_per_query: float
    recall_vs_exact: float | None
    users: list[UserRecommendation]


def _title(fields: dict[str, str]) -> str:
    title, when = first_field(fields, TITLE_FIELDS) or "untitled", year(fields)
    return title + (f" ({when})" if when and when not in title else "")


def recommend(store_path: Path, run: str, users: list[str], k: int = 10, *, index: str = "exact",
              history: int = 5, threads: int = 1) -> Recommendations:
    """Top-``k`` unseen items of run ``run`` for each of ``users`` (external ids), best first."""
    if k < 1:
        raise UsageError(f"-k must be at least 1 (the number of items to recommend), not {k}.")
    if history < 0:
        raise UsageError(f"--history must be 0 or more, not {history}.")
    if index not in INDEXES:
        raise UsageError(f"--index must be one of {', '.join(INDEXES)}, not '{index}'.")
    if not users:
        raise UsageError("Name at least one user: --user ID (repeatable) or --users-file FILE.")
    with Store.open(store_path, create=False) as store:
        row, config = finished_run(store, run, "recommend from")
        if config.task_spec.key != "ranking":
            what = ("it scores given (user, item) samples" if config.task_spec.key == "ctr" else
                    "it ranks the next item of history samples, which kt recommend does not build yet")
            raise UsageError(f"Run '{run}' is a {config.task_spec.key} run ({config.model}): {what}. kt recommend "
                             "takes a ranking run (see kt runs; e.g. kt train --model bpr).")
        inter = store.interactions(config.dataset)
        known = set(inter["user_id"])
        unknown = [u for u in users if u not in known]
        if unknown:
            sample = ", ".join(sorted(known, key=lambda u: (len(u), u))[:5])
            raise UsageError(f"Unknown user '{unknown[0]}' ({len(unknown)} of the {len(users)} asked are unknown): "
                             f"dataset {config.dataset} of run '{run}' has {len(known):,} users, with ids like {sample}.")
        items = store.item_fields(config.dataset)
    started = time.perf_counter()
    torch.set_num_threads(threads)
    session = trained_session(store_path, run)
    parts = session.parts
    internal = parts.internal_ids("user", users)
    rows = session.inputs.split_rows
    item_internal = parts.internal_ids("item", rows["item_id"].tolist())
    user_internal = parts.internal_ids("user", rows["user_id"].tolist())
    order = np.argsort(user_internal, kind="stable")  # each user's items by one sort, not a scan per user
    bounds = np.searchsorted(user_internal[order], [internal, internal + 1])
    seen = [item_internal[order[a:b]] for a, b in zip(*bounds)]
    load_seconds = time.perf_counter() - started

    def score_all(batch: np.ndarray) -> np.ndarray:  # 256 users at a time, as evaluation does
        with torch.no_grad():
            return np.concatenate([score_items(session.model, torch.from_numpy(batch[i:i + 256]).to(parts.device),
                                               parts.num("item"), parts.user_field, parts.item_field,
                                               interaction).cpu().numpy() for i in range(0, len(batch), 256)])

    found = search(internal, seen, k, vectors=item_vectors(session.model, session.spec.vectors),
                   score_all=score_all, kind=index)
    external_items = parts.external_ids("item")
    part_of = dict(zip(zip(rows["user_id"], rows["item_id"]), rows["part"]))
    asked = inter[inter["user_id"].isin(set(users))].sort_values(["timestamp", "item_id"], ascending=[False, True])
    recent_of = {user: frame.head(history) for user, frame in asked.groupby("user_id", sort=False)}
    answers = []
    for user, picks, scores in zip(users, found.items, found.scores):
        recent = recent_of[user]
        answers.append(UserRecommendation(
            user,
            [{"rank": rank + 1, "item_id": str(external_items[i]), "title": _title(items.get(str(external_items[i]), {})),
              "score": float(s)} for rank, (i, s) in enumerate(zip(picks, scores)) if i >= 0],
            [{"item_id": r.item_id, "title": _title(items.get(r.item_id, {})), "rating": float(r.rating),
              "timestamp": int(r.timestamp), "part": PART_NAMES.get(part_of.get((user, r.item_id)), "-")}
             for r in recent.itertuples()],
        ))
    return Recommendations(run, k, found.index, load_seconds, found.seconds_per_query, found.recall_vs_exact, answers)
