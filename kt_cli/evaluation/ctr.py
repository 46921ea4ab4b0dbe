"""CTR metrics computed by kt: AUC, LogLoss, GAUC, per user, and paired bootstraps over users.

- **AUC** over all samples is the Mann-Whitney statistic with ties counted one half, which is the area
  under the ROC curve RecBole's ``AUC`` computes (a test checks the two agree on the same scores).
- **LogLoss** is RecBole's: predictions clipped to [1e-15, 1 - 1e-15], mean over samples.
- **GAUC** is each user's AUC weighted by the user's number of samples; users whose samples are all of
  one class have no AUC, are left out and counted.

Significance: a user's samples are not independent, so tests resample *users* (with replacement), every
metric recomputed on the resampled users' samples; runs compared on the same resample are paired.
Resampling is expressed as weights (a user drawn twice counts twice), so many resamples are computed at
once from one sort of the scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-15
RESAMPLES = 1000


def _groups(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order that sorts scores ascending, and the start of each run of equal scores in that order."""
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return order, starts


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC under sample weights ``weights`` of shape [resamples, samples]; ties count one half.

    AUC = sum over (positive, negative) pairs of w_p w_n ([s_p > s_n] + 0.5 [s_p = s_n]) / (W_pos W_neg).
    """
    order, starts = _groups(scores)
    positive = labels[order] > 0.5
    w = weights[:, order]
    pos = np.add.reduceat(np.where(positive, w, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(positive, 0.0, w), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each score group
    num = (pos * (below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(weighted_auc(labels, scores, np.ones((1, len(labels))))[0])


def sample_logloss(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    p = np.clip(scores.astype(np.float64), EPS, 1 - EPS)
    return -(labels * np.log(p) + (1 - labels) * np.log(1 - p))


@dataclass(frozen=True)
class UserStats:
    """Per-user sums over one run's samples, aligned to ``users`` (sorted external or internal ids)."""

    users: np.ndarray
    index: np.ndarray  # each sample's position in ``users``
    n: np.ndarray  # samples per user
    auc: np.ndarray  # per-user AUC, NaN for users with one class
    logloss: np.ndarray  # summed sample logloss per user

    @classmethod
    def build(cls, users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> UserStats:
        ids, index = np.unique(users, return_inverse=True)
        n = np.bincount(index, minlength=len(ids)).astype(float)
        losses = np.bincount(index, weights=sample_logloss(labels, scores), minlength=len(ids))
        per_user = np.full(len(ids), np.nan)
        order = np.argsort(index, kind="stable")
        bounds = np.r_[0, np.cumsum(n).astype(int)]
        for u in range(len(ids)):
            rows = order[bounds[u]:bounds[u + 1]]
            y = labels[rows]
            if 0 < y.sum() < len(y):
                per_user[u] = auc(y, scores[rows])
        return cls(ids, index, n, per_user, losses)

    @property
    def one_class(self) -> int:
        return int(np.isnan(self.auc).sum())

    def gauc(self, counts: np.ndarray | None = None) -> np.ndarray | float:
        """Sample-weighted mean of per-user AUC; ``counts`` [resamples, users] weights users (bootstrap)."""
        has = ~np.isnan(self.auc)
        values = np.where(has, self.auc, 0.0) * self.n
        weights = np.where(has, self.n, 0.0)
        if counts is None:
            return float(values.sum() / weights.sum()) if weights.sum() else float("nan")
        return (counts @ values) / (counts @ weights)

    def mean_logloss(self, counts: np.ndarray | None = None) -> np.ndarray | float:
        if counts is None:
            return float(self.logloss.sum() / self.n.sum())
        return (counts @ self.logloss) / (counts @ self.n)


def user_counts(n_users: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """How often each user is drawn in each of ``resamples`` bootstrap resamples of the users."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=resamples).astype(np.float64)


def resampled(labels: np.ndarray, scores: np.ndarray, stats: UserStats, counts: np.ndarray) -> dict[str, np.ndarray]:
    """AUC, GAUC and LogLoss of one run on each bootstrap resample of users (rows of ``counts``)."""
    values = {"auc": np.concatenate([weighted_auc(labels, scores, counts[i:i + 100][:, stats.index])
                                     for i in range(0, len(counts), 100)])}
    values["gauc"] = stats.gauc(counts)
    values["logloss"] = stats.mean_logloss(counts)
    return values


def point_values(labels: np.ndarray, scores: np.ndarray, stats: UserStats) -> dict[str, float]:
    return {"auc": auc(labels, scores), "gauc": stats.gauc(), "logloss": stats.mean_logloss()}
