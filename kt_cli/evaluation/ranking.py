"""Top-K ranking metrics per user, computed by kt rather than RecBole's evaluator.

RecBole only reports averages; significance tests need each user's value, so kt scores users itself
(through the model's ``full_sort_predict``, or ``predict`` over every item for models like NeuMF that
have none), masks what the user already saw, and computes NDCG, Hit, Recall, MRR and Precision at
each K for each user. Validation during training and ``kt eval`` share this code.

Sampled modes (``uniN``/``popN``) follow RecBole 1.2's definition exactly (docs/architecture.md,
"Sampled evaluation"): for a user with ``n`` held-out items, ``N * n`` negatives are drawn *with
replacement*, uniformly over all items (``uni``) or in proportion to each item's number of interactions in
the whole split, all three parts (``pop``); a draw that hits an item the user interacted with up to the
evaluated part is redrawn; duplicates count once. So a user is ranked among her
held-out items plus *at most* ``N * n`` distinct negatives. "Interacted with up to the evaluated part" is
RecBole's phase rule: validation excludes training and validation items, so a user's test items can be
drawn as validation negatives; the test excludes all three parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from kt_cli.evaluation.settings import METRICS, parse_mode


@dataclass(frozen=True)
class Truth:
    """Per-user item sets over RecBole's internal ids: what to find and what to hide."""

    users: np.ndarray  # internal user ids to evaluate (each has >= 1 positive)
    positives: list[np.ndarray]  # held-out items per user
    exclude: list[np.ndarray]  # already-seen items per user (masked from the ranking)
    used: list[np.ndarray]  # items of the user's parts up to the evaluated one (never drawn as negatives)


# Pairs per ``predict`` call for models without ``full_sort_predict`` (NeuMF): the activations of one call are
# bounded whatever the catalogue (256 users x 50k items at once would be 12.8M pairs); 16x RecBole's 4,096.
MAX_PAIRS = 1 << 16


