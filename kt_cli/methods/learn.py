"""The ``learn`` method: gives LEARN's twin towers (models/learn.py) their content and histories, and its phases.

LEARN's knowledge is the model's only input, not an addition to an ID model: the item set
(``--item-knowledge``: a frozen LLM's embeddings of item texts, or any item set) becomes the towers' fixed
content table, and each user's training items in time order their histories. Items without a vector get one
learned vector, counted in the summary; an item that is also cold (never in training) then has nothing to
be told apart by, so the summary counts those too. Phase one (``align``) trains on the in-batch contrastive
loss; the fine-tune phase switches to a softmax over all items with the user's other training items masked
(``--finetune-epochs 0`` leaves it out).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from kt_cli.errors import TrainingError
from kt_cli.methods.base import Method
from kt_cli.training.transfer import KnowledgeTargets


class LearnMethod(Method):
    first_phase = "align"

    def __init__(self, session) -> None:
        super().__init__(session)
        self.knowledge = session.inputs.knowledge["item_knowledge"]
        self.coverage: dict[str, int] = {}

    def attach(self) -> None:
        session = self.session
        parts = session.parts
        internal = parts.internal_ids("item", self.knowledge.ids)
        content = KnowledgeTargets.build(internal, self.knowledge.vectors, parts.num("item"), parts.device)
        matched = int((internal > 0).sum())
        if matched == 0:
            raise TrainingError(f"None of the {len(self.knowledge.ids)} ids in knowledge set '{self.knowledge.name}' "
                                f"is an item of dataset {session.config.dataset}; was it made for another dataset?")
        histories = session.inputs.histories
        users = parts.internal_ids("user", histories["user_id"].tolist())
        items = parts.internal_ids("item", histories["item_id"].tolist())
        session.model.set_content(content.vectors, content.present, users, items)
        cold = session.item_train_counts() == 0
        missing = ~content.present.cpu().numpy()
        missing[0] = cold[0] = False  # RecBole's padding item
        self.coverage = {"item_vectors": len(self.knowledge.ids), "item_matched": matched,
                         "items_without_vector": int(missing.sum()),
                         "cold_items_without_vector": int((missing & cold).sum()),
                         "targets": int(len(users) - len(np.unique(users))),
                         "chunks": len(session.model.chunk_users)}

    def batches(self) -> Iterator[Any]:
        return self.session.model.batches()

    def start_phase(self, phase: str) -> None:
        self.session.model.loss_mode = "full" if phase == "finetune" else "contrastive"

    def summary(self) -> dict[str, Any]:
        model = self.session.model
        return {"coverage": self.coverage, "content_dim": int(model.content.shape[1]),
                "tower_parameters": sum(p.numel() for p in model.parameters()),
                "item_tower": model.item_tower, "softmax_items": model.softmax_items,
                "logit_scale": float(model.log_scale.exp())}
