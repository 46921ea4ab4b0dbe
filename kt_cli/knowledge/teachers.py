"""Teachers for distillation: each user's top-n items with scores, from a finished kt run or from a file.

A teacher run must have been trained on the student's very split (same dataset, same split id): it saw only
the training part, so its ranking holds nothing of validation or test; a run on another split is refused. Its
top-n is every item scored by the run (``full_sort_predict``, or ``predict`` over all items) with the user's
training items masked (the teacher recommends what the user has not had yet), computed once and cached
beside the run. A teacher file (``--teacher-file``) is JSONL, one user a line: ``{"user_id": "196", "items":
["242", ...], "scores": [3.1, ...]}``, best first or not (kt sorts); it is checked like a vector file and
refused with the problems counted: lines that are not JSON objects, missing or mismatched fields, NaN or
infinite scores, unknown users or items, a user twice.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kt_cli.errors import MissingInputError, UsageError

EXAMPLES = 3


@dataclass(frozen=True)
class TeacherRanks:
    """Each user's teacher list: external item ids and scores, best first."""

    source: str  # "run NAME" or "file PATH"
    users: list[str]
    items: list[list[str]]
    scores: list[np.ndarray]
    stamp: str  # the teacher's identity for the student's digest: the run's config hash, the file's sha256


@dataclass
class _Problems:
    counts: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def add(self, reason: str, line: int) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"line {line}: {reason}")


def read_teacher_file(path: Path, users: set[str], items: set[str], top_n: int) -> TeacherRanks:
    """A validated teacher file; any problem refuses it with every count and the first lines at fault."""
    if not path.is_file():
        raise MissingInputError(f"Teacher file {path} does not exist.", "kt train ... --teacher-file FILE (JSONL: "
                                "user_id, items, scores per line)")
    raw = path.read_bytes()
    problems, seen = _Problems(), set()
    out_users, out_items, out_scores = [], [], []
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            problems.add("not JSON", number)
            continue
        if not isinstance(row, dict) or not {"user_id", "items", "scores"} <= set(row):
            problems.add("not an object with user_id, items and scores", number)
            continue
        user, ranked, scores = str(row["user_id"]), [str(i) for i in row["items"]], row["scores"]
        if not isinstance(scores, list) or len(scores) != len(ranked) or not ranked:
            problems.add("items and scores of different lengths (or empty)", number)
        elif not all(isinstance(s, (int, float)) and math.isfinite(s) for s in scores):
            problems.add("a NaN, infinite or non-numeric score", number)
        elif user not in users:
            problems.add(f"unknown user {user}", number)
        elif any(i not in items for i in ranked):
            problems.add(f"unknown item {next(i for i in ranked if i not in items)}", number)
        elif user in seen:
            problems.add(f"user {user} a second time", number)
        else:
            seen.add(user)
            order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:top_n]
            out_users.append(user)
            out_items.append([ranked[i] for i in order])
            out_scores.append(np.asarray(scores, dtype=np.float64)[order])
    if problems.counts:
        counted = ", ".join(f"{n} {reason}" for reason, n in _grouped(problems.counts).items())
        raise UsageError(f"Teacher file {path} has {sum(problems.counts.values())} bad line(s) ({counted}; e.g. "
                         f"{'; '.join(problems.examples)}). Each line must be {{\"user_id\": ..., \"items\": [...], "
                         "\"scores\": [...]}} with finite scores, for users and items of the student's dataset, "
                         "each user once. Fix the file (the teacher must also have seen only the training part).")
    if not out_users:
        raise UsageError(f"Teacher file {path} holds no user: it is empty.")
    return TeacherRanks(f"file {path}", out_users, out_items, out_scores, hashlib.sha256(raw).hexdigest()[:16])


def _grouped(counts: dict[str, int]) -> dict[str, int]:
    """Reasons naming one id ("unknown user 9") counted together ("unknown user")."""
    grouped: dict[str, int] = {}
    for reason, n in counts.items():
        key = " ".join(reason.split(" ")[:2]) if reason.startswith("unknown") else (
            "user twice" if reason.startswith("user ") else reason)
        grouped[key] = grouped.get(key, 0) + n
    return grouped


def _check_run(store_path: Path, run: str, split_id: str, role: str):
    """A finished ranking run on the split ``split_id``: its row and config."""
    from kt_cli.evaluation.evaluate import finished_run
    from kt_cli.store import Store

    with Store.open(store_path, create=False) as store:
        row, config = finished_run(store, run, f"{role.lower()} from")
        folder = store.run_folder(run)
        label, wanted = store.split_label(row.split_id), store.split_label(split_id)
    if config.task_spec.key != "ranking":
        raise UsageError(f"{role} run '{run}' is a {config.task_spec.key} run; a {role.lower()} ranks all items per "
                         "user: train one with a ranking model (e.g. --model learn, --model multvae).")
    if row.split_id != split_id:
        raise UsageError(f"{role} run '{run}' was trained on another split ({label}) than the student's ({wanted}): "
                         f"its ranking may hold the student's validation or test items. Train the {role.lower()} with "
                         "the student's --split options.")
    return row, folder


def partner_session(store_path: Path, run: str, split_id: str):
    """The session of finished ranking run ``run`` on the student's split, its weights loaded, to train along."""
    from kt_cli.evaluation.evaluate import trained_session

    _check_run(store_path, run, split_id, "Partner")
    return trained_session(store_path, run)


def teacher_from_run(store_path: Path, run: str, split_id: str, top_n: int) -> TeacherRanks:
    """The top-n unseen items of finished ranking run ``run`` for every user, cached beside the run."""
    import torch

    from kt_cli.evaluation.evaluate import trained_session
    from kt_cli.evaluation.ranking import score_items
    from kt_cli.training.recbole_adapter import interaction

    row, folder = _check_run(store_path, run, split_id, "Teacher")
    cache = folder / f"teacher-top{top_n}-{row.config_hash}.npz"
    if cache.is_file():
        data = np.load(cache, allow_pickle=False)
        return TeacherRanks(f"run {run}", data["users"].tolist(), [list(r) for r in data["items"]],
                            list(data["scores"]), row.config_hash)
    session = trained_session(store_path, run)
    parts = session.parts
    truth = session.truth(1)  # its users, and in exclude each one's training items
    external_items = parts.external_ids("item")
    items, scores = [], []
    with torch.no_grad():
        for start in range(0, len(truth.users), 256):
            users = truth.users[start:start + 256]
            block = score_items(session.model, torch.from_numpy(users).to(parts.device), parts.num("item"),
                                parts.user_field, parts.item_field, interaction).cpu()
            block[:, 0] = -torch.inf
            for row_index, seen in enumerate(truth.exclude[start:start + 256]):
                block[row_index, torch.from_numpy(seen)] = -torch.inf
            top = torch.topk(block, top_n, dim=1)
            items.append(external_items[top.indices.numpy()])
            scores.append(top.values.double().numpy())
    users = parts.external_ids("user")[truth.users]
    np.savez(cache, users=users, items=np.concatenate(items), scores=np.concatenate(scores))
    return TeacherRanks(f"run {run}", users.tolist(), [list(r) for r in np.concatenate(items)],
                        list(np.concatenate(scores)), row.config_hash)
