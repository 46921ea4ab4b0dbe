"""A run's working set: the RecBole model on a stored split, with its knowledge targets and truth.

Training, evaluation and ``--list-layers`` all start from the same place, a :class:`Session`, so a
run is evaluated on exactly the split and id mapping it was trained on.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kt_cli.datasets.splits import ensure_split, export_for_recbole
from kt_cli.errors import TrainingError
from kt_cli.evaluation.ranking import Truth, build_truth, evaluate_users
from kt_cli.store import Store
from kt_cli.training import recbole_adapter
from kt_cli.training.config import TrainConfig, check_inputs
from kt_cli.training.hooks import LayerCapture, LayerInfo, LayerRef, survey_layers
from kt_cli.training.models import get_model_spec
from kt_cli.training.transfer import KnowledgeTargets, Reconstruction, align_rows


@dataclass(frozen=True)
class Knowledge:
    """A knowledge set's vectors as read from the store."""

    name: str
    entity: str
    ids: list[str]
    vectors: np.ndarray


@dataclass(frozen=True)
class RunInputs:
    """Everything a session reads from the store, gathered in one short store visit."""

    split_id: str
    data_path: Path
    split_rows: object  # pandas DataFrame: user_id, item_id, part
    knowledge: Knowledge | None


def read_inputs(store: Store, config: TrainConfig, *, with_knowledge: bool = True) -> RunInputs:
    """Dataset, split (made on first use) and, for training, knowledge vectors for ``config``."""
    sid = ensure_split(store, config.dataset, config.split_spec)
    data_path = export_for_recbole(store, sid)
    knowledge = None
    if config.knowledge is not None and with_knowledge:
        row = check_inputs(store, config)
        ids, vectors = store.knowledge_vectors(config.dataset, config.knowledge)
        knowledge = Knowledge(row.name, row.entity, ids, vectors)
    return RunInputs(sid, data_path, store.split_rows(sid), knowledge)


