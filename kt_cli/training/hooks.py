"""Capture an intermediate tensor of a model, by module path, without changing what it computes.

A layer is named ``PATH[:input|:output]``: ``PATH`` is the dotted module path as in
``model.named_modules()`` (``decoder``, ``mlp_layers``, ``encoder.1``), ``:output`` (the default) is
what the module returns, ``:input`` its first positional argument. A module returning a tuple is read at
its first element (PyTorch's recurrent layers return ``(output, state)``); one returning a list at its
last (RecBole's transformer encoders return every layer's output, the deepest last). The hooks only
observe: they return ``None``, so the model's forward pass is untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from kt_cli.errors import NotFoundError, UsageError

SIDES = ("input", "output")


@dataclass(frozen=True)
class LayerRef:
    """A parsed ``PATH[:side]`` layer name."""

    path: str
    side: str = "output"

    @classmethod
    def parse(cls, text: str) -> LayerRef:
        path, _, side = text.partition(":")
        side = side or "output"
        if side not in SIDES:
            raise UsageError(f"Layer '{text}': the part after ':' must be 'input' or 'output', not '{side}'.")
        return cls(path, side)

    def __str__(self) -> str:
        return f"{self.path}:{self.side}"


def find_module(model: nn.Module, ref: LayerRef) -> nn.Module:
    """The module at ``ref.path``; unknown paths list the valid ones."""
    modules = dict(model.named_modules())
    if not ref.path or ref.path not in modules:
        valid = [name for name in modules if name]
        raise NotFoundError(
            "layer", ref.path, valid,
            hint="See each layer's shapes with: kt train --model MODEL --list-layers",
        )
    return modules[ref.path]


def _first_tensor(value: object) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], torch.Tensor):
        return value[-1]
    if isinstance(value, tuple) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


class LayerCapture:
    """Records the tensor a layer sees on each call while enabled; gradients flow through it."""

    def __init__(self, model: nn.Module, ref: LayerRef) -> None:
        self.ref = ref
        self.tensors: list[torch.Tensor] = []
        self.enabled = False
        module = find_module(model, ref)
        if ref.side == "output":
            self._handle = module.register_forward_hook(self._on_output)
        else:
            self._handle = module.register_forward_pre_hook(self._on_input)

    def _on_output(self, module: nn.Module, args: tuple, output: object) -> None:
        self._record(_first_tensor(output))

    def _on_input(self, module: nn.Module, args: tuple) -> None:
        self._record(_first_tensor(args))

    def _record(self, tensor: torch.Tensor | None) -> None:
        if self.enabled and tensor is not None:
            self.tensors.append(tensor)

    @contextmanager
    def recording(self) -> Iterator[list[torch.Tensor]]:
        """Capture during the ``with`` body only (e.g. one ``calculate_loss`` call)."""
        self.tensors = []
        self.enabled = True
        try:
            yield self.tensors
        finally:
            self.enabled = False

    def remove(self) -> None:
        self._handle.remove()


@dataclass(frozen=True)
class LayerInfo:
    """One row of ``--list-layers``: a module, its type, and the shapes it saw on a dry batch."""

    path: str
    kind: str
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None
    parameters: int


def survey_layers(model: nn.Module, run_batch: Callable[[], object]) -> list[LayerInfo]:
    """Run one batch with a recording hook on every module; report the shapes each one saw."""
    seen_in: dict[str, tuple[int, ...]] = {}
    seen_out: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, module in model.named_modules():
        if not name:
            continue

        def pre(mod: nn.Module, args: tuple, name: str = name) -> None:
            tensor = _first_tensor(args)
            if tensor is not None and name not in seen_in:
                seen_in[name] = tuple(tensor.shape)

        def post(mod: nn.Module, args: tuple, out: object, name: str = name) -> None:
            tensor = _first_tensor(out)
            if tensor is not None and name not in seen_out:
                seen_out[name] = tuple(tensor.shape)

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    try:
        with torch.no_grad():
            run_batch()
    finally:
        for handle in handles:
            handle.remove()
    return [
        LayerInfo(name, type(module).__name__, seen_in.get(name), seen_out.get(name),
                  sum(p.numel() for p in module.parameters()))
        for name, module in model.named_modules()
        if name
    ]
