"""Typed rows the store returns: what a dataset, knowledge set, profile set or run is."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class DatasetRow:
    """A registered dataset as the store describes it."""

    name: str
    source: str
    origin: str | None
    filters: dict[str, Any]
    fingerprint: str
    n_users: int
    n_items: int
    n_interactions: int
    created_at: datetime


@dataclass(frozen=True)
class KnowledgeSetRow:
    """A named set of vectors, one per user or item, with where it came from."""

    dataset: str
    name: str
    entity: str
    dim: int
    n_vectors: int
    source: str
    method: str | None
    params: dict[str, Any]
    parent: str | None
    created_at: datetime


@dataclass(frozen=True)
class RunRow:
    """A training run: its full config, status and summary."""

    name: str
    dataset: str
    split_id: str
    model: str
    knowledge: str | None
    config: dict[str, Any]
    config_hash: str
    seed: int
    status: str
    created_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any]
    versions: dict[str, Any]
    error: str | None

    @property
    def knowledge_sets(self) -> list[str]:
        """Every knowledge set the run read (LLM-KT's one, or KAR's user and item sets)."""
        return [self.config[k] for k in ("knowledge", "user_knowledge", "item_knowledge") if self.config.get(k)]

    @property
    def knowledge_label(self) -> str:
        """``set`` for LLM-KT, ``kar: users+items`` for another method, ``-`` for a baseline."""
        sets = "+".join(self.knowledge_sets) or "-"
        return f"{self.config['method']}: {sets}" if self.config.get("method") else sets


@dataclass(frozen=True)
class ProfileSetRow:
    """A named set of LLM profiles (one text per user or item) and how they were asked for."""

    dataset: str
    name: str
    entity: str
    template: str
    template_hash: str
    rules: dict[str, Any]
    backend: str
    model: str
    params: dict[str, Any]
    n_profiles: int
    n_missing: int
    created_at: datetime


RESPONSE_COLUMNS = ("key", "version", "backend", "model", "params", "prompt_hash", "text", "tokens_in",
                    "tokens_out", "seconds", "finish_reason", "created_at")


def _loads(value: str | None) -> Any:
    return json.loads(value) if value else {}


