"""LLM-KT: reconstruct knowledge vectors in a hooked layer (phase ``distill``), then fine-tune without it.

``loss = (1 - alpha) * model_loss + alpha * recon(hidden, target)`` while the hook is attached; the
fine-tune phase runs the unmodified model on its own loss with a fresh optimizer. The layer, alignment,
projection and target scaling are described in docs/architecture.md ("How a run is trained").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from kt_cli.errors import TrainingError
from kt_cli.methods.base import Method, model_loss
from kt_cli.training.hooks import LayerCapture, LayerRef
from kt_cli.training.transfer import KnowledgeTargets, Reconstruction, align_rows


class LlmKt(Method):
    first_phase = "distill"

    def __init__(self, session) -> None:
        super().__init__(session)
        self.knowledge = session.inputs.knowledge.get("knowledge")
        self.capture: LayerCapture | None = None
        self.targets: KnowledgeTargets | None = None
        self.recon: Reconstruction | None = None
        self.coverage: dict[str, int] = {}

    @property
    def layer(self) -> LayerRef:
        return LayerRef.parse(self.session.config.inject_layer or self.session.spec.default_layer)

    def attach(self) -> None:
        session, knowledge = self.session, self.knowledge
        if knowledge is None:  # evaluation builds the session without knowledge: nothing to hook
            return
        internal = session.parts.internal_ids(knowledge.entity, knowledge.ids)
        n_entities = session.parts.num(knowledge.entity)
        self.targets = KnowledgeTargets.build(internal, knowledge.vectors, n_entities, session.parts.device)
        self.coverage = {
            "vectors": len(knowledge.ids),
            "matched": int((internal > 0).sum()),
            "unmatched": int((internal <= 0).sum()),
            f"{knowledge.entity}s_without_vector": int(n_entities - 1 - (internal > 0).sum()),
        }
        if self.coverage["matched"] == 0:
            raise TrainingError(
                f"None of the {len(knowledge.ids)} ids in knowledge set '{knowledge.name}' is a "
                f"{knowledge.entity} of dataset {session.config.dataset}; was it imported for another dataset?"
            )
        self.capture = LayerCapture(session.model, self.layer)
        hidden = self.dry_hidden()
        config = session.config
        self.recon = Reconstruction(int(np.prod(hidden.shape[1:])), self.targets.dim, config.project,
                                    config.recon_loss, str(self.layer)).to(session.parts.device)
        if config.target_scale == "layer":  # the scale of what the loss compares, at initialisation
            with torch.no_grad():
                flat = hidden.reshape(hidden.shape[0], -1)
                compared = self.recon.head(flat) if self.recon.head is not None else flat[:, : self.targets.dim]
            self.targets = self.targets.rescaled(float(compared.norm(dim=1).mean()))

    def dry_hidden(self) -> torch.Tensor:
        """The hooked tensor for the first training batch (no parameter update)."""
        assert self.capture is not None
        session = self.session
        batch = next(iter(self.batches())).to(session.parts.device)
        with torch.no_grad(), self.capture.recording() as seen:
            session.model.calculate_loss(batch)
        if not seen:
            raise TrainingError(
                f"Layer {self.layer} is never called while {session.spec.recbole_name} computes its "
                "training loss, so it cannot carry knowledge. Pick another layer "
                f"(kt train --model {session.spec.key} --list-layers)."
            )
        return session.task.rows(seen[0], batch, session.parts)

    def start_phase(self, phase: str) -> None:
        if phase == "finetune" and self.capture is not None:  # fine-tune and inference run the plain model
            self.capture.remove()
            self.capture = None

    def batch_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
        """Model loss, reconstruction loss (None when no row has a vector), rows used and rows masked."""
        if self.capture is None or self.targets is None or self.recon is None:
            return super().batch_loss(batch)
        loss, hidden, ids = self.hooked_rows(batch)
        rows = len(ids)
        mask = self.targets.present[ids]
        used = int(mask.sum())
        if used == 0:
            return loss, None, 0, rows
        flat = hidden.reshape(rows, -1)
        if used < rows:  # boolean indexing copies the rows and scatters their gradient back: only when needed
            flat, ids = flat[mask], ids[mask]
        return loss, self.recon(flat, self.targets.vectors[ids]), used, rows - used

    def hooked_rows(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model loss, the hooked tensor, and the internal id of the user (or item) of each row."""
        assert self.capture is not None and self.knowledge is not None
        session = self.session
        field = session.parts.user_field if self.knowledge.entity == "user" else session.parts.item_field
        with self.capture.recording() as seen:
            loss = model_loss(session.model, batch)
        hidden = session.task.rows(seen[0], batch, session.parts)
        return loss, hidden, align_rows(hidden.shape[0], batch[field], str(self.layer))

    def loss(self, model_loss: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        if extra is None:
            return model_loss
        alpha = self.session.config.alpha
        return (1 - alpha) * model_loss + alpha * extra

    def parameters(self) -> list[torch.nn.Parameter]:
        """The projection head, while the hook is attached."""
        return list(self.recon.parameters()) if self.recon is not None and self.capture is not None else []

    def state_dict(self) -> dict[str, Any] | None:
        return self.recon.state_dict() if self.recon is not None else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.recon is not None and state is not None:
            self.recon.load_state_dict(state)

    def summary(self) -> dict[str, Any]:
        return {"layer": str(self.layer), "coverage": self.coverage}
