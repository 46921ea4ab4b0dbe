"""``kt compare``: metrics of several runs (or groups of runs over seeds) side by side, with significance.

Every run is compared with the first one on the *same users*: runs on different datasets, splits or
evaluation settings are refused, because a difference there says nothing about the models. The per-user
test is chosen by the caller and named in the output:

- ``ttest``: paired t-test on per-user differences (scipy's ``ttest_rel``), two-sided;
- ``bootstrap``: 10,000 resamples of users; two-sided p from the share of resampled mean differences
  on either side of zero, and a 95% percentile interval of the difference.

A *group* is a glob pattern over run names (``'base-s*'``): the same configuration trained with several
seeds. Its value is the mean over seeds (± their standard deviation); the per-user test then compares each
user's metric averaged over the group's seeds, and a Welch t-test over the seed means sits beside it,
because the per-user test sees user noise but not training noise (docs/results.md's A/A check shows
what that misses).

Many metrics tested at once inflate false positives, so p-values are adjusted across the metric rows for
each compared run: Holm's step-down method by default (controls the family-wise error), ``bh``
(Benjamini-Hochberg, the false discovery rate) or ``none``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kt_cli.errors import MissingInputError, UsageError
from kt_cli.evaluation import ctr
from kt_cli.evaluation.settings import ITEM_SLICES, METRICS, EvalSettings
from kt_cli.store import RunRow, Store
from kt_cli.tasks import TASKS
from kt_cli.training.models import get_model_spec

TESTS = ("ttest", "bootstrap")
CORRECTIONS = ("holm", "bh", "none")
ALPHA = 0.05


@dataclass(frozen=True)
class Cell:
    """One run's (or group's) value of one metric, against the first."""

    value: float
    delta_pct: float | None = None
    p_value: float | None = None  # per-user test, adjusted for the number of metrics
    ci95: tuple[float, float] | None = None  # bootstrap interval of the per-user mean difference
    std: float | None = None  # over seeds, for a group
    p_seeds: float | None = None  # Welch t-test over seed means, adjusted like p_value (groups only)

    @property
    def significant(self) -> bool:
        """Below ALPHA on the per-user test and, for groups, on the test over seeds as well: a difference
        training noise could make is not starred."""
        tests = [p for p in (self.p_value, self.p_seeds) if p is not None]
        return bool(tests) and max(tests) < ALPHA


@dataclass(frozen=True)
class Comparison:
    runs: list[str]  # one label per column: a run name, or a group's pattern
    dataset: str
    split_id: str
    split: str  # the split's readable label, e.g. "time 0.7/0.1/0.2"
    settings: dict
    slice: str
    n_users: int
    test: str
    correction: str = "holm"
    members: dict[str, list[str]] = field(default_factory=dict)  # label -> the runs it averages
    rows: dict[str, list[Cell]] = field(default_factory=dict)  # "ndcg@10" -> one cell per column
    task: str = "ranking"

    @property
    def grouped(self) -> bool:
        return any(len(m) > 1 for m in self.members.values())


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


def adjust(p_values: list[float | None], method: str) -> list[float | None]:
    """Holm or Benjamini-Hochberg adjusted p-values (None entries are skipped), capped at 1."""
    if method not in CORRECTIONS:
        raise UsageError(f"--correct must be one of {', '.join(CORRECTIONS)}, not '{method}'.")
    present = [i for i, p in enumerate(p_values) if p is not None and not np.isnan(p)]
    if method == "none" or not present:
        return list(p_values)
    values = np.array([p_values[i] for i in present], dtype=float)
    m = len(values)
    order = np.argsort(values)
    ranked = values[order]
    if method == "holm":
        adjusted = np.maximum.accumulate((m - np.arange(m)) * ranked)
    else:
        adjusted = np.minimum.accumulate((m / np.arange(1, m + 1) * ranked)[::-1])[::-1]
    out = [None if p is not None and np.isnan(p) else p for p in p_values]
    for position, index in enumerate(order):
        out[present[index]] = float(min(adjusted[position], 1.0))
    return out


def _expand(store: Store, names: list[str]) -> list[tuple[str, list[RunRow]]]:
    """Each argument as a column: a run, or a glob pattern's matching runs (a group over seeds)."""
    columns: list[tuple[str, list[RunRow]]] = []
    known = store.run_names()
    for name in names:
        matched = store.match_runs(name) if any(c in name for c in "*?[") else [name]
        if not matched:
            raise MissingInputError(f"No run matches the pattern '{name}'. Runs: {', '.join(known) or 'none'}.",
                                    f"kt train ... --seeds 1-5 --name {name.removesuffix('*').removesuffix('-s')}")
        rows = []
        for run_name in matched:
            run = store.run(run_name)
            if run is None:
                raise MissingInputError(f"There is no run named '{run_name}'. Runs: {', '.join(known) or 'none'}.",
                                        f"kt train ... --name {run_name}")
            rows.append(run)
        _same_configuration(name, rows)
        columns.append((name, rows))
    return columns


