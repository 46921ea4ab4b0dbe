"""Shared fixtures: a real DuckDB store in a temporary folder, and a one-thread torch."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    """Tests use one CPU thread: deterministic and fast on a contended 2-core machine."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "kt.duckdb"
