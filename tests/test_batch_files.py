"""Batch inference files: ``kt profile --batch-file`` / ``--import-batch``.

The results file of the round trip is written by a real llama.cpp server (SmolLM2, 127.0.0.1) through a small
driver that does what OpenAI's Batch API and vLLM's run-batch do: POST each request's body, write one output
line per request. Malformed and partial files are made by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kt_cli.profiles.batch import import_batch_file
from kt_cli.profiles.generate import ProfileJob, build_requests
from kt_cli.profiles.llm import Sampling
from kt_cli.profiles.prompts import load_template
from kt_cli.store import Store

KT = [str(Path(sys.executable).parent / "kt")]
MODEL = "smollm2"


def _kt(*args: str, store: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KT, "profile", "--llm", "openai", "--model", MODEL, "--max-tokens", "12",
                           "--profiles-cache", str(cache), "--store", str(store), "--json", *args],
                          capture_output=True, text=True, timeout=600)


def drive(requests: Path, results: Path, base_url: str, only: int | None = None) -> None:
    """Answer a request file through a live server, writing the Batch API's output format."""
    lines = requests.read_text(encoding="utf-8").splitlines()[:only]
    with open(results, "w", encoding="utf-8") as out:
        for n, line in enumerate(lines):
            request = json.loads(line)
            assert request["method"] == "POST" and request["url"] == "/v1/chat/completions"
            answer = httpx.post(base_url.rsplit("/v1", 1)[0] + request["url"], json=request["body"], timeout=300)
            out.write(json.dumps({"id": f"batch_req_{n}", "custom_id": request["custom_id"],
                                  "response": {"status_code": answer.status_code, "request_id": f"req_{n}",
                                               "body": answer.json()}, "error": None}) + "\n")


@pytest.mark.server
def test_round_trip_through_a_real_server_then_only_the_missing_are_written_again(
        server: str, tmp_path: Path) -> None:
    store, cache = tmp_path / "kt.duckdb", tmp_path / "no-cache"
    requests = tmp_path / "requests.jsonl"
    first = _kt("--limit", "3", "--batch-file", str(requests), store=store, cache=cache)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["written"] == 3
    lines = [json.loads(line) for line in requests.read_text().splitlines()]
    with Store.open(store) as db:
        job = ProfileJob("ml-100k", "user", load_template("user", domain="movies"), MODEL, "openai",
                         sampling=Sampling(max_tokens=12))
        keys = [r.key for r in build_requests(db, job)[:3]]
    assert [line["custom_id"] for line in lines] == keys  # custom_id is the live call's cache key
    assert lines[0]["body"]["model"] == MODEL and lines[0]["body"]["max_tokens"] == 12

    results = tmp_path / "results.jsonl"
    drive(requests, results, server, only=2)  # a partial results file: the third never ran
    imported = _kt("--limit", "3", "--import-batch", str(results), store=store, cache=cache)
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(imported.stdout)
    assert summary["import"]["stored"] == 2 and summary["import"]["failed"] == 0
    assert summary["profiles"] == 2 and summary["missing"] == 943 - 2 and summary["calls"] == 0
    with Store.open(store) as db:
        texts = db.profiles("ml-100k", summary["set"])["text"].tolist()
    answered = [json.loads(line)["response"]["body"]["choices"][0]["message"]["content"].strip()
                for line in results.read_text().splitlines()]
    assert sorted(texts) == sorted(answered)

    again = _kt("--limit", "3", "--batch-file", str(requests), store=store, cache=cache)
    assert json.loads(again.stdout) | {"path": None} == {"path": None, "requested": 3, "cached": 2, "written": 1}
    assert json.loads(requests.read_text())["custom_id"] == keys[2]

    twice = json.loads(_kt("--limit", "3", "--import-batch", str(results), store=store, cache=cache).stdout)
    assert twice["import"]["stored"] == 0 and twice["import"]["already_stored"] == 2  # never stored twice
    with Store.open(store) as db:
        assert db.response_counts() == (2, 1)


def _job() -> ProfileJob:
    return ProfileJob("ml-100k", "item", load_template("item", domain="movies"), MODEL, "openai")


def _ok(key: str, text: str = "A film.") -> str:
    body = {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 3}}
    return json.dumps({"id": "x", "custom_id": key, "response": {"status_code": 200, "request_id": "r",
                                                                   "body": body}, "error": None})


def test_malformed_and_failed_lines_are_counted_and_only_good_answers_stored(store_path: Path,
                                                                           tmp_path: Path) -> None:
    with Store.open(store_path) as db:
        keys = [r.key for r in build_requests(db, _job())[:4]]
        lines = [
            _ok(keys[0]),
            "{not json",
            json.dumps({"response": {}}),  # no custom_id
            _ok("f" * 64),  # a key of other flags
            _ok(keys[0], "a second answer"),  # duplicate: the first counts
            json.dumps({"custom_id": keys[1], "response": None,
                        "error": {"code": "rate_limit", "message": "too many requests"}}),
            json.dumps({"custom_id": keys[2], "response": {"status_code": 400, "body": {"error": {"message": "bad"}}},
                        "error": None}),
            json.dumps({"custom_id": keys[3], "response": {"status_code": 200, "body": {"object": "list"}}}),
        ]
        results = tmp_path / "results.jsonl"
        results.write_text("\n".join(lines) + "\n\n")
        report = import_batch_file(db, _job(), results)
        stored = db.latest_responses(keys)
    assert (report.lines, report.stored, report.malformed, report.unknown, report.duplicate, report.failed) == (
        8, 1, 2, 1, 1, 3)
    assert stored["text"].tolist() == ["A film."] and stored["backend"].tolist() == ["batch"]
    assert any("line 2" in p and "not JSON" in p for p in report.problems)
    assert any("rate_limit" in p or "too many requests" in p for p in report.problems)
    assert any("HTTP 400" in p for p in report.problems)


def test_cli_refuses_unusable_files_and_flag_mixes_in_one_paragraph(tmp_path: Path) -> None:
    store, cache = tmp_path / "kt.duckdb", tmp_path / "no-cache"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    nothing_good = tmp_path / "bad.jsonl"
    nothing_good.write_text("{oops\n")
    for args, words in [(("--import-batch", str(empty)), "is empty"),
                        (("--import-batch", str(binary)), "not UTF-8"),
                        (("--import-batch", str(tmp_path / "absent.jsonl")), "Cannot read results file"),
                        (("--import-batch", str(nothing_good)), "No user profile"),
                        (("--batch-file", "r.jsonl", "--import-batch", str(empty)), "do not go together"),
                        (("--batch-file", "r.jsonl", "--no-cache"), "do not go together")]:
        result = _kt(*args, store=store, cache=cache)
        assert result.returncode in (1, 2), (args, result.stdout)
        assert words in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
