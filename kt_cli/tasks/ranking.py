"""The ranking task: each user's held-out items ranked among all items (or RecBole-style samples).

Validation is kt's own full ranking on the validation part (``--valid-metric``, e.g. ``ndcg@10``); the
evaluation stores every user's NDCG, Hit, Recall, MRR and Precision at each K (evaluation/ranking.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kt_cli.datasets.splits import export_for_recbole
from kt_cli.evaluation.settings import PARTS, EvalSettings, parse_metric
from kt_cli.store import Store
from kt_cli.tasks.base import EvalTables, aggregate


class Ranking:
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
        values = session.evaluate(truth, settings.ks, mode=settings.mode, seed=settings.seed)
        external = session.parts.external_ids("user")[truth.users]
        counts = session.n_train()
        n_train = np.array([counts.get(int(u), 0) for u in truth.users])
        per_user = pd.concat([
            pd.DataFrame({"user_id": external, "n_train": n_train, "metric": metric, "k": k, "value": v})
            for (metric, k), v in values.items()
        ], ignore_index=True)
        sparse = n_train < settings.sparse_below
        rows = [row for (metric, k), v in values.items()
                for row in aggregate(metric, k, lambda mask, v=v: float(v[mask].mean()), sparse, settings)]
        return EvalTables(per_user, pd.DataFrame(rows), None)
