"""Batch inference files: the prompts kt would send, written for an offline batch run, and its results read back.

For millions of users a live HTTP loop is the wrong tool: OpenAI's Batch API and vLLM's ``run-batch`` take
one JSONL file of requests and return one JSONL file of results. :func:`write_batch_file` writes the requests
``kt profile`` would make (only those no cache answers), in the Batch API's request format, with
``custom_id`` = kt's cache key, so answers land under exactly the key a live call would have used.
:func:`import_batch_file` reads a results file (OpenAI's and vLLM's output lines have the same shape),
checks every id against the prompts the same flags render now, and stores each answer once: a key already
stored is never stored again, a failed or missing answer stays missing and a later ``--batch-file`` writes
only those.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kt_cli.errors import DataFormatError, UsageError
from kt_cli.profiles.generate import ProfileJob, ProfileRequest, build_requests, cached_answers
from kt_cli.store import Store, _now

URL = "/v1/chat/completions"
SHOWN_PROBLEMS = 5  # lines quoted per kind of problem; the rest are counted


@dataclass
class BatchWriteReport:
    """What a request file holds: the job's prompts less those already answered."""

    path: Path
    requested: int
    cached: int
    written: int


@dataclass
class BatchImportReport:
    """Counts of every results line, by what became of it."""

    lines: int = 0
    stored: int = 0  # new answers now in the cache
    already_stored: int = 0  # answered in an earlier import or call: kept, not stored again
    failed: int = 0  # the line carries an error or no chat completion
    unknown: int = 0  # custom_id is none of this job's cache keys (other flags, another dataset)
    duplicate: int = 0  # a custom_id seen earlier in the file (the first one counts)
    malformed: int = 0  # not a JSON object with a custom_id
    problems: list[str] = field(default_factory=list)

    def note(self, kind: str, line: int, detail: str) -> None:
        """Keep a few examples of each kind of problem, with their line numbers."""
        if sum(p.startswith(kind) for p in self.problems) < SHOWN_PROBLEMS:
            self.problems.append(f"{kind}: line {line}: {detail}")


def request_line(request: ProfileRequest, job: ProfileJob) -> dict[str, Any]:
    """One request of the Batch API's input file: the chat body kt's live client would POST."""
    assert job.sampling is not None
    return {"custom_id": request.key, "method": "POST", "url": URL,
            "body": {"model": job.model_id, "messages": request.messages, **job.sampling.as_dict()}}


def write_batch_file(store: Store, job: ProfileJob, path: Path, *, cache_dir: Path | None = None) -> BatchWriteReport:
    """Write the job's unanswered prompts to ``path`` (JSONL, one request a line); calls nothing.

    Written to a temporary name and renamed, so a file at ``path`` is always complete.
    """
    if job.fresh:
        raise UsageError("--no-cache is for live calls: a batch file holds the prompts no cache answers.")
    requests = build_requests(store, job)
    answered, _ = cached_answers(store, job, requests, cache_dir)
    pending = [r for r in requests if r.key not in answered]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as out:
        for request in pending:
            out.write(json.dumps(request_line(request, job), ensure_ascii=False) + "\n")
    partial.replace(path)
    return BatchWriteReport(path, len(requests), len(requests) - len(pending), len(pending))


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line
    except OSError as e:
        raise DataFormatError(f"Cannot read results file {path}: {e.strerror}.") from e
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path} is not UTF-8 text (byte {e.start}); a batch results file is JSONL.") from e


def _answer(record: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """(the completion's fields, '') or (None, why it is not an answer)."""
    if record.get("error"):
        error = record["error"]
        return None, str(error.get("message") or error) if isinstance(error, dict) else str(error)
    response = record.get("response")
    if not isinstance(response, dict):
        return None, "no response"
    status, body = response.get("status_code"), response.get("body")
    if status != 200:
        detail = body.get("error", body) if isinstance(body, dict) else body
        return None, f"HTTP {status}: {str(detail)[:120]}"
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"]
        if not isinstance(text, str):
            raise TypeError("content is not text")
    except (KeyError, IndexError, TypeError) as e:
        return None, f"the body is not a chat completion ({type(e).__name__}: {e})"
    usage = body.get("usage") or {}
    return {"text": text.strip(), "tokens_in": int(usage.get("prompt_tokens") or 0),
            "tokens_out": int(usage.get("completion_tokens") or 0),
            "finish_reason": str(choice.get("finish_reason") or "")}, ""


def import_batch_file(store: Store, job: ProfileJob, path: Path) -> BatchImportReport:
    """Store the answers of a Batch API / vLLM ``run-batch`` results file under their cache keys.

    Every line is accounted for in the report. Nothing is stored unless the whole file was read, and then
    in one transaction, so an interrupted import leaves the store as it was.
    """
    requests = {r.key: r for r in build_requests(store, job)}
    report = BatchImportReport()
    seen: set[str] = set()
    rows = []
    for number, line in _lines(path):
        report.lines += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            report.malformed += 1
            report.note("malformed", number, f"not JSON ({e.msg})")
            continue
        custom_id = record.get("custom_id") if isinstance(record, dict) else None
        if not isinstance(custom_id, str):
            report.malformed += 1
            report.note("malformed", number, "no custom_id")
            continue
        if custom_id not in requests:
            report.unknown += 1
            report.note("unknown", number, f"custom_id {custom_id[:16]}... is not a prompt of these flags")
            continue
        if custom_id in seen:
            report.duplicate += 1
            report.note("duplicate", number, f"custom_id {custom_id[:16]}... again (the first line counts)")
            continue
        seen.add(custom_id)
        answer, why = _answer(record)
        if answer is None:
            report.failed += 1
            report.note("failed", number, f"{requests[custom_id].entity_id}: {why}")
            continue
        rows.append({"key": custom_id, "prompt_hash": requests[custom_id].prompt_hash, **answer})
    if not report.lines:
        raise DataFormatError(f"{path} is empty: a batch results file has one JSON object a line.")
    if rows:
        assert job.sampling is not None
        frame = pd.DataFrame(rows).assign(backend="batch", model=job.model_id, seconds=0.0, created_at=_now(),
                                          params=json.dumps(job.sampling.as_dict(), sort_keys=True))
        report.stored = store.import_responses(frame)
    report.already_stored = len(rows) - report.stored
    return report
