"""The registry of tasks: what a run predicts, how it is validated and evaluated.

A task owns the labels, the use of the split, the metrics and the evaluator; a model serves one task
(training/models.py: RecBole's general models rank, its context-aware models score CTR samples). The entry
here is light (no torch): the CLI checks ``--valid-metric`` against it before anything heavy loads; the
behaviour lives in one module per task, imported when a run is built.

- ``ranking``: top-K over all items for each user (NDCG, Hit, Recall, MRR, Precision at K; full or sampled).
- ``ctr``: every interaction of the split is a labelled sample (rating >= threshold); AUC, LogLoss, GAUC.
- ``sequential``: each held-out interaction predicted from the user's earlier items (SASRec, GRU4Rec); the
  ranking metrics per sample, averaged per user.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from kt_cli.errors import NotFoundError, UsageError
from kt_cli.evaluation.settings import parse_metric


@dataclass(frozen=True)
class TaskSpec:
    key: str
    summary: str
    default_valid_metric: str
    implementation: str  # "module:Class"
    metrics: tuple[str, ...] = ()  # valid metrics without a cut-off (CTR); ranking metrics take @K
    lower_is_better: tuple[str, ...] = ()
    item_slices: bool = True  # evaluations hold the cold/warm/tail item slices (kt compare --slice)
    sampled_modes: bool = True  # --mode uni100/pop100 applies (ranking only)

    def parse_valid_metric(self, text: str) -> str:
        """The validation metric, normalised; an invalid one is a usage error listing the valid ones."""
        text = text.strip().lower()
        if not self.metrics:
            metric, k = parse_metric(text)
            return f"{metric}@{k}"
        if text not in self.metrics:
            raise UsageError(f"--valid-metric for the {self.key} task must be one of {', '.join(self.metrics)}, "
                             f"not '{text}'.")
        return text

    def load(self):
        module, _, name = self.implementation.partition(":")
        return getattr(importlib.import_module(module), name)()


TASKS: dict[str, TaskSpec] = {
    spec.key: spec
    for spec in (
        TaskSpec("ranking", "top-K ranking of all items per user", "ndcg@10", "kt_cli.tasks.ranking:Ranking"),
        TaskSpec("ctr", "click-through prediction on labelled interactions", "auc", "kt_cli.tasks.ctr:Ctr",
                 metrics=("auc", "gauc", "logloss"), lower_is_better=("logloss",), item_slices=False,
                 sampled_modes=False),
        TaskSpec("sequential", "next-item prediction from the user's earlier items", "ndcg@10",
                 "kt_cli.tasks.sequential:Sequential", sampled_modes=False),
    )
}


def get_task(key: str) -> TaskSpec:
    if key not in TASKS:
        raise NotFoundError("task", key, TASKS)
    return TASKS[key]
