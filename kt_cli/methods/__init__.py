"""The registry of methods: how knowledge enters a model during training.

A method is one module with a :class:`~kt_cli.methods.base.Method` subclass and one entry here. The entry
is light (no torch) so the CLI can check a command line before anything heavy loads: which tasks the
method serves, which knowledge options it reads, and its own options (``--method-set KEY=VALUE``) with
their types and defaults. The training loop (training/trainer.py) is the same for every method.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from kt_cli.errors import NotFoundError, UsageError


@dataclass(frozen=True)
class Option:
    """A method option: its default (whose type the value must have) and what it does."""

    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()  # the values a text option takes


@dataclass(frozen=True)
class MethodSpec:
    """What the CLI and the config need to know about a method without importing it."""

    key: str
    summary: str
    tasks: tuple[str, ...]
    knowledge: tuple[str, ...]  # the TrainConfig fields naming its knowledge sets
    implementation: str  # "module:Class", imported when a run is built
    options: dict[str, Option] = field(default_factory=dict)
    at_inference: bool = False  # the method feeds the model when it scores (KAR), so evaluation rebuilds it
    feature_slots: bool = False  # the model gets one slot feature field per knowledge entity (KAR)
    histories: bool = False  # the method reads each user's training items in time order (LEARN)
    models: tuple[str, ...] = ()  # the only models it trains (LEARN: its own towers); empty: any of its tasks'
    teacher: bool = False  # it reads a teacher (--teacher RUN or --teacher-file FILE)
    partner: bool = False  # it trains a partner run along (--partner RUN)

    def load(self) -> type:
        module, _, name = self.implementation.partition(":")
        return getattr(importlib.import_module(module), name)

    def check_options(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with unknown keys refused and each value of its default's type and range."""
        unknown = sorted(set(values) - set(self.options))
        if unknown:
            known = ", ".join(f"{k} (default {o.default})" for k, o in self.options.items()) or "none"
            raise UsageError(f"Method '{self.key}' has no option {', '.join(unknown)}. Its options: {known}.")
        checked = {}
        names = {int: "whole number", float: "number", bool: "true or false", str: "text"}
        for key, value in values.items():
            option = self.options[key]
            kind = type(option.default)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if type(value) is not kind:
                raise UsageError(f"--method-set {key} takes a {names.get(kind, kind.__name__)} ({option.help}), "
                                 f"not {value!r}.")
            if option.minimum is not None and value < option.minimum:
                raise UsageError(f"--method-set {key} must be at least {option.minimum:g}, not {value}.")
            if option.maximum is not None and value > option.maximum:
                raise UsageError(f"--method-set {key} must be at most {option.maximum:g}, not {value}.")
            if option.choices and value not in option.choices:
                raise UsageError(f"--method-set {key} must be one of {', '.join(option.choices)}, not {value!r}.")
            if value != option.default:  # a default spelled out is the same run as one left out
                checked[key] = value
        return checked


METHODS: dict[str, MethodSpec] = {
    spec.key: spec
    for spec in (
        MethodSpec("none", "the baseline: the model's own loss, same schedule", ("ranking", "ctr", "sequential"), (),
                   "kt_cli.methods.base:Method"),
        MethodSpec("llmkt", "LLM-KT: reconstruct knowledge vectors in a hooked layer, then fine-tune without it",
                   ("ranking", "ctr", "sequential"), ("knowledge",), "kt_cli.methods.llmkt:LlmKt"),
        MethodSpec(
            "kar", "KAR: user and item knowledge through a hybrid-expert adaptor, as extra feature fields",
            ("ctr",), ("user_knowledge", "item_knowledge"), "kt_cli.methods.kar:Kar",
            {"shared_experts": Option(2, "experts shared by both knowledge types", 1),
             "dedicated_experts": Option(6, "experts of each knowledge type", 0),
             "expert_hidden": Option(128, "hidden width of each expert MLP", 1),
             "expert_out": Option(32, "output width of each expert MLP", 1),
             "dropout": Option(0.0, "dropout inside the experts", 0, 0.9)},
            at_inference=True, feature_slots=True,
        ),
        MethodSpec("learn", "LEARN: twin towers over frozen LLM item content embeddings, aligned on user histories",
                   ("ranking",), ("item_knowledge",), "kt_cli.methods.learn:LearnMethod",
                   at_inference=True, histories=True, models=("learn",)),
        MethodSpec(
            "kd", "one-way distillation: a teacher's top-n items per user (a kt run or a file) taught to the student",
            ("ranking", "sequential"), (), "kt_cli.methods.kd:Distill",
            {"top_n": Option(20, "items of each user's teacher list", 1, 1000),
             "temperature": Option(1.0, "softmax temperature of the KL term", 0.01),
             "weight": Option(0.5, "lambda: loss = model_loss + lambda * distill_loss", 0),
             "loss": Option("kl", "kl (temperature-scaled KL over the list) or bce (DLLM2Rec's ranking "
                                  "distillation)", choices=("kl", "bce")),
             "adaptive": Option(True, "sample-wise weights: teacher confidence, target rank, agreement")},
            teacher=True,
        ),
        MethodSpec(
            "llmd4rec", "LLMD4Rec's mutual distillation: the model and an LLM-side partner run (e.g. LEARN) teach "
            "each other in turns", ("sequential",), (), "kt_cli.methods.mutual:Mutual",
            {"round_epochs": Option(1, "epochs of each turn (the CRM's, then the partner's)", 1),
             "temperature": Option(1.0, "softmax temperature of both KL terms", 0.01),
             "weight": Option(0.5, "lambda: loss = own loss + lambda * KL toward the other", 0),
             "adaptive": Option(True, "sample-wise weights: the teacher's confidence and its probability of the "
                                      "target")},
            histories=True, partner=True,
        ),
    )
}


def get_method(name: str) -> MethodSpec:
    """Look a method up case-insensitively; an unknown name lists the valid ones."""
    if name.strip().lower() not in METHODS:
        raise NotFoundError("method", name, METHODS)
    return METHODS[name.strip().lower()]
