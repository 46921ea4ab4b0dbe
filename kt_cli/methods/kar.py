"""KAR: user and item knowledge as extra feature fields of a CTR model, through a hybrid-expert adaptor.

Knowledge vectors (user profiles: preference reasoning; item profiles: facts; each embedded by a text
encoder) pass through KAR's hybrid-expert adaptor: for each knowledge type, a softmax gate over S experts
shared by both types and D experts of its own, each an MLP [hidden, out] (defaults 2, 6, [128, 32], as KAR's
code). Its output becomes a feature field of the backbone, trained jointly with it (BCE), the LLM never.

The seam, with no edit to RecBole and no copy of its models: the labelled export gives KAR runs one *slot*
token field per knowledge entity (``kar_user``, ``kar_item``; datasets/features.py). RecBole embeds it like
any other field; a forward hook on the model's field embedding table replaces the slot's embedding with
``Linear(out, embedding_size)`` of the adaptor output for the row's user (or item), so it reaches every
part that reads field embeddings (DCN: the cross and deep input; DeepFM: its DNN). A second hook does the
same on the first-order table with ``Linear(out, 1)`` (DeepFM's, WideDeep's first-order term). Modules the
model registry names in ``kar_hidden_from`` get the slots zeroed at their input (DeepFM's FM term: KAR
keeps knowledge out of the second-order interactions). Users or items without a vector get a learned
default field value instead, and are counted.

The adaptor runs once per distinct entity in the batch (a batch of 2,048 samples has far fewer distinct
users and items), its experts batched into two einsums.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from kt_cli.datasets.features import SLOTS
from kt_cli.errors import TrainingError
from kt_cli.methods import METHODS
from kt_cli.methods.base import Method
from kt_cli.training.config import KNOWLEDGE_ENTITY
from kt_cli.training.hooks import LayerRef, find_module
from kt_cli.training.transfer import KnowledgeTargets


class HybridExperts(nn.Module):
    """KAR's adaptor: per knowledge type, a softmax gate over the shared experts and its dedicated ones."""

    def __init__(self, kinds: list[str], dim: int, shared: int, dedicated: int, hidden: int, out: int,
                 dropout: float) -> None:
        super().__init__()
        total = shared + dedicated * len(kinds)
        self.w1 = nn.Parameter(torch.empty(total, dim, hidden))
        self.b1 = nn.Parameter(torch.empty(total, hidden))
        self.w2 = nn.Parameter(torch.empty(total, hidden, out))
        self.b2 = nn.Parameter(torch.empty(total, out))
        for weight, bias, fan_in in ((self.w1, self.b1, dim), (self.w2, self.b2, hidden)):
            bound = 1 / math.sqrt(fan_in)  # nn.Linear's default initialisation, expert by expert
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)
        self.gates = nn.ModuleDict({kind: nn.Linear(dim, shared + dedicated) for kind in kinds})
        self.experts = {kind: list(range(shared)) + list(range(shared + i * dedicated, shared + (i + 1) * dedicated))
                        for i, kind in enumerate(kinds)}
        self.dropout = dropout

    def forward(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        index = self.experts[kind]
        hidden = F.relu(torch.einsum("nd,edh->neh", x, self.w1[index]) + self.b1[index])
        hidden = F.dropout(hidden, self.dropout, self.training)
        outputs = torch.einsum("neh,eho->neo", hidden, self.w2[index]) + self.b2[index]
        gate = torch.softmax(self.gates[kind](x), dim=-1)
        return (gate.unsqueeze(-1) * outputs).sum(dim=1)


class Kar(Method):
    def __init__(self, session) -> None:
        super().__init__(session)
        self.knowledge = {KNOWLEDGE_ENTITY[option]: k for option, k in session.inputs.knowledge.items()}
        self.targets: dict[str, KnowledgeTargets] = {}
        self.coverage: dict[str, int] = {}
        self.modules: nn.ModuleDict | None = None
        self.handles: list[Any] = []
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def attach(self) -> None:
        session, model = self.session, self.session.model
        if not self.knowledge:
            raise TrainingError("KAR needs --user-knowledge and/or --item-knowledge.")
        if not hasattr(model, "token_embedding_table"):
            raise TrainingError(f"{session.spec.recbole_name} has no field embedding table for KAR's fields.")
        widths = {entity: k.vectors.shape[1] for entity, k in self.knowledge.items()}
        if len(set(widths.values())) > 1:
            raise TrainingError(
                "KAR's shared experts read both knowledge types, so the user and item sets must have the same "
                f"width; here {', '.join(f'{e} {w}' for e, w in widths.items())}. Embed both with the same "
                "encoder (kt embed --profiles ... --encoder), or reduce both to one --dim (kt reduce).")
        for entity, knowledge in self.knowledge.items():
            internal = session.parts.internal_ids(entity, knowledge.ids)
            n_entities = session.parts.num(entity)
            self.targets[entity] = KnowledgeTargets.build(internal, knowledge.vectors, n_entities, session.parts.device)
            matched = int((internal > 0).sum())
            if matched == 0:
                raise TrainingError(f"None of the {len(knowledge.ids)} ids in knowledge set '{knowledge.name}' is a "
                                    f"{entity} of dataset {session.config.dataset}; was it made for another dataset?")
            self.coverage.update({f"{entity}_vectors": len(knowledge.ids), f"{entity}_matched": matched,
                                  f"{entity}s_without_vector": n_entities - 1 - matched})
        options = {k: o.default for k, o in METHODS["kar"].options.items()} | session.config.method_options
        size = model.embedding_size
        kinds = list(self.knowledge)
        self.modules = nn.ModuleDict({
            "adaptor": HybridExperts(kinds, next(iter(widths.values())), options["shared_experts"],
                                     options["dedicated_experts"], options["expert_hidden"], options["expert_out"],
                                     options["dropout"]),
            "field": nn.ModuleDict({e: nn.Linear(options["expert_out"], size) for e in kinds}),
            "first": nn.ModuleDict({e: nn.Linear(options["expert_out"], 1) for e in kinds}),
            "default_field": nn.ParameterDict({e: nn.Parameter(torch.zeros(size)) for e in kinds}),
            "default_first": nn.ParameterDict({e: nn.Parameter(torch.zeros(1)) for e in kinds}),
        }).to(session.parts.device)
        self._hook(model)

    def _hook(self, model: nn.Module) -> None:
        names = model.token_field_names
        slots = {e: names.index(SLOTS[e]) for e in self.knowledge}
        id_columns = {e: names.index(self.session.parts.user_field if e == "user" else self.session.parts.item_field)
                      for e in self.knowledge}

        def replace(output: torch.Tensor, token_fields: torch.Tensor, head: str) -> torch.Tensor:
            output = output.clone()
            for entity, slot in slots.items():
                ids = token_fields[:, id_columns[entity]]
                output[:, slot, :] = self._field(entity, ids, head)
            return output

        self.handles.append(model.token_embedding_table.register_forward_hook(
            lambda module, args, output: replace(output, args[0], "field")))
        first = getattr(getattr(model, "first_order_linear", None), "token_embedding_table", None)
        if first is not None:
            self.handles.append(first.register_forward_hook(
                lambda module, args, output: replace(output, args[0], "first")))
        offset = len(getattr(model, "token_seq_field_names", []))  # token fields follow token-sequence fields

        def hide(module: nn.Module, args: tuple) -> tuple:
            fields = args[0].clone()
            fields[:, [offset + s for s in slots.values()], :] = 0
            return (fields, *args[1:])

        for path in self.session.spec.kar_hidden_from:
            self.handles.append(find_module(model, LayerRef(path, "input")).register_forward_pre_hook(hide))

    def _field(self, entity: str, ids: torch.Tensor, head: str) -> torch.Tensor:
        """The slot's value for each row: the adaptor's output mapped to the field (or first-order) width, a
        learned default for entities without a vector. The adaptor runs once per distinct id; the field pass
        leaves its output for the first-order pass of the same forward."""
        assert self.modules is not None
        cached = self._cache.pop(entity, None)
        if cached is not None and head == "first" and torch.equal(cached[0], ids):
            knowledge = cached[1]
        else:
            unique, inverse = torch.unique(ids, return_inverse=True)
            knowledge = self.modules["adaptor"](entity, self.targets[entity].vectors[unique])[inverse]
            if head == "field":
                self._cache[entity] = (ids, knowledge)
        value = self.modules[head][entity](knowledge)
        default = self.modules[f"default_{head}"][entity]
        return torch.where(self.targets[entity].present[ids].unsqueeze(-1), value, default)

    def parameters(self) -> list[nn.Parameter]:
        return list(self.modules.parameters()) if self.modules is not None else []

    def state_dict(self) -> dict[str, Any] | None:
        return self.modules.state_dict() if self.modules is not None else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.modules is not None and state is not None:
            self.modules.load_state_dict(state)

    def start_phase(self, phase: str) -> None:
        self._cache.clear()

    def train(self, mode: bool) -> None:
        if self.modules is not None:  # the experts' dropout is off whenever the model scores
            self.modules.train(mode)

    def summary(self) -> dict[str, Any]:
        return {"coverage": self.coverage, "adaptor_parameters": sum(p.numel() for p in self.parameters()),
                "knowledge_fields": [SLOTS[e] for e in self.knowledge]}
