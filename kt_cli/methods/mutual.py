"""LLMD4Rec's mutual distillation (``llmd4rec``): the conventional model and an LLM-side partner, in turns.

The partner (``--partner RUN``: a finished ranking run on the same split, LEARN's towers over frozen-LLM item
embeddings being the intended one) is loaded with its weights and trained further inside this run; the run's
own model (the CRM, e.g. SASRec) is the one validated, stored and served, alone, at its own cost. Epochs
alternate in turns of ``round_epochs``: a CRM turn trains the CRM on its batches with ``model_loss + weight *
KL`` toward the partner's distribution over all items for the sample's user; a partner turn trains the
partner on its own batches (LEARN's chunks) with its own loss plus ``weight * KL`` toward the CRM's
distribution for the batch's users, the CRM reading each user's last training items. Both KLs are
temperature-scaled (``tau^2 KL(softmax(teacher / tau) || softmax(student / tau))``) and weighted per sample
(``adaptive``): the teacher's confidence (its top probability) plus, in CRM turns, the teacher's probability
of the sample's own target (trust it where it ranks the true next item high), normalised to mean 1 per batch.
No parameter is added to the CRM. The fine-tune phase trains the CRM alone.

Choices the paper leaves open, made here (docs/architecture.md lists them): turns of whole epochs; the
partner's distribution is per user (its view after the user's training part); the partner's turn reads the
CRM on each user's last training items; weights from confidence and target probability; one optimizer over
both models, each turn giving gradients to one of them only (Adam skips parameters without a gradient).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from kt_cli.errors import TrainingError
from kt_cli.methods import METHODS
from kt_cli.methods.base import Method, model_loss


def distill_kl(student: torch.Tensor, teacher: torch.Tensor, tau: float, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean over rows of ``tau^2 * KL(softmax(teacher / tau) || softmax(student / tau))``, optionally weighted."""
    target = torch.softmax(teacher / tau, 1)
    per_row = (target * (torch.log(target.clamp_min(1e-12)) - torch.log_softmax(student / tau, 1))).sum(1) * tau ** 2
    return (per_row * weights).mean() if weights is not None else per_row.mean()


