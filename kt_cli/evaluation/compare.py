"""``kt compare``: metrics of several runs side by side, with paired significance tests over users.

Every run is compared with the first one on the *same users*: runs on different datasets, splits or
evaluation settings are refused, because a difference there says nothing about the models. The test
is chosen by the caller and named in the output:

- ``ttest``: paired t-test on per-user differences (scipy's ``ttest_rel``), two-sided;
- ``bootstrap``: 10,000 resamples of users; two-sided p from the share of resampled mean differences
  on either side of zero, and a 95% percentile interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kt_cli.errors import MissingInputError, UsageError
from kt_cli.evaluation.settings import EvalSettings
from kt_cli.store import Store

TESTS = ("ttest", "bootstrap")
ALPHA = 0.05


@dataclass(frozen=True)
class Cell:
    """One run's value of one metric, against the first run."""

    value: float
    delta_pct: float | None = None
    p_value: float | None = None
    ci95: tuple[float, float] | None = None

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA


@dataclass(frozen=True)
class Comparison:
    runs: list[str]
    dataset: str
    split_id: str
    settings: dict
    slice: str
    n_users: int
    test: str
    rows: dict[str, list[Cell]] = field(default_factory=dict)  # "ndcg@10" -> one cell per run


def paired_test(base: np.ndarray, other: np.ndarray, test: str, seed: int = 0) -> tuple[float, tuple[float, float] | None]:
    """Two-sided p-value of mean(other - base) != 0, and a bootstrap 95% interval when bootstrapping."""
    diff = other - base
    if np.allclose(diff, 0):
        return 1.0, (0.0, 0.0) if test == "bootstrap" else None
    if test == "ttest":
        from scipy.stats import ttest_rel

        return float(ttest_rel(other, base).pvalue), None
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(10_000, len(diff)))].mean(axis=1)
    p = 2 * min((means <= 0).mean(), (means >= 0).mean())
    return float(min(p, 1.0)), (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def compare_runs(
    store: Store, names: list[str], settings: EvalSettings = EvalSettings(), *, test: str = "ttest",
    max_train: int | None = None, metrics: list[str] | None = None,
) -> Comparison:
    """Compare runs evaluated with ``settings``; ``max_train`` keeps only users with fewer training
    interactions (the sparse slice)."""
    if test not in TESTS:
        raise UsageError(f"--test must be one of {', '.join(TESTS)}, not '{test}'.")
    if len(names) < 1:
        raise UsageError("Name at least one run to compare (see kt runs).")
    runs = []
    for name in names:
        run = store.run(name)
        if run is None:
            raise MissingInputError(f"There is no run named '{name}'. Runs: {', '.join(store.run_names()) or 'none'}.",
                                    f"kt train ... --name {name}")
        runs.append(run)
    key = settings.to_dict()
    eval_ids = []
    first = runs[0]
    for run in runs:
        if (run.dataset, run.split_id) != (first.dataset, first.split_id):
            raise UsageError(
                f"Runs '{first.name}' and '{run.name}' were trained on different data "
                f"({first.dataset} split {first.split_id} vs {run.dataset} split {run.split_id}); "
                "their metrics cannot be compared user by user. Retrain with the same --dataset and --split."
            )
        eval_id = store.evaluation_id(run.name, key)
        if eval_id is None:
            raise MissingInputError(
                f"Run '{run.name}' has no {settings.part} evaluation with mode {settings.mode} and "
                f"k {','.join(map(str, key['ks']))}.",
                f"kt eval {run.name} --mode {settings.mode} --part {settings.part} "
                f"--k {','.join(map(str, key['ks']))} --sparse-below {settings.sparse_below} --seed {settings.seed}",
            )
        eval_ids.append(eval_id)
    frames = [store.eval_users(eval_id) for eval_id in eval_ids]
    slice_name = "all" if max_train is None else f"n_train<{max_train}"
    tables = []
    for frame in frames:
        if max_train is not None:
            frame = frame[frame["n_train"] < max_train]
        frame = frame.assign(label=frame["metric"] + "@" + frame["k"].astype(str))
        tables.append(frame.pivot(index="user_id", columns="label", values="value"))
    users = tables[0].index
    for table in tables[1:]:
        users = users.intersection(table.index)
    if len(users) == 0:
        raise UsageError(f"No evaluated user falls in the slice {slice_name}; widen --max-train.")
    labels = [c for c in _ordered(tables[0].columns) if metrics is None or c.split("@")[0] in metrics]
    comparison = Comparison(names, first.dataset, first.split_id, key, slice_name, len(users), test)
    for label in labels:
        base = tables[0].loc[users, label].to_numpy()
        cells = [Cell(float(base.mean()))]
        for table in tables[1:]:
            values = table.loc[users, label].to_numpy()
            p, ci = paired_test(base, values, test)
            delta = (values.mean() - base.mean()) / base.mean() * 100 if base.mean() else None
            cells.append(Cell(float(values.mean()), delta, p, ci))
        comparison.rows[label] = cells
    return comparison


def _ordered(labels: pd.Index) -> list[str]:
    order = {"ndcg": 0, "recall": 1, "hit": 2, "mrr": 3, "precision": 4}
    return sorted(labels, key=lambda s: (order.get(s.split("@")[0], 9), int(s.split("@")[1])))
