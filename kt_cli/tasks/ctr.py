"""The CTR task: every interaction of the split is a labelled sample (rating >= threshold), scored by
AUC, LogLoss and GAUC (evaluation/ctr.py).

RecBole reads the labelled export (datasets/features.py) with the user and item features; it is asked for
``labeled`` evaluation only and never computes a metric: kt scores RecBole's own validation and test
samples with the model's ``predict`` (a sigmoid probability) and computes every metric itself, so each
user's values and every sample's score can be stored for the tests over users in ``kt compare``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from kt_cli.datasets.features import LABEL, export_ctr, load_columns
from kt_cli.evaluation import ctr as metrics
from kt_cli.evaluation.settings import PARTS, EvalSettings
from kt_cli.store import Store
from kt_cli.tasks.base import EvalTables, Task, aggregate
from kt_cli.training.config import KNOWLEDGE_ENTITY

BATCH = 8192


class Ctr(Task):
    key = "ctr"

    def prepare(self, store: Store, config, sid: str) -> tuple[Path, dict[str, Any], dict[str, Any]]:
        """Labelled files with side features (plus KAR's slot fields), and the RecBole settings that read them."""
        slots = tuple(KNOWLEDGE_ENTITY[o] for o in config.knowledge_sets()) if config.method_spec.feature_slots else ()
        root, data = export_ctr(store, sid, config.dataset, config.label_threshold, slots)
        recbole = {"load_col": load_columns(data), "LABEL_FIELD": LABEL, "threshold": None,
                   "train_neg_sample_args": None, "eval_args": {"group_by": "user", "order": "RO", "mode": "labeled"},
                   "metrics": ["AUC", "LogLoss"], "valid_metric": "AUC"}
        return root, recbole, data

    def score(self, session, part: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Internal user ids, internal item ids, labels and predicted probabilities of a part's samples."""
        dataset = session.parts.eval_data[part - 1].dataset
        samples = dataset.inter_feat
        was_training = session.model.training
        session.train_mode(False)
        scores = []
        try:
            with torch.no_grad():
                for start in range(0, len(samples), BATCH):
                    batch = dataset.join(samples[start:start + BATCH]).to(session.parts.device)
                    scores.append(session.model.predict(batch).float().cpu().numpy())
        finally:
            session.train_mode(was_training)
        return (samples[session.parts.user_field].numpy(), samples[session.parts.item_field].numpy(),
                samples[LABEL].numpy().astype(np.float64), np.concatenate(scores).astype(np.float64))

    def validator(self, session, valid_metric: str) -> Callable[[], float]:
        def validate() -> float:
            users, _, labels, scores = self.score(session, 1)
            if valid_metric == "auc":
                return metrics.auc(labels, scores)
            return metrics.point_values(labels, scores, metrics.UserStats.build(users, labels, scores))[valid_metric]
        return validate

    def evaluate(self, session, settings: EvalSettings) -> EvalTables:
        users, items, labels, scores = self.score(session, PARTS[settings.part])
        stats = metrics.UserStats.build(users, labels, scores)
        external_users = session.parts.external_ids("user")
        counts = session.n_train()
        n_train = np.array([counts.get(int(u), 0) for u in stats.users])
        ids = external_users[stats.users]
        per_user = pd.concat([
            pd.DataFrame({"user_id": ids, "n_train": n_train, "metric": "auc", "k": 0, "value": stats.auc}).dropna(),
            pd.DataFrame({"user_id": ids, "n_train": n_train, "metric": "logloss", "k": 0,
                          "value": stats.logloss / stats.n}),
        ], ignore_index=True)
        sparse = n_train < settings.sparse_below
        rows = []
        for metric in ("auc", "gauc", "logloss"):
            rows += aggregate(metric, 0, lambda mask, m=metric: _subset(users, labels, scores, stats, mask)[m],
                              sparse, settings)
        low, high = self.auc_interval(labels, scores, stats)
        rows += [{"slice": "all", "metric": "auc_ci95_low", "k": 0, "value": low, "n_users": len(stats.users)},
                 {"slice": "all", "metric": "auc_ci95_high", "k": 0, "value": high, "n_users": len(stats.users)},
                 {"slice": "all", "metric": "users_one_class", "k": 0, "value": float(stats.one_class),
                  "n_users": len(stats.users)}]
        samples = pd.DataFrame({"user_id": external_users[users],
                                "item_id": session.parts.external_ids("item")[items],
                                "label": labels.astype(np.float32), "score": scores})
        return EvalTables(per_user, pd.DataFrame(rows), samples)

    @staticmethod
    def auc_interval(labels: np.ndarray, scores: np.ndarray, stats: metrics.UserStats) -> tuple[float, float]:
        """95% percentile interval of the global AUC over bootstrap resamples of users."""
        draws = metrics.resampled(labels, scores, stats, metrics.user_counts(len(stats.users)))["auc"]
        return float(np.nanpercentile(draws, 2.5)), float(np.nanpercentile(draws, 97.5))


def _subset(users, labels, scores, stats: metrics.UserStats, mask: np.ndarray) -> dict[str, float]:
    """The metrics over the samples of the users selected by ``mask`` (over ``stats.users``)."""
    if mask.all():  # every user: the statistics already built
        return metrics.point_values(labels, scores, stats)
    keep = mask[stats.index]
    sub = metrics.UserStats.build(users[keep], labels[keep], scores[keep])
    return metrics.point_values(labels[keep], scores[keep], sub)
