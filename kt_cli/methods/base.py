"""The moments of the training loop a method plugs into, and the baseline (a method that adds nothing).

One loop (training/trainer.py) owns epochs, phases, early stopping, checkpoints and resume for every
method; what varies is behind these calls, in the manner of PyTorch Lightning's callbacks:

- ``attach()`` once before training, with every random state saved and restored around it, so a run with
  knowledge draws the same initial weights, batches and negatives as the baseline with the same seed;
- ``start_phase(name)`` at the start of each phase (LLM-KT removes its hook for the fine-tune phase);
- ``batches()`` one epoch's training batches: RecBole's train dataloader, or the method's model's own (LEARN
  trains on chunks of user sequences, not on interactions);
- ``batch_loss(batch)`` -> the model's loss, the method's extra loss (or None), rows used and masked;
- ``loss(model_loss, extra)`` combines them;
- ``parameters()`` what the optimizer updates besides the model, in the current phase;
- ``state_dict()``/``load_state_dict()`` the method's own weights, for checkpoints and ``model.pt``;
- ``train(mode)`` with the model's own ``train``/``eval`` switch, for modules the method adds (dropout);
- ``summary()`` what the run records about the knowledge (coverage, layer, parameters).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from kt_cli.training.session import Session


def model_loss(model: torch.nn.Module, batch) -> torch.Tensor:
    """The model's own training loss (a tuple of terms, as some RecBole models return, is summed)."""
    loss = model.calculate_loss(batch)
    return sum(loss) if isinstance(loss, tuple) else loss


class Method:
    """The baseline: the model's own loss through the same schedule (phases ``train`` then ``finetune``)."""

    first_phase = "train"

    def __init__(self, session: Session) -> None:
        self.session = session

    def attach(self) -> None:
        """Set up before the first epoch (off the record: random states are restored afterwards)."""

    def start_phase(self, phase: str) -> None:
        """Called at the start of each phase, before its optimizer is built."""

    def batches(self) -> Iterable:
        return self.session.parts.train_data

    def batch_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
        return model_loss(self.session.model, batch), None, 0, 0

    def loss(self, model_loss: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        return model_loss

    def parameters(self) -> list[torch.nn.Parameter]:
        return []

    def state_dict(self) -> dict[str, Any] | None:
        return None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore what :meth:`state_dict` returned."""

    def train(self, mode: bool) -> None:
        """Switch the method's own modules between training and inference, with the model."""

    def summary(self) -> dict[str, Any]:
        return {}