class Session:
    """A built RecBole model for one config, plus validation/test truth and the optional hook."""

    def __init__(self, config: TrainConfig, inputs: RunInputs, run_dir: Path) -> None:
        self.config = config
        self.inputs = inputs
        self.spec = get_model_spec(config.model)
        config_dict = recbole_adapter.recbole_config_dict(
            inputs.data_path, run_dir, seed=config.seed, device=config.device, overrides=config.recbole
        )
        self.parts = recbole_adapter.build(self.spec, config_dict, config.seed)
        self.model = self.parts.model
        rows = inputs.split_rows
        self._users = self.parts.internal_ids("user", rows["user_id"].tolist())
        self._items = self.parts.internal_ids("item", rows["item_id"].tolist())
        self._parts = rows["part"].to_numpy()
        self.capture: LayerCapture | None = None
        self.targets: KnowledgeTargets | None = None
        self.recon: Reconstruction | None = None
        self.coverage: dict[str, int] = {}

    @property
    def layer(self) -> LayerRef:
        return LayerRef.parse(self.config.inject_layer or self.spec.default_layer)

    def truth(self, part: int) -> Truth:
        return build_truth(self._users, self._items, self._parts, part)

    def n_train(self) -> dict[int, int]:
        """Training interactions per internal user id (for activity slices)."""
        train_users = self._users[self._parts == 0]
        ids, counts = np.unique(train_users, return_counts=True)
        return dict(zip(ids.tolist(), counts.tolist()))

    def item_popularity(self) -> np.ndarray:
        """Interactions per internal item id over the whole split, as RecBole's ``pop`` sampler counts."""
        return np.bincount(self._items, minlength=self.parts.num("item"))

    def evaluate(self, truth: Truth, ks: Sequence[int], *, mode: str = "full", seed: int = 0
                 ) -> dict[tuple[str, int], np.ndarray]:
        """Per-user ranking metrics of the current weights on ``truth`` (see evaluation.ranking)."""
        return evaluate_users(
            self.model, truth, n_items=self.parts.num("item"), uid=self.parts.user_field,
            iid=self.parts.item_field, make_interaction=recbole_adapter.interaction, ks=ks, mode=mode,
            popularity=self.item_popularity() if mode != "full" else None, seed=seed,
        )

    def rng_state(self) -> dict[str, Any]:
        """Every random state training consumes, for checkpoints and for side trips that must not count."""
        return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                "loader": self.parts.train_data.generator.get_state(),
                "scalars": {k: v for k, v in vars(self.model).items()
                            if type(v) in (int, float)}}  # e.g. MultVAE's anneal step counter

    def restore_rng(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        np.random.set_state(state["numpy"])
        random.setstate(state["python"])
        self.parts.train_data.generator.set_state(state["loader"])
        for key, value in state["scalars"].items():
            setattr(self.model, key, value)

    def attach_knowledge(self) -> None:
        """Hook the layer and set up targets; checks the layer's width on one dry batch.

        The dry batch and the projection head's initialisation happen off the record (random states
        restored), so a run with knowledge sees the same initial weights, batches and negatives as the
        baseline with the same seed: the paired comparison differs in the knowledge alone.
        """
        knowledge = self.inputs.knowledge
        if knowledge is None:
            return
        state = self.rng_state()
        try:
            self._attach(knowledge)
        finally:
            self.restore_rng(state)

    def _attach(self, knowledge: Knowledge) -> None:
        internal = self.parts.internal_ids(knowledge.entity, knowledge.ids)
        n_entities = self.parts.num(knowledge.entity)
        self.targets = KnowledgeTargets.build(internal, knowledge.vectors, n_entities, self.parts.device)
        self.coverage = {
            "vectors": len(knowledge.ids),
            "matched": int((internal > 0).sum()),
            "unmatched": int((internal <= 0).sum()),
            f"{knowledge.entity}s_without_vector": int(n_entities - 1 - (internal > 0).sum()),
        }
        if self.coverage["matched"] == 0:
            raise TrainingError(
                f"None of the {len(knowledge.ids)} ids in knowledge set '{knowledge.name}' is a "
                f"{knowledge.entity} of dataset {self.config.dataset}; was it imported for another dataset?"
            )
        self.capture = LayerCapture(self.model, self.layer)
        hidden = self.dry_hidden()
        self.recon = Reconstruction(
            int(np.prod(hidden.shape[1:])), self.targets.dim, self.config.project,
            self.config.recon_loss, str(self.layer),
        ).to(self.parts.device)
        if self.config.target_scale == "layer":  # the scale of what the loss compares, at initialisation
            with torch.no_grad():
                flat = hidden.reshape(hidden.shape[0], -1)
                compared = self.recon.head(flat) if self.recon.head is not None else flat[:, : self.targets.dim]
            self.targets = self.targets.rescaled(float(compared.norm(dim=1).mean()))

    def dry_hidden(self) -> torch.Tensor:
        """The hooked tensor for the first training batch (no parameter update)."""
        assert self.capture is not None
        batch = next(iter(self.parts.train_data)).to(self.parts.device)
        with torch.no_grad(), self.capture.recording() as seen:
            self.model.calculate_loss(batch)
        if not seen:
            raise TrainingError(
                f"Layer {self.layer} is never called while {self.spec.recbole_name} computes its "
                "training loss, so it cannot carry knowledge. Pick another layer "
                f"(kt train --model {self.spec.key} --list-layers)."
            )
        return seen[0]

    def hooked_rows(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model loss, the hooked tensor, and the internal id of the user (or item) of each row."""
        assert self.capture is not None and self.inputs.knowledge is not None
        field = self.parts.user_field if self.inputs.knowledge.entity == "user" else self.parts.item_field
        with self.capture.recording() as seen:
            loss = self.model.calculate_loss(batch)
        loss = sum(loss) if isinstance(loss, tuple) else loss
        hidden = seen[0]
        return loss, hidden, align_rows(hidden.shape[0], batch[field], str(self.layer))

    def batch_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
        """Model loss, reconstruction loss (None without knowledge), rows used and rows masked."""
        if self.capture is None or self.targets is None or self.recon is None:
            loss = self.model.calculate_loss(batch)
            return (sum(loss) if isinstance(loss, tuple) else loss), None, 0, 0
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

    def trainable(self) -> list[torch.nn.Parameter]:
        """What the optimizer updates: the model, plus the projection head while the hook is attached."""
        head = list(self.recon.parameters()) if self.recon is not None and self.capture is not None else []
        return list(self.model.parameters()) + head

    def detach_knowledge(self) -> None:
        """Remove the hook: the fine-tune phase and inference run the unmodified model."""
        if self.capture is not None:
            self.capture.remove()
            self.capture = None


def survey_model(store_path: Path, config: TrainConfig) -> tuple[list[LayerInfo], str]:
    """Every module of the configured model with the shapes it sees on one training batch."""
    with Store.open(store_path) as store:
        inputs = read_inputs(store, config, with_knowledge=False)
        folder = store.artifacts_dir / "survey"
    session = Session(config, inputs, folder)
    batch = next(iter(session.parts.train_data)).to(session.parts.device)
    layers = survey_layers(session.model, lambda: session.model.calculate_loss(batch))
    return layers, session.spec.default_layer
