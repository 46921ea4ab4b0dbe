"""Integration: ``kt profile --llm openai`` against a real llama.cpp server (SmolLM2, 127.0.0.1, 1 thread).

A counting proxy sits between kt and the server so the tests can see every request kt makes, kill kt
with SIGKILL after a given number of answers, and check that the rerun asks only for what is missing.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from kt_cli.store import Store
from tests.conftest import free_port

pytestmark = pytest.mark.server
KT = [str(Path(sys.executable).parent / "kt")]


class CountingProxy:
    """Forwards POSTs and GETs to ``target``, recording each chat prompt after its answer is sent."""

    def __init__(self, target: str) -> None:
        self.answered: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                upstream = httpx.request(method, target.rsplit("/v1", 1)[0] + self.path, content=body,
                                         headers={"content-type": "application/json"}, timeout=300)
                self.send_response(upstream.status_code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)
                self.wfile.flush()
                if method == "POST":
                    proxy.answered.append(json.loads(body)["messages"][-1]["content"])

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self._forward("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._forward("POST")

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()


def _profile_cmd(url: str, store: Path, tmp_path: Path, limit: int) -> list[str]:
    empty = tmp_path / "no_profiles_cache"
    empty.mkdir(exist_ok=True)
    return [*KT, "profile", "--llm", "openai", "--base-url", url, "--model", "smollm2-135m", "--limit", str(limit),
            "--concurrency", "1", "--max-tokens", "48", "--store", str(store), "--profiles-cache", str(empty),
            "--json"]


def test_profiles_from_a_real_server_then_a_rerun_makes_no_calls(server: str, tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    first = subprocess.run(_profile_cmd(server, store, tmp_path, 3), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["calls"], report["profiles"], report["failures"]) == (3, 3, 0)
    assert report["tokens_in"] > 100 and report["tokens_out"] > 3
    again = json.loads(subprocess.run(_profile_cmd(server, store, tmp_path, 3), capture_output=True, text=True,
                                      timeout=300, check=True).stdout)
    assert (again["calls"], again["cache_hits"]) == (0, 3)
    with Store.open(store) as db:
        profiles = db.profiles("ml-100k", report["set"])
    assert len(profiles) == 3 and profiles["text"].str.len().min() > 0
    assert (profiles["model"] == "smollm2-135m").all() and (profiles["tokens_out"] > 0).all()


def test_kill_9_mid_run_loses_nothing_and_the_rerun_asks_only_the_rest(server: str, tmp_path: Path) -> None:
    proxy = CountingProxy(server)
    store, limit = tmp_path / "kt.duckdb", 6
    try:
        run = subprocess.Popen(_profile_cmd(proxy.url, store, tmp_path, limit), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        while len(proxy.answered) < 3 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.05)
        run.kill()  # SIGKILL: no cleanup code runs
        run.wait()
        with Store.open(store) as db:
            kept, _ = db.response_counts()
        assert 2 <= kept < limit
        before = len(proxy.answered)
        rerun = subprocess.run(_profile_cmd(proxy.url, store, tmp_path, limit), capture_output=True, text=True,
                               timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        report = json.loads(rerun.stdout)
        asked_again = proxy.answered[before:]
    finally:
        proxy.close()
    assert report["calls"] == limit - kept == len(asked_again)
    assert report["profiles"] == limit
    with Store.open(store) as db:
        assert db.response_counts() == (limit, 1)  # every prompt answered exactly once


def test_closed_port_is_one_clear_error(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    result = subprocess.run(_profile_cmd(closed, tmp_path / "kt.duckdb", tmp_path, 2), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "Cannot reach the LLM server" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_during_local_generation_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    """SIGINT while llama.cpp decodes in process: exit 130 with the resume hint, never a crash."""
    import signal

    store, limit = tmp_path / "kt.duckdb", 5
    cmd = [*KT, "profile", "--llm", "local", "--model", "smollm2-135m", "--limit", str(limit), "--max-tokens", "48",
           "--store", str(store), "--profiles-cache", str(tmp_path)]
    # A runner started in the background (nohup, CI) ignores SIGINT, and children inherit that.
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(8)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "Interrupted. Finished work is stored" in err and "Traceback" not in err
    rerun = json.loads(subprocess.run([*cmd, "--json"], capture_output=True, text=True, check=True,
                                      timeout=300).stdout)
    assert rerun["calls"] + rerun["cache_hits"] == limit == rerun["profiles"]
    with Store.open(store) as db:
        assert db.response_counts() == (limit, 1)
