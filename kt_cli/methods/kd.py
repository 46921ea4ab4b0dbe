"""One-way distillation (``kd``): a teacher's ranking of items for each user taught to the student.

The teacher (knowledge/teachers.py: a finished kt ranking run on the same split, or a file from elsewhere) gives
each user her top-n items with scores. For every training sample the student's scores of those n items (its
``full_sort_predict``, the scores it ranks with) are pulled toward the teacher's by a temperature-scaled KL
divergence, ``tau^2 * KL(softmax(teacher / tau) || softmax(student / tau))`` over the n items (Hinton's
distillation restricted to the teacher's list), or, with ``loss: bce``, DLLM2Rec's ranking distillation: the
binary cross-entropy of the student's score of each listed item against 1, weighted by ``softmax(-rank)``.
``loss = model_loss + weight * distill_loss`` in phase ``distill``; the fine-tune phase runs the student
alone. No parameter is added: the student serves alone at the same cost.

Sample-wise weights (``adaptive``, on by default), each sample's weight proportional to the teacher's
confidence (the probability of its first item), plus the teacher's rank of the sample's own target (``1 / (1 +
rank)``, 0 when the target is not in the list: trust a teacher that ranks the true next item high), plus the
share of the teacher's list in the student's own top-n (agreement); normalised to mean 1 over the batch. The
teacher's list is per user (its ranking after the user's whole training part, as DLLM2Rec's teachers), the
same for every sample of the user. Users without a list are left out of the term and counted.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from kt_cli.errors import TrainingError
from kt_cli.methods import METHODS
from kt_cli.methods.base import Method, model_loss


class Distill(Method):
    first_phase = "distill"

    def __init__(self, session) -> None:
        super().__init__(session)
        self.options = {k: o.default for k, o in METHODS["kd"].options.items()} | session.config.method_options
        self.items: torch.Tensor | None = None  # [n_users, n] student-internal item ids (0: none)
        self.teacher: torch.Tensor | None = None  # [n_users, n] teacher scores
        self.has: torch.Tensor | None = None  # [n_users] the user has a list
        self.active = True
        self.coverage: dict[str, Any] = {}

    def attach(self) -> None:
        ranks = self.session.inputs.teacher
        if ranks is None:
            raise TrainingError("The kd method needs a teacher: --teacher RUN or --teacher-file FILE.")
        parts = self.session.parts
        n = int(self.options["top_n"])
        items = torch.zeros((parts.num("user"), n), dtype=torch.long)
        teacher = torch.full((parts.num("user"), n), -torch.inf)
        users = parts.internal_ids("user", ranks.users)
        for user, listed, scores in zip(users, ranks.items, ranks.scores):
            ids = parts.internal_ids("item", listed[:n])
            keep = ids > 0
            items[user, : keep.sum()] = torch.from_numpy(ids[keep])
            teacher[user, : keep.sum()] = torch.from_numpy(scores[:n][keep]).float()
        device = parts.device
        self.items, self.teacher = items.to(device), teacher.to(device)
        self.has = (items > 0).any(1).to(device)
        self.coverage = {"teacher": ranks.source, "users_with_list": int(self.has.sum()),
                         "users_without_list": int(parts.num("user") - 1 - self.has.sum()), "top_n": n}

    def start_phase(self, phase: str) -> None:
        self.active = phase != "finetune"

    def batch_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
        loss = model_loss(self.session.model, batch)
        if not self.active or self.items is None:
            return loss, None, 0, 0
        parts = self.session.parts
        users = batch[parts.user_field]
        mask = self.has[users]
        used = int(mask.sum())
        if used == 0:
            return loss, None, 0, len(users)
        rows = batch[mask] if used < len(users) else batch
        users, listed = users[mask], self.items[users[mask]]
        student = self.session.model.full_sort_predict(rows).reshape(len(users), -1)
        valid = listed > 0
        tau = float(self.options["temperature"])
        picked = student.gather(1, listed)
        teacher = self.teacher[users]
        if self.options["loss"] == "bce":
            rank = torch.arange(listed.shape[1], device=listed.device).float()
            weights = torch.softmax(-rank, 0).expand_as(picked) * valid
            per_sample = (F.binary_cross_entropy_with_logits(picked, torch.ones_like(picked), reduction="none")
                          * weights).sum(1) / weights.sum(1)
        else:
            target = torch.softmax(teacher.masked_fill(~valid, -torch.inf) / tau, 1)
            log_student = torch.log_softmax(picked.masked_fill(~valid, -torch.inf) / tau, 1)
            per_sample = (target * (torch.log(target.clamp_min(1e-12)) - log_student)).masked_fill(~valid, 0).sum(1)
            per_sample = per_sample * tau ** 2
        if self.options["adaptive"]:
            per_sample = per_sample * self._weights(student, listed, valid, teacher, rows[parts.item_field], tau)
        return loss, per_sample.mean(), used, int(len(mask) - used)

    def _weights(self, student: torch.Tensor, listed: torch.Tensor, valid: torch.Tensor, teacher: torch.Tensor,
                 targets: torch.Tensor, tau: float) -> torch.Tensor:
        """Per sample: teacher confidence + the teacher's rank of the target + agreement, mean 1 (no gradient)."""
        with torch.no_grad():
            confidence = torch.softmax(teacher.masked_fill(~valid, -torch.inf) / tau, 1)[:, 0]
            where = (listed == targets.unsqueeze(1)) & valid
            rank = torch.where(where.any(1), 1.0 / (1.0 + where.float().argmax(1)), torch.zeros_like(confidence))
            own = torch.topk(student, listed.shape[1], dim=1).indices
            agreement = (own.unsqueeze(2) == listed.unsqueeze(1)).any(2).float().mean(1)
            weights = confidence + rank + agreement
            return weights / weights.mean().clamp_min(1e-12)

    def loss(self, model_loss: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        return model_loss if extra is None else model_loss + float(self.options["weight"]) * extra

    def summary(self) -> dict[str, Any]:
        return {"coverage": self.coverage, "distill": {k: self.options[k] for k in sorted(self.options)}}
