"""RecBole's known settings and their types, read from its own property files without importing it.

RecBole reads an unknown key as None and a wrong type fails deep inside training (``'<=' not supported
between 'float' and 'str'``), after the run was created. kt checks every ``--set``/``--config`` key against
the defaults RecBole ships (``properties/overall.yaml``, ``properties/dataset/sample.yaml`` and the model's
``properties/model/<Model>.yaml``) and every value against the type of its default, before any run is
created and before torch or RecBole are imported (reading three small YAML files takes milliseconds).
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import re
from pathlib import Path
from typing import Any

import yaml

from kt_cli.errors import UsageError

# Keys RecBole's code reads without a default in its property files.
EXTRA_KEYS = frozenset({"normalize_all", "normalize_field", "threshold", "numerical_features",
                        "discretization", "alias_of_user_id", "alias_of_item_id", "alias_of_entity_id",
                        "alias_of_relation_id", "preload_weight"})


@functools.lru_cache(maxsize=1)
def _properties() -> Path:
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("RecBole is not installed; reinstall kt (pip install -e .).")
    return Path(next(iter(spec.submodule_search_locations))) / "properties"


class _RecBoleLoader(yaml.SafeLoader):
    """YAML as RecBole reads its property files: ``1e-05`` is a float (plain YAML 1.1 wants ``1.0e-05``)."""


_RecBoleLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_RecBoleLoader) or {}
    return data if isinstance(data, dict) else {}


@functools.lru_cache(maxsize=None)
def known_settings(recbole_model: str) -> dict[str, Any]:
    """Every key RecBole knows for this model, with its default value (None where it has none)."""
    root = _properties()
    known: dict[str, Any] = {key: None for key in EXTRA_KEYS}
    for path in (root / "overall.yaml", root / "dataset" / "sample.yaml", root / "model" / f"{recbole_model}.yaml"):
        known.update(_load(path))
    return known


def _coerce(key: str, value: Any, default: Any) -> Any:
    """``value`` as the type of ``default``; YAML reads 1e-3 as a string, so numeric strings are parsed."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif isinstance(default, (int, float)):
        candidate = value
        if isinstance(value, str):
            try:
                candidate = float(value)
            except ValueError:
                candidate = value
        if isinstance(candidate, (int, float)) and not isinstance(candidate, bool):
            if isinstance(default, int) and not isinstance(default, bool):
                if float(candidate).is_integer():
                    return int(candidate)
                expected = "a whole number"
            else:
                return float(candidate)
        else:
            expected = "a whole number" if isinstance(default, int) else "a number"
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        expected = "text"
    elif isinstance(default, list):
        if isinstance(value, list):
            return value
        expected = "a list such as [64, 64]"
    elif isinstance(default, dict):
        if isinstance(value, dict):
            return value
        expected = "a mapping such as {key: value}"
    else:
        return value
    return _refuse(key, value, expected)


def _refuse(key: str, value: Any, expected: str) -> None:
    raise UsageError(f"RecBole setting {key}={value!r} has the wrong type: {key} takes {expected}. "
                     f"Fix the value in --set {key}=... or the --config file.")


# Values RecBole accepts by type but cannot train with; checked with the types, before a run exists.
POSITIVE = frozenset({"learning_rate", "train_batch_size", "eval_batch_size", "embedding_size", "hidden_size",
                      "latent_dimension", "mlp_embedding_size", "n_layers", "n_heads", "inner_size",
                      "stopping_step", "eval_step", "MAX_ITEM_LIST_LENGTH", "max_history", "logit_scale"})
NON_NEGATIVE = frozenset({"weight_decay", "reg_weight", "anneal_cap", "total_anneal_steps"})
PROBABILITIES = frozenset({"dropout_prob", "hidden_dropout_prob", "attn_dropout_prob", "drop_rate", "dropout",
                           "mess_dropout", "node_dropout"})
CHOICES = {"learner": ("adam", "sgd", "adagrad", "rmsprop"),  # the optimizers kt's trainer builds
           "item_tower": ("shared", "mlp"), "softmax_items": ("trained", "all")}  # LEARN's item tower and fine-tune


def _check_range(key: str, value: Any) -> None:
    """Refuse values of the same type that no training can use (a negative rate, a zero batch)."""
    if isinstance(value, bool) or value is None:
        return
    numbers = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (int, float)) for v in numbers):
        if key in CHOICES and str(value).lower() not in CHOICES[key]:
            raise UsageError(f"RecBole setting {key}={value!r} is not one kt can train with. Valid: "
                             f"{', '.join(CHOICES[key])}.")
        return
    if key in POSITIVE and min(numbers) <= 0:
        raise UsageError(f"RecBole setting {key}={value!r} must be positive.")
    if key in NON_NEGATIVE and min(numbers) < 0:
        raise UsageError(f"RecBole setting {key}={value!r} must be zero or more.")
    if key in PROBABILITIES and not all(0 <= v < 1 for v in numbers):
        raise UsageError(f"RecBole setting {key}={value!r} is a probability: it must be at least 0 and below 1.")


def check_settings(recbole_model: str, model_key: str, settings: dict[str, Any], *,
                   allow_unknown: bool = False, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings with values coerced to their defaults' types; unknown keys and wrong types refused.
    ``defaults``: a kt model's own settings (RecBole has no property file for it)."""
    known = {**known_settings(recbole_model), **(defaults or {})}
    checked: dict[str, Any] = {}
    for key, value in settings.items():
        if key not in known:
            if allow_unknown:
                checked[key] = value
                continue
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UsageError(
                f"RecBole setting '{key}' is not one RecBole knows for {recbole_model} (it would be read as "
                f"None and ignored).{hint} Known keys are in RecBole's properties/overall.yaml and "
                f"properties/model/{recbole_model}.yaml; `kt train --model {model_key} --list-settings` lists "
                "them. Pass --allow-unknown-settings if your RecBole version reads it.")
        checked[key] = _coerce(key, value, known[key])
        _check_range(key, checked[key])
    return checked
