"""Shared fixtures: a real DuckDB store in a temporary folder, a one-thread torch, a real llama.cpp server."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    """Tests use one CPU thread: deterministic and fast on a contended 2-core machine."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "kt.duckdb"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A llama.cpp server (SmolLM2, one thread) on a free port of 127.0.0.1; its /v1 URL."""
    from kt_cli.profiles.models import packaged_model

    gguf = packaged_model("smollm2-135m").path(Path("unused"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "2048", "--n_threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("llama.cpp server did not start within 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