def score_items(model: torch.nn.Module, users: torch.Tensor, n_items: int, uid: str, iid: str,
                make_interaction) -> torch.Tensor:
    """[users, items] scores: ``full_sort_predict``, or ``predict`` over blocks of items for models without it."""
    try:
        return model.full_sort_predict(make_interaction({uid: users})).reshape(len(users), n_items).float()
    except NotImplementedError:
        pass
    block = max(1, MAX_PAIRS // len(users))
    scores = torch.empty((len(users), n_items), device=users.device)
    for start in range(0, n_items, block):
        items = torch.arange(start, min(start + block, n_items), device=users.device)
        pairs = {uid: users.repeat_interleave(len(items)), iid: items.repeat(len(users))}
        scores[:, start:start + len(items)] = model.predict(make_interaction(pairs)).reshape(len(users), len(items))
    return scores


def _mask(rows: Sequence[np.ndarray], n_items: int) -> torch.Tensor:
    mask = torch.zeros((len(rows), n_items), dtype=torch.bool)
    for i, items in enumerate(rows):
        mask[i, torch.from_numpy(items)] = True
    return mask


def evaluate_users(
    model: torch.nn.Module,
    truth: Truth,
    *,
    n_items: int,
    uid: str,
    iid: str,
    make_interaction,
    ks: Sequence[int],
    mode: str = "full",
    popularity: np.ndarray | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[tuple[str, int], np.ndarray]:
    """Per-user metric values: ``{(metric, k): array over truth.users}``."""
    kind, per_positive = parse_mode(mode)
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    out = {(m, k): np.zeros(len(truth.users)) for m in METRICS for k in ks}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(truth.users), batch_size):
                stop = min(start + batch_size, len(truth.users))
                users = torch.from_numpy(truth.users[start:stop]).to(device)
                scores = score_items(model, users, n_items, uid, iid, make_interaction).cpu()
                scores[:, 0] = -torch.inf  # RecBole's padding item
                positives = _mask(truth.positives[start:stop], n_items)
                if kind == "full":
                    scores[_mask(truth.exclude[start:stop], n_items)] = -torch.inf
                else:
                    candidates = positives | _sample_negatives(
                        truth, start, stop, per_positive, kind, n_items, popularity, rng)
                    scores[~candidates] = -torch.inf
                for key, value in rank_metrics(scores, positives, ks).items():
                    out[key][start:stop] = value.numpy()
    finally:
        model.train(was_training)
    return out


def rank_metrics(scores: torch.Tensor, positives: torch.Tensor, ks: Sequence[int]) -> dict[tuple[str, int], torch.Tensor]:
    """Each row's NDCG, Hit, Recall, MRR and Precision at each K, from its scores over all items (masked ones at
    -inf) and its held-out items (``positives``, a bool mask); the top K by ``torch.topk``, as RecBole ranks."""
    max_k = max(ks)
    discounts = 1.0 / torch.log2(torch.arange(2, max_k + 2, dtype=torch.float64))
    top = torch.topk(scores, min(max_k, scores.shape[1]), dim=1).indices
    hits = torch.gather(positives, 1, top).double()
    n_pos = positives.sum(1).double()
    out = {}
    for k in ks:
        h = hits[:, :k]
        found = h.sum(1)
        idcg = torch.cumsum(discounts, 0)[(torch.clamp(n_pos, max=k) - 1).long()]
        first = torch.where(h.any(1), h.argmax(1).double() + 1, torch.inf)
        values = {"hit": (found > 0).double(), "recall": found / n_pos, "precision": found / k,
                  "ndcg": (h * discounts[: h.shape[1]]).sum(1) / idcg, "mrr": 1.0 / first}
        out.update({(metric, k): value for metric, value in values.items()})
    return out


def _sample_negatives(truth: Truth, start: int, stop: int, per_positive: int, kind: str,
                      n_items: int, popularity: np.ndarray | None, rng: np.random.Generator) -> torch.Tensor:
    """RecBole's sampled candidates for users ``start:stop``: ``per_positive`` draws per held-out item,
    with replacement, redrawn while they hit a used item; returned as a [users, items] mask."""
    rows = stop - start
    used = _mask(truth.used[start:stop], n_items).numpy()
    used[:, 0] = True  # the padding item is never a candidate
    if kind == "pop":
        if popularity is None:
            raise ValueError("pop sampling needs the items' interaction counts")
        weights = popularity.astype(float)
        weights[0] = 0.0
    else:
        weights = np.ones(n_items)
        weights[0] = 0.0
    # A user with no drawable item left would make the redraw loop endless (RecBole's would): none drawn.
    drawable = (~used * (weights > 0)).any(axis=1)
    counts = np.array([per_positive * len(truth.positives[i]) for i in range(start, stop)]) * drawable
    owner = np.repeat(np.arange(rows), counts)
    cdf = np.cumsum(weights)

    def draw(size: int) -> np.ndarray:
        if kind == "uni":
            return rng.integers(1, n_items, size=size)
        return np.minimum(np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right"), n_items - 1)

    items = draw(len(owner))
    redo = np.flatnonzero(used[owner, items])
    while len(redo):
        items[redo] = draw(len(redo))
        redo = redo[used[owner[redo], items[redo]]]
    mask = torch.zeros((rows, n_items), dtype=torch.bool)
    mask[torch.from_numpy(owner), torch.from_numpy(items)] = True
    return mask


def slice_truth(truth: Truth, keep: np.ndarray) -> Truth:
    """``truth`` for the held-out items ``keep`` marks (a bool mask over internal item ids): users with at least
    one such item, ranked for those only; their other held-out items are masked out of the ranking (neither a
    target nor a negative), as they would be if the slice were all the user had."""
    users, positives, exclude, used = [], [], [], []
    for user, pos, excluded, seen in zip(truth.users, truth.positives, truth.exclude, truth.used):
        inside = keep[pos]
        if inside.any():
            users.append(user)
            positives.append(pos[inside])
            exclude.append(np.concatenate([excluded, pos[~inside]]))
            used.append(seen)
    return Truth(np.asarray(users, dtype=np.int64), positives, exclude, used)


def build_truth(users: np.ndarray, items: np.ndarray, parts: np.ndarray, target: int) -> Truth:
    """Truth for split part ``target`` (1 valid, 2 test) from internal-id arrays of the whole split.

    Earlier parts are excluded from the ranking (train for validation; train and valid for test),
    as RecBole does; items of the parts up to ``target`` are never drawn as sampled negatives.
    """
    order = np.lexsort((items, users))
    users, items, parts = users[order], items[order], parts[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [len(users)]])
    keep_users, positives, exclude, used = [], [], [], []
    for a, b in zip(starts, stops):
        user_parts, user_items = parts[a:b], items[a:b]
        pos = user_items[user_parts == target]
        if len(pos) == 0:
            continue
        keep_users.append(users[a])
        positives.append(pos)
        exclude.append(user_items[user_parts < target])
        used.append(user_items[user_parts <= target])
    return Truth(np.asarray(keep_users, dtype=np.int64), positives, exclude, used)
