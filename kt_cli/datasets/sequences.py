"""The sequential task's export: next-item samples, each a target with the user's items before it, for RecBole.

RecBole augments a sequential dataset itself only when it splits it; with benchmark files (kt's splits) it
reads the samples as given, so kt writes them: one row per target, ``user_id``, ``item_id_list`` (the user's
items before the target, oldest first, the last ``max_history`` of them) and ``item_id``. Training rows: every
training interaction but a user's first, its history the training items before it. Validation and test rows:
every interaction of the part, its history the user's earlier interactions of that part or an earlier one
(the validation item is in the history of a leave-one-out test target, as in RecBole's own leave-one-out
protocol; a validation target never has a test item in its history, whatever the split scheme): inputs,
never targets, so nothing of a target leaks. A target with no such earlier item is not a sample (counted). ``alias_of_item_id`` makes RecBole map the list's tokens with the item ids.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from kt_cli.datasets.splits import PARTS, RECBOLE_DATASET
from kt_cli.store import Store

LIST_FIELD = "item_id_list"


def export_sequences(store: Store, sid: str, max_history: int) -> tuple[Path, dict[str, Any]]:
    """Write the split's next-item samples once (per history length); returns RecBole's ``data_path`` and what
    was exported (samples per part, targets left out for want of history)."""
    root = store.artifacts_dir / "splits" / sid / f"sequences-{max_history}"
    folder = root / RECBOLE_DATASET
    targets = [folder / f"{RECBOLE_DATASET}.{part}.inter" for part in PARTS]
    summary = root / "summary.json"
    if summary.is_file() and all(t.is_file() for t in targets):
        return root, json.loads(summary.read_text(encoding="utf-8"))
    rows = store.split_sequences(sid)
    users = rows["user_id"].to_numpy()
    items = rows["item_id"].astype(str).to_numpy()
    parts = rows["part"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True])  # rows grouped by user, in time order
    samples: dict[int, list[str]] = {part: [] for part in range(len(PARTS))}
    for a, b in zip(bounds[:-1], bounds[1:]):
        for i in range(a + 1, b):
            earlier = np.flatnonzero(parts[a:i] <= parts[i])[-max_history:] + a  # never a later part's item
            if len(earlier):
                samples[int(parts[i])].append(f"{users[i]}\t{' '.join(items[earlier])}\t{items[i]}\n")
    exported = sum(len(s) for s in samples.values())
    data = {"max_history": max_history, "samples": {PARTS[p]: len(s) for p, s in samples.items()},
            "targets_without_history": len(rows) - exported}
    folder.mkdir(parents=True, exist_ok=True)
    for target, part in zip(targets, range(len(PARTS))):  # each file complete or absent: written, then renamed
        tmp = target.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(f"user_id:token\t{LIST_FIELD}:token_seq\titem_id:token\n")
            handle.writelines(samples[part])
        os.replace(tmp, target)
    summary.write_text(json.dumps(data), encoding="utf-8")
    return root, data


def recbole_settings(max_history: int, loss_type: str) -> dict[str, Any]:
    """RecBole's settings for the exported samples: the list field read and mapped with the item ids, time-ordered
    evaluation (RecBole requires ``TO`` for sequential models), and no sampled negatives with the CE loss."""
    settings: dict[str, Any] = {
        "load_col": {"inter": ["user_id", LIST_FIELD, "item_id"]}, "alias_of_item_id": [LIST_FIELD],
        "MAX_ITEM_LIST_LENGTH": max_history, "eval_args": {"group_by": "user", "order": "TO", "mode": "full"},
    }
    if loss_type.upper() == "CE":
        settings["train_neg_sample_args"] = None
    return settings