def _same_configuration(label: str, runs: list[RunRow]) -> None:
    """A group is one configuration over seeds: runs that differ in anything else are refused, by name."""
    first = {k: v for k, v in runs[0].config.items() if k != "seed"}
    for run in runs[1:]:
        other = {k: v for k, v in run.config.items() if k != "seed"}
        differing = sorted(k for k in first.keys() | other.keys() if first.get(k) != other.get(k))
        if differing:
            raise UsageError(
                f"The group '{label}' mixes configurations: '{runs[0].name}' and '{run.name}' differ in "
                f"{', '.join(differing)}, not only in the seed. Use a pattern that matches one configuration's "
                "runs (e.g. NAME-s*, as kt train --seeds names them).")


def _evaluation(store: Store, run: RunRow, settings: EvalSettings) -> str:
    """The stored evaluation of ``run`` with these settings, or one with the same settings whose cut-offs
    include the asked ones (an evaluation at 5,10,20 holds k 10)."""
    task = get_model_spec(run.model).task
    key = settings.key(task)
    exact = store.evaluation_id(run.name, key)
    if exact is not None:
        return exact
    if task == "ctr":
        raise MissingInputError(f"Run '{run.name}' has no evaluation on its {settings.part} samples "
                                f"(sparse slice below {settings.sparse_below}).",
                                f"kt eval {run.name} --part {settings.part} --sparse-below {settings.sparse_below}")
    for eval_id, stored in store.evaluations(run.name):
        same = {k: v for k, v in stored.items() if k != "ks"} == {k: v for k, v in key.items() if k != "ks"}
        if same and set(key["ks"]) <= set(stored.get("ks", [])):
            return eval_id
    ks = ",".join(map(str, key["ks"]))
    raise MissingInputError(
        f"Run '{run.name}' has no {settings.part} evaluation with mode {settings.mode} covering k {ks}.",
        f"kt eval {run.name} --mode {settings.mode} --part {settings.part} --k {ks} "
        f"--sparse-below {settings.sparse_below} --seed {settings.seed}",
    )


def _user_table(store: Store, eval_id: str, ks: tuple[int, ...], max_train: int | None,
                item_slice: str = "all") -> pd.DataFrame:
    frame = store.eval_users(eval_id)
    frame = frame[frame["k"].isin(ks) & (frame["slice"] == item_slice)]
    if max_train is not None:
        frame = frame[frame["n_train"] < max_train]
    frame = frame.assign(label=frame["metric"] + "@" + frame["k"].astype(str))
    return frame.pivot(index="user_id", columns="label", values="value")


