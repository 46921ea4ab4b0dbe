"""The LLM-KT pretext task: reconstruct knowledge vectors from a hooked layer.

``loss = (1 - alpha) * model_loss + alpha * recon(hidden, target)`` where ``hidden`` is the hooked
tensor and ``target`` the batch users' (or items') knowledge vectors. Rows of ``hidden`` are matched
to ids from the batch itself, never assumed: RecBole repeats users per negative sample (SimpleX), and
autoencoders see one row per user. Entities without a vector are masked out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from kt_cli.errors import TrainingError
from kt_cli.training.config import PROJECTIONS, RECON_LOSSES



def align_rows(rows: int, batch_ids: torch.Tensor, layer: str) -> torch.Tensor:
    """Ids of the entities the hooked tensor's rows belong to.

    A layer sees either one row per batch record, or one row per distinct record when the batch is
    the same records repeated (RecBole's negative sampling repeats the interaction ``k`` times).
    Anything else cannot be aligned safely and is an error rather than a silent mismatch.
    """
    total = len(batch_ids)
    if rows == total:
        return batch_ids
    if 0 < rows < total and total % rows == 0:
        tiled = batch_ids.view(total // rows, rows)
        if bool((tiled == tiled[0]).all()):
            return batch_ids[:rows]
    raise TrainingError(
        f"Layer {layer} produced {rows} rows for a batch of {total} records, which cannot be matched "
        "to the batch's users. Pick a layer that sees one row per user in the batch "
        "(see kt train --model MODEL --list-layers)."
    )


@dataclass
class KnowledgeTargets:
    """Knowledge vectors indexed by RecBole's internal ids, with a mask of who has one."""

    vectors: torch.Tensor  # [n_entities, dim]
    present: torch.Tensor  # [n_entities] bool

    @classmethod
    def build(cls, internal_ids: np.ndarray, vectors: np.ndarray, n_entities: int,
              device: torch.device) -> KnowledgeTargets:
        """``internal_ids[i]`` is the internal id of ``vectors[i]``; -1 rows (unknown ids) are skipped."""
        keep = internal_ids >= 0
        table = torch.zeros((n_entities, vectors.shape[1]), dtype=torch.float32)
        present = torch.zeros(n_entities, dtype=torch.bool)
        index = torch.from_numpy(internal_ids[keep])
        table[index] = torch.from_numpy(np.ascontiguousarray(vectors[keep], dtype=np.float32))
        present[index] = True
        present[0] = False  # RecBole's padding id is never a real user or item
        return cls(table.to(device), present.to(device))

    def rescaled(self, row_norm: float) -> KnowledgeTargets:
        """Centred (column means over the entities with a vector) and scaled to a mean row norm of
        ``row_norm``. UMAP returns uncentred coordinates some 100 times the norm of a freshly
        initialised layer, and RMSE against those drags the layer far from where the model's own loss
        wants it; matching the layer's scale leaves only the directions to learn."""
        rows = self.vectors[self.present]
        centred = rows - rows.mean(dim=0)
        factor = row_norm / float(centred.norm(dim=1).mean().clamp_min(1e-12))
        vectors = torch.zeros_like(self.vectors)
        vectors[self.present] = centred * factor
        return KnowledgeTargets(vectors, self.present)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


class Reconstruction(nn.Module):
    """Maps hidden rows to the target width (truncate or a learned linear head) and scores them."""

    def __init__(self, hidden_dim: int, target_dim: int, project: str, loss: str, layer: str) -> None:
        super().__init__()
        if project not in PROJECTIONS:
            raise TrainingError(f"--project must be one of {', '.join(PROJECTIONS)}, not '{project}'.")
        if loss not in RECON_LOSSES:
            raise TrainingError(f"--recon-loss must be one of {', '.join(RECON_LOSSES)}, not '{loss}'.")
        if project == "truncate" and hidden_dim < target_dim:
            raise TrainingError(
                f"Layer {layer} is {hidden_dim} wide but the knowledge vectors have {target_dim} "
                f"dimensions. Reduce them to at most {hidden_dim} (kt reduce --dim {hidden_dim}), "
                "or pass --project linear to learn a projection."
            )
        self.target_dim = target_dim
        self.loss_name = loss
        self.head = nn.Linear(hidden_dim, target_dim) if project == "linear" else None

    def forward(self, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mapped = self.head(hidden) if self.head is not None else hidden[:, : self.target_dim]
        if self.loss_name == "cosine":
            return (1 - F.cosine_similarity(mapped, target, dim=1)).mean()
        return torch.sqrt(F.mse_loss(mapped, target) + 1e-12)
