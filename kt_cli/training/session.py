"""A run's working set: the RecBole model on a stored split, with its knowledge targets and truth.

Training, evaluation and ``--list-layers`` all start from the same place, a :class:`Session`, so a
run is evaluated on exactly the split and id mapping it was trained on.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kt_cli.datasets.splits import ensure_split
from kt_cli.evaluation.ranking import Truth, build_truth, evaluate_users
from kt_cli.methods.base import Method
from kt_cli.store import Store
from kt_cli.training import recbole_adapter
from kt_cli.training.config import TrainConfig, check_inputs
from kt_cli.training.hooks import LayerInfo, survey_layers
from kt_cli.training.models import get_model_spec


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
    knowledge: dict[str, Knowledge]  # by config field: knowledge, user_knowledge, item_knowledge
    recbole: dict[str, Any] = field(default_factory=dict)  # the task's RecBole settings (labels, features)
    data: dict[str, Any] = field(default_factory=dict)  # what the task exported (label rule, features)
    histories: Any = None  # pandas DataFrame user_id, item_id: training items in time order (methods that read them)
    teacher: Any = None  # kd: knowledge.teachers.TeacherRanks; llmd4rec: the partner's Session (load_teacher)


def read_inputs(store: Store, config: TrainConfig, *, with_knowledge: bool = True) -> RunInputs:
    """Dataset, split (made on first use) exported for the task, and the knowledge sets the run reads."""
    sid = ensure_split(store, config.dataset, config.split_spec)
    data_path, recbole, data = config.task_spec.load().prepare(store, config, sid)
    knowledge = {}
    if with_knowledge:
        for option, row in check_inputs(store, config).items():
            ids, vectors = store.knowledge_vectors(config.dataset, row.name)
            knowledge[option] = Knowledge(row.name, row.entity, ids, vectors)
    histories = store.split_sequences(sid, max_part=0) if config.method_spec.histories else None
    return RunInputs(sid, data_path, store.split_rows(sid), knowledge, recbole, data, histories)


class Session:
    """A built RecBole model for one config, its task (labels, validation) and its method (knowledge)."""

    def __init__(self, config: TrainConfig, inputs: RunInputs, run_dir: Path) -> None:
        self.config = config
        self.inputs = inputs
        self.spec = get_model_spec(config.model)
        self.task = config.task_spec.load()
        config_dict = recbole_adapter.recbole_config_dict(
            inputs.data_path, run_dir, seed=config.seed, device=config.device,
            overrides={**self.spec.settings, **inputs.recbole, **config.recbole},
        )
        self.parts = recbole_adapter.build(self.spec, config_dict, config.seed)
        self.model = self.parts.model
        rows = inputs.split_rows
        self._users = self.parts.internal_ids("user", rows["user_id"])
        self._items = self.parts.internal_ids("item", rows["item_id"])
        self._parts = rows["part"].to_numpy()
        self.method: Method = config.method_spec.load()(self)

    def train_mode(self, mode: bool) -> None:
        """The model and the method's own modules in training (True) or inference mode, together."""
        self.model.train(mode)
        self.method.train(mode)

    def truth(self, part: int) -> Truth:
        return build_truth(self._users, self._items, self._parts, part)

    def n_train(self) -> dict[int, int]:
        """Training interactions per internal user id (for activity slices)."""
        train_users = self._users[self._parts == 0]
        ids, counts = np.unique(train_users, return_counts=True)
        return dict(zip(ids.tolist(), counts.tolist()))

    def item_train_counts(self) -> np.ndarray:
        """Training interactions per internal item id (0 for an item no one trained on: a cold item)."""
        return np.bincount(self._items[self._parts == 0], minlength=self.parts.num("item"))

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
        """Let the method set itself up (hook, targets, adaptor) off the record: random states are restored
        afterwards, so a run with knowledge sees the same initial weights, batches and negatives as the
        baseline with the same seed and the paired comparison differs in the knowledge alone."""
        state = self.rng_state()
        try:
            self.method.attach()
        finally:
            self.restore_rng(state)

    def batch_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
        """Model loss, the method's extra loss (None without one), rows used and rows masked."""
        return self.method.batch_loss(batch)

    def trainable(self) -> list[torch.nn.Parameter]:
        """What the optimizer updates: the model, plus the method's own parameters in this phase."""
        return list(self.model.parameters()) + self.method.parameters()


def load_teacher(store_path: Path, config: TrainConfig) -> Any:
    """The teacher's lists for a method that reads one (kd), else None; checked before a run exists. A teacher
    run is scored in its own session, so this is its own store visit."""
    if not (config.method_spec.teacher or config.method_spec.partner):
        return None
    from kt_cli.knowledge.teachers import partner_session, read_teacher_file, teacher_from_run
    from kt_cli.methods import METHODS

    top_n = int(config.method_options.get("top_n", METHODS["kd"].options["top_n"].default))
    with Store.open(store_path) as store:
        check_inputs(store, config)
        sid = ensure_split(store, config.dataset, config.split_spec)
        users, items = store.entity_ids(config.dataset, "user"), store.entity_ids(config.dataset, "item")
    if config.partner is not None:
        return partner_session(store_path, config.partner, sid)
    if config.teacher is not None:
        return teacher_from_run(store_path, config.teacher, sid, top_n)
    return read_teacher_file(Path(config.teacher_file), users, items, top_n)


def survey_model(store_path: Path, config: TrainConfig) -> tuple[list[LayerInfo], str]:
    """Every module of the configured model with the shapes it sees on one training batch."""
    with Store.open(store_path) as store:
        inputs = read_inputs(store, config, with_knowledge=config.method_spec.at_inference)
        folder = store.artifacts_dir / "survey"
    session = Session(config, inputs, folder)
    if config.method_spec.at_inference:  # the model cannot score without what the method gives it (LEARN)
        session.attach_knowledge()
    batch = next(iter(session.method.batches())).to(session.parts.device)
    layers = survey_layers(session.model, lambda: session.model.calculate_loss(batch))
    return layers, session.spec.default_layer
