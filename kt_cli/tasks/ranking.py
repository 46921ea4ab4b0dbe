"""The ranking task: each user's held-out items ranked among all items (or RecBole-style samples).

Validation is kt's own full ranking on the validation part (``--valid-metric``, e.g. ``ndcg@10``); the
evaluation stores every user's NDCG, Hit, Recall, MRR and Precision at each K (evaluation/ranking.py), for all
held-out items and for item slices: ``cold`` (items with no training interaction: new items, as the
``cold-items`` split makes), ``warm`` (the others) and ``tail`` (items with fewer than ``TAIL_BELOW`` training
interactions, cold ones excluded). A slice ranks each user's held-out items of the slice among all items,
the user's other held-out items masked out; users with no held-out item in the slice are not in it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kt_cli.datasets.splits import export_for_recbole
from kt_cli.evaluation.settings import ITEM_SLICES, PARTS, TAIL_BELOW, EvalSettings, parse_metric
from kt_cli.store import Store
from kt_cli.evaluation.ranking import slice_truth
from kt_cli.tasks.base import EvalTables, Task, aggregate


class Ranking(Task):
    key = "ranking"

    def prepare(self, store: Store, config, sid: str) -> tuple[Path, dict[str, Any], dict[str, Any]]:
        """The split as RecBole benchmark files of (user, item) pairs; RecBole's defaults do the rest."""
        return export_for_recbole(store, sid), {}, {}

    def validator(self, session, valid_metric: str) -> Callable[[], float]:
        metric, k = parse_metric(valid_metric)
        truth = session.truth(1)
        return lambda: float(session.evaluate(truth, [k])[(metric, k)].mean())

    def evaluate(self, session, settings: EvalSettings) -> EvalTables:
        truth = session.truth(PARTS[settings.part])
        counts = session.n_train()
        items = session.item_train_counts()
        keep = {"cold": items == 0, "warm": items > 0, ITEM_SLICES[2]: (items > 0) & (items < TAIL_BELOW)}
        frames, rows = [], []
        for name, subset in [("all", truth)] + [(s, slice_truth(truth, keep[s])) for s in ITEM_SLICES]:
            if len(subset.users) == 0:
                continue
            values = session.evaluate(subset, settings.ks, mode=settings.mode, seed=settings.seed)
            n_train = np.array([counts.get(int(u), 0) for u in subset.users])
            frames += [pd.DataFrame({"user_id": session.parts.external_ids("user")[subset.users], "n_train": n_train,
                                     "metric": metric, "k": k, "value": v, "slice": name})
                       for (metric, k), v in values.items()]
            if name == "all":  # all users, and the sparse-user slice
                sparse = n_train < settings.sparse_below
                rows += [row for (metric, k), v in values.items()
                         for row in aggregate(metric, k, lambda mask, v=v: float(v[mask].mean()), sparse, settings)]
            else:
                rows += [{"slice": name, "metric": metric, "k": k, "value": float(v.mean()), "n_users": len(v)}
                         for (metric, k), v in values.items()]
        return EvalTables(pd.concat(frames, ignore_index=True), pd.DataFrame(rows), None)