def compare_runs(
    store: Store, names: list[str], settings: EvalSettings = EvalSettings(), *, test: str | None = None,
    max_train: int | None = None, metrics: list[str] | None = None, correct: str = "holm", item_slice: str = "all",
) -> Comparison:
    """Compare runs (or groups of runs, by glob pattern) evaluated with ``settings``; ``max_train`` keeps
    only users with fewer training interactions (the sparse slice). ``test``: ranking runs take ttest (the
    default) or bootstrap; CTR runs are always tested by a bootstrap over users."""
    if test is not None and test not in TESTS:
        raise UsageError(f"--test must be one of {', '.join(TESTS)}, not '{test}'.")
    if correct not in CORRECTIONS:
        raise UsageError(f"--correct must be one of {', '.join(CORRECTIONS)}, not '{correct}'.")
    if len(names) < 1:
        raise UsageError("Name at least one run to compare (see kt runs).")
    columns = _expand(store, names)
    tasks = {get_model_spec(run.model).task: run.name for _, runs in columns for run in runs}
    if len(tasks) > 1:
        described = " and ".join(f"'{run}' is a {task} run" for task, run in tasks.items())
        raise UsageError(f"{described}: ranking metrics and CTR metrics (AUC, LogLoss) measure different things on "
                         "different samples, so these runs cannot be compared. Compare runs of one task.")
    task = next(iter(tasks))
    if task == "ctr" and (settings.mode != "full" or test == "ttest"):
        raise UsageError("CTR runs are compared on AUC, GAUC and LogLoss of their labelled samples, tested by a "
                         "paired bootstrap over users: " + ("--mode does not apply." if settings.mode != "full" else
                                                            "--test ttest does not apply (a user's AUC is not a mean "
                                                            "of independent values).") + " Drop the option.")
    test = test or "ttest"
    if item_slice != "all" and (not TASKS[task].item_slices or item_slice not in ITEM_SLICES):
        raise UsageError(f"--slice takes all or an item slice of ranking runs ({', '.join(ITEM_SLICES)}), not "
                         f"'{item_slice}'" + (f" ({task} runs have no item slices)." if not TASKS[task].item_slices
                                              else "."))
    valid = TASKS[task].metrics or METRICS
    unknown = sorted(set(metrics or []) - set(valid))
    if unknown:
        raise UsageError(f"Unknown metric(s) {', '.join(unknown)} for --metrics. Valid metrics for {task} runs: "
                         f"{', '.join(valid)}" + (" (the cut-offs come from --k)." if not TASKS[task].metrics else "."))
    for index, (label, runs) in enumerate(columns):  # identical columns are an A/A control; overlaps mislead
        members = {r.name for r in runs}
        for other_label, other_runs in columns[:index]:
            shared = members & {r.name for r in other_runs}
            if shared and members != {r.name for r in other_runs}:
                raise UsageError(
                    f"'{label}' and '{other_label}' share run(s) {', '.join(sorted(shared))}: part of one side "
                    "would be compared with itself. Give groups that do not overlap.")
    first = columns[0][1][0]
    for _, runs in columns:
        for run in runs:
            if (run.dataset, run.split_id) != (first.dataset, first.split_id):
                raise UsageError(
                    f"Runs '{first.name}' and '{run.name}' were trained on different data ({first.dataset} split "
                    f"{store.split_label(first.split_id)} vs {run.dataset} split {store.split_label(run.split_id)}); "
                    "their metrics cannot be compared user by user. Retrain with the same --dataset and --split "
                    "options.")
    if task == "ctr":
        return _compare_ctr(store, columns, settings, max_train, metrics, correct, first)
    tables = [[_user_table(store, _evaluation(store, run, settings), settings.ks, max_train, item_slice)
               for run in runs] for _, runs in columns]
    slice_name = item_slice if max_train is None else f"{item_slice}, n_train<{max_train}"
    users = None
    for group in tables:
        for table in group:
            users = table.index if users is None else users.intersection(table.index)
    if users is None or len(users) == 0:
        raise UsageError(f"No evaluated user falls in the slice {slice_name}; widen --max-train.")
    reference = tables[0][0]
    labels = [c for c in ordered_labels(reference.columns) if metrics is None or c.split("@")[0] in metrics]
    comparison = Comparison([label for label, _ in columns], first.dataset, first.split_id, store.split_label(first.split_id),
                            settings.to_dict(), slice_name,
                            len(users), test, correct, {label: [r.name for r in runs] for label, runs in columns},
                            task=task)
    raw: dict[str, list[Cell]] = {}
    for label in labels:
        # per group: each user's value averaged over its runs, and each run's mean (a seed mean)
        per_user = [np.mean([t.loc[users, label].to_numpy() for t in group], axis=0) for group in tables]
        seed_means = [[float(t.loc[users, label].mean()) for t in group] for group in tables]
        base, base_seeds = per_user[0], seed_means[0]
        cells = [Cell(float(base.mean()), std=_std(base_seeds))]
        for values, seeds in zip(per_user[1:], seed_means[1:]):
            p, ci = paired_test(base, values, test)
            delta = (values.mean() - base.mean()) / base.mean() * 100 if base.mean() else None
            cells.append(Cell(float(values.mean()), delta, p, ci, _std(seeds), _welch(base_seeds, seeds)))
        raw[label] = cells
    comparison.rows.update(_adjusted(raw, len(columns), correct))
    return comparison


def _adjusted(raw: dict[str, list[Cell]], n_columns: int, correct: str) -> dict[str, list[Cell]]:
    """Each compared column's p-values adjusted over its metric rows (the family)."""
    labels = list(raw)
    for column in range(1, n_columns):
        p_users = adjust([raw[label][column].p_value for label in labels], correct)
        p_seeds = adjust([raw[label][column].p_seeds for label in labels], correct)
        for label, p, ps in zip(labels, p_users, p_seeds):
            cell = raw[label][column]
            raw[label][column] = Cell(cell.value, cell.delta_pct, p, cell.ci95, cell.std, ps)
    return raw