class Mutual(Method):
    first_phase = "mutual"

    def __init__(self, session) -> None:
        super().__init__(session)
        self.options = {k: o.default for k, o in METHODS["llmd4rec"].options.items()} | session.config.method_options
        self.partner = session.inputs.teacher  # a Session of the partner run, loaded by training.session.load_teacher
        self.epoch = 0  # epochs started in the mutual phase (checkpointed): whose turn it is
        self.mutual = True
        self.coverage: dict[str, Any] = {}

    def attach(self) -> None:
        if self.partner is None:
            raise TrainingError("The llmd4rec method needs --partner RUN (a finished ranking run on the same split).")
        parts, other = self.session.parts, self.partner.parts
        device = parts.device
        # The two RecBole datasets number users and items independently: map the partner's columns to ours.
        self.item_map = torch.from_numpy(np.maximum(other.internal_ids("item", list(parts.external_ids("item"))), 0)).to(device)
        self.user_map = torch.from_numpy(other.internal_ids("user", list(parts.external_ids("user")))).to(device)
        length = int(parts.config["MAX_ITEM_LIST_LENGTH"])
        last = self.session.inputs.histories.groupby("user_id", sort=False).tail(length)  # time order kept
        users = parts.internal_ids("user", last["user_id"].tolist())
        items = parts.internal_ids("item", last["item_id"].tolist())
        position = last.groupby("user_id", sort=False).cumcount().to_numpy()
        lengths = torch.from_numpy(np.bincount(users, minlength=parts.num("user")))
        sequences = torch.zeros((parts.num("user"), length), dtype=torch.long)  # the CRM's input in partner turns
        sequences[torch.from_numpy(users), torch.from_numpy(position)] = torch.from_numpy(items)
        self.sequences, self.lengths = sequences.to(device), lengths.to(device)
        self.partner.model.to(device)
        self.coverage = {"partner": self.partner.config.model, "partner_users_matched": int((self.user_map > 0).sum()),
                         "partner_items_matched": int((self.item_map > 0).sum())}

    @property
    def crm_turn(self) -> bool:
        return not self.mutual or (self.epoch // int(self.options["round_epochs"])) % 2 == 0

    def start_phase(self, phase: str) -> None:
        self.mutual = phase != "finetune"

    def batches(self) -> Iterator[Any]:
        turn_is_crm = self.crm_turn
        if self.mutual:
            self.epoch += 1
        self.partner.train_mode(not turn_is_crm)
        self._turn = turn_is_crm
        return iter(self.session.parts.train_data if turn_is_crm else self.partner.method.batches())

    def batch_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
        tau, adaptive = float(self.options["temperature"]), bool(self.options["adaptive"])
        if not self.mutual:
            return model_loss(self.session.model, batch), None, 0, 0
        if self._turn:  # the CRM learns from the partner
            loss = model_loss(self.session.model, batch)
            users = batch[self.session.parts.user_field]
            student = self.session.model.full_sort_predict(batch).reshape(len(users), -1)
            with torch.no_grad():
                teacher = self._partner_scores(users)
                weights = self._weights(teacher, tau, batch[self.session.parts.item_field]) if adaptive else None
            return loss, distill_kl(student[:, 1:], teacher[:, 1:], tau, weights), len(users), 0
        partner_users = batch[self.partner.parts.user_field].unique()
        m, e, _, _ = self.partner.method.batch_loss(batch)
        loss = self.partner.method.loss(m, e)
        ours = self._our_users(partner_users)
        keep = ours > 0
        ours, partner_users = ours[keep], partner_users[keep]
        student = self._partner_scores(ours, partner_users)
        with torch.no_grad():
            self.session.model.eval()
            teacher = self.session.model.full_sort_predict(self._crm_input(ours)).reshape(len(ours), -1)
            self.session.model.train()
            weights = self._weights(teacher, tau, None) if adaptive else None
        return loss, distill_kl(student[:, 1:], teacher[:, 1:], tau, weights), len(ours), int((~keep).sum())

    def _partner_scores(self, users: torch.Tensor, partner_users: torch.Tensor | None = None) -> torch.Tensor:
        """The partner's scores for our ``users``, columns in our item order (our padding column stays -inf)."""
        from kt_cli.evaluation.ranking import score_items
        from kt_cli.training.recbole_adapter import interaction

        other = self.partner.parts
        partner_users = self.user_map[users] if partner_users is None else partner_users
        scores = score_items(self.partner.model, partner_users, other.num("item"), other.user_field, other.item_field,
                             interaction)
        return scores[:, self.item_map]

    def _our_users(self, partner_users: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "_reverse"):
            reverse = torch.zeros(int(self.partner.parts.num("user")), dtype=torch.long, device=self.user_map.device)
            ours = torch.arange(len(self.user_map), device=self.user_map.device)
            known = self.user_map > 0
            reverse[self.user_map[known]] = ours[known]
            self._reverse = reverse
        return self._reverse[partner_users]

    def _crm_input(self, users: torch.Tensor):
        from kt_cli.training.recbole_adapter import interaction

        model = self.session.model
        return interaction({self.session.parts.user_field: users, model.ITEM_SEQ: self.sequences[users],
                            model.ITEM_SEQ_LEN: self.lengths[users]})

    @staticmethod
    def _weights(teacher: torch.Tensor, tau: float, targets: torch.Tensor | None) -> torch.Tensor:
        probabilities = torch.softmax(teacher[:, 1:] / tau, 1)
        weights = probabilities.max(1).values
        if targets is not None:
            weights = weights + probabilities.gather(1, (targets - 1).clamp_min(0).unsqueeze(1)).squeeze(1)
        return weights / weights.mean().clamp_min(1e-12)

    def loss(self, model_loss: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        return model_loss if extra is None else model_loss + float(self.options["weight"]) * extra

    def parameters(self) -> list[torch.nn.Parameter]:
        """The partner's parameters (and its method's), trained in its turns of the mutual phase."""
        if not self.mutual or self.partner is None:
            return []
        return list(self.partner.model.parameters()) + self.partner.method.parameters()

    def state_dict(self) -> dict[str, Any] | None:
        if self.partner is None:
            return None
        return {"partner": self.partner.model.state_dict(), "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is not None and self.partner is not None:
            self.partner.model.load_state_dict(state["partner"])
            self.epoch = int(state["epoch"])

    def summary(self) -> dict[str, Any]:
        return {"coverage": self.coverage, "mutual": {k: self.options[k] for k in sorted(self.options)}}
