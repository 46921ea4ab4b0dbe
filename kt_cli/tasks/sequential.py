"""The sequential task: predict each held-out interaction from the user's items before it (next-item prediction).

The samples are kt's export (datasets/sequences.py); RecBole's own validation and test dataloaders read them
and kt scores every sample against all items with the model's ``full_sort_predict``, exactly as RecBole's
evaluator does for sequential models: the padding item is masked, the user's history is *not* (RecBole masks
nothing else for sequential models, so kt's numbers equal its evaluator's on the same weights; a test checks
it). Each sample has one target, so Recall@K equals Hit@K. A user's value is the mean over her samples (one
per user with ``--split loo``; RecBole averages samples, which is the same there), so the tests over users in
``kt compare`` apply unchanged. Item slices (cold, warm, tail) keep the samples whose target is in the slice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from kt_cli.datasets.sequences import export_sequences, recbole_settings
from kt_cli.errors import UsageError
from kt_cli.evaluation.ranking import rank_metrics
from kt_cli.evaluation.settings import ITEM_SLICES, PARTS, TAIL_BELOW, EvalSettings, parse_metric
from kt_cli.store import Store
from kt_cli.tasks.base import EvalTables, Task, aggregate
from kt_cli.training.models import get_model_spec

DEFAULT_HISTORY = 50  # RecBole's MAX_ITEM_LIST_LENGTH default


class Sequential(Task):
    key = "sequential"

    def rows(self, hidden: torch.Tensor, batch, parts) -> torch.Tensor:
        """A per-position tensor [samples, positions, width] read at each sample's last item (the position whose
        output predicts the target, as SASRec's ``gather_indexes``); LLM-KT reconstructs the user's vector there."""
        if hidden.dim() != 3:
            return hidden
        last = (batch[parts.config["ITEM_LIST_LENGTH_FIELD"]] - 1).clamp_min(0)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]

    def prepare(self, store: Store, config, sid: str) -> tuple[Path, dict[str, Any], dict[str, Any]]:
        """Next-item samples of the split (time order), and the RecBole settings that read them."""
        if config.split_spec.order == "random":
            raise UsageError("The sequential task predicts each interaction from the ones before it, so it needs a "
                             "time-ordered split: drop --split-order random (the default is time), or use --split loo.")
        known = get_model_spec(config.model).settings
        history = int(config.recbole.get("MAX_ITEM_LIST_LENGTH", known.get("MAX_ITEM_LIST_LENGTH", DEFAULT_HISTORY)))
        root, data = export_sequences(store, sid, history)
        return root, recbole_settings(history, str(config.recbole.get("loss_type", "CE"))), data

    def score(self, session, part: int, ks: list[int]) -> tuple[np.ndarray, np.ndarray, dict[tuple[str, int], np.ndarray]]:
        """Internal user ids, target items and per-sample metrics of a part's samples (RecBole's loader)."""
        loader = session.parts.eval_data[part - 1]
        iid = session.parts.item_field
        users, targets, values = [], [], []
        was_training = session.model.training
        session.train_mode(False)
        try:
            with torch.no_grad():
                for interaction, *_ in loader:
                    interaction = interaction.to(session.parts.device)
                    scores = session.model.full_sort_predict(interaction).reshape(len(interaction), -1).float().cpu()
                    scores[:, 0] = -torch.inf  # RecBole's padding item, as its evaluator
                    target = interaction[iid].cpu()
                    positives = torch.zeros_like(scores, dtype=torch.bool)
                    positives[torch.arange(len(target)), target] = True
                    values.append(rank_metrics(scores, positives, ks))
                    users.append(interaction[session.parts.user_field].cpu().numpy())
                    targets.append(target.numpy())
        finally:
            session.train_mode(was_training)
        metrics = {key: np.concatenate([v[key].numpy() for v in values]) for key in values[0]}
        return np.concatenate(users), np.concatenate(targets), metrics

    def validator(self, session, valid_metric: str) -> Callable[[], float]:
        metric, k = parse_metric(valid_metric)

        def validate() -> float:
            users, _, metrics = self.score(session, 1, [k])
            return float(_per_user(users, metrics[(metric, k)])[1].mean())
        return validate

    def evaluate(self, session, settings: EvalSettings) -> EvalTables:
        users, targets, metrics = self.score(session, PARTS[settings.part], list(settings.ks))
        counts = session.n_train()
        items = session.item_train_counts()
        keep = {"all": np.ones(len(targets), dtype=bool), "cold": items[targets] == 0, "warm": items[targets] > 0,
                ITEM_SLICES[2]: (items[targets] > 0) & (items[targets] < TAIL_BELOW)}
        external = session.parts.external_ids("user")
        frames, rows = [], []
        for name in ("all",) + ITEM_SLICES:
            mask = keep[name]
            if not mask.any():
                continue
            for (metric, k), value in metrics.items():
                ids, per_user = _per_user(users[mask], value[mask])
                n_train = np.array([counts.get(int(u), 0) for u in ids])
                frames.append(pd.DataFrame({"user_id": external[ids], "n_train": n_train, "metric": metric, "k": k,
                                            "value": per_user, "slice": name}))
                if name == "all":
                    rows += aggregate(metric, k, lambda m, v=per_user: float(v[m].mean()),
                                      n_train < settings.sparse_below, settings)
                else:
                    rows.append({"slice": name, "metric": metric, "k": k, "value": float(per_user.mean()),
                                 "n_users": len(ids)})
        return EvalTables(pd.concat(frames, ignore_index=True), pd.DataFrame(rows), None)


def _per_user(users: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each user's mean over her samples, users in id order."""
    ids, inverse = np.unique(users, return_inverse=True)
    return ids, np.bincount(inverse, weights=values) / np.bincount(inverse)