def _compare_ctr(store: Store, columns: list[tuple[str, list[RunRow]]], settings: EvalSettings,
                 max_train: int | None, metrics: list[str] | None, correct: str, first: RunRow) -> Comparison:
    """CTR runs: AUC, GAUC and LogLoss from every stored sample score, tested by a paired bootstrap over users
    (each resample recomputes every metric for every run on the same users' samples)."""
    frames = [[(run, store.eval_samples(_evaluation(store, run, settings))) for run in runs] for _, runs in columns]
    reference = frames[0][0][1]
    keys = reference[["user_id", "item_id", "label"]].to_numpy()
    for group in frames:
        for run, frame in group:
            if frame.empty:
                raise MissingInputError(f"Run '{run.name}' has an evaluation without stored samples (made before kt "
                                        "stored them).", f"kt eval {run.name} --force")
            if len(frame) != len(keys) or not (frame[["user_id", "item_id", "label"]].to_numpy() == keys).all():
                raise UsageError(
                    f"Runs '{first.name}' and '{run.name}' were scored on different samples or labels (label "
                    f"thresholds {first.config.get('label_threshold')} and {run.config.get('label_threshold')}), "
                    "so they cannot be compared sample by sample. Train them with the same --label-threshold.")
    keep = np.ones(len(keys), dtype=bool)
    if max_train is not None:
        n_train = store.eval_users(_evaluation(store, first, settings)).drop_duplicates("user_id")
        sparse = set(n_train.loc[n_train["n_train"] < max_train, "user_id"])
        keep = reference["user_id"].isin(sparse).to_numpy()
        if not keep.any():
            raise UsageError(f"No evaluated user falls in the slice n_train<{max_train}; widen --max-train.")
    users, labels = reference["user_id"].to_numpy()[keep], reference["label"].to_numpy(np.float64)[keep]
    scored = [[f["score"].to_numpy(np.float64)[keep] for _, f in group] for group in frames]
    stats = [[ctr.UserStats.build(users, labels, s) for s in group] for group in scored]
    counts = ctr.user_counts(len(stats[0][0].users))
    points = [[ctr.point_values(labels, s, st) for s, st in zip(g, gs)] for g, gs in zip(scored, stats)]
    draws = [np.mean([list(ctr.resampled(labels, s, st, counts).values()) for s, st in zip(g, gs)], axis=0)
             for g, gs in zip(scored, stats)]  # [column] -> [metric, resample], averaged over the column's runs
    names = [m for m in ("auc", "gauc", "logloss") if metrics is None or m in metrics]
    raw: dict[str, list[Cell]] = {}
    for metric in names:
        row = ("auc", "gauc", "logloss").index(metric)
        runs_values = [[p[metric] for p in column] for column in points]
        base = float(np.mean(runs_values[0]))
        cells = [Cell(base, std=_std(runs_values[0]))]
        for values, draw in zip(runs_values[1:], draws[1:]):
            diff = draw[row] - draws[0][row]
            diff = diff[~np.isnan(diff)]
            if len(diff) == 0:  # e.g. GAUC when every user's samples are one class: nothing to test
                cells.append(Cell(float(np.mean(values)), None, None, None, _std(values), None))
                continue
            share = min((diff <= 0).mean(), (diff >= 0).mean())  # 0 when no resample crosses zero: p < 2 / resamples
            p = 1.0 if np.allclose(diff, 0) else float(min(1.0, max(2 * share, 2 / len(diff))))
            ci = (float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5)))
            value = float(np.mean(values))
            cells.append(Cell(value, (value - base) / base * 100 if base else None, p, ci, _std(values),
                              _welch(runs_values[0], values)))
        raw[metric] = cells
    return Comparison([label for label, _ in columns], first.dataset, first.split_id, store.split_label(first.split_id),
                      settings.to_dict(), "all" if max_train is None else f"n_train<{max_train}",
                      len(stats[0][0].users), f"bootstrap over users ({len(counts)} resamples)", correct,
                      {label: [r.name for r in runs] for label, runs in columns}, _adjusted(raw, len(columns), correct),
                      task="ctr")


def _std(seed_means: list[float]) -> float | None:
    return float(np.std(seed_means, ddof=1)) if len(seed_means) > 1 else None


def _welch(first: list[float], second: list[float]) -> float | None:
    """Welch's t-test over seed means; None unless both sides have two seeds or more."""
    if len(first) < 2 or len(second) < 2:
        return None
    from scipy.stats import ttest_ind

    p = float(ttest_ind(second, first, equal_var=False).pvalue)
    if np.isnan(p):  # no spread on either side: equal means are no difference, unequal ones undecidable
        return 1.0 if np.isclose(np.mean(first), np.mean(second)) else None
    return p


def ordered_labels(labels: pd.Index) -> list[str]:
    """Metric labels in a reading order: ndcg, recall, hit, mrr, precision, each by increasing k (CTR: auc and
    its interval, gauc, logloss)."""
    order = {"ndcg": 0, "recall": 1, "hit": 2, "mrr": 3, "precision": 4,
             "auc": 0, "auc_ci95_low": 1, "auc_ci95_high": 2, "gauc": 3, "logloss": 4, "users_one_class": 5}
    return sorted(labels, key=lambda s: (order.get(s.split("@")[0], 9), int(s.partition("@")[2] or 0)))
