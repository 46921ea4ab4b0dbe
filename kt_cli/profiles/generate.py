"""Profile generation: render one prompt per user (or item), answer it from the cache or an LLM.

Every answer is written to the store the moment it arrives, keyed by a hash of (model, sampling
parameters, rendered messages), so an interrupted run loses at most the requests in flight and a rerun
asks only for what is missing. Shareable profile files (``profiles_cache/``) are read into the same
cache before anything is asked. ``fresh=True`` (``--no-cache``) ignores answers stored before this call
and adds new versions beside them; a later plain run uses the newest version of each answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kt_cli.datasets.registry import ensure_dataset
from kt_cli.datasets.splits import shown_interactions
from kt_cli.errors import LLMError, LLMRequestError, MissingInputError, ModelFileError, UsageError
from kt_cli.profiles import cache_files
from kt_cli.profiles.llm import DEFAULT_MAX_TOKENS, ChatBackend, Completion, Sampling
from kt_cli.profiles.prompts import (HistoryRules, Messages, Template, histories, item_values, prompt_hash,
                                     user_values)
from kt_cli.store import ProfileSetRow, Store, _now


@dataclass(frozen=True)
class ProfileRequest:
    """One prompt to answer."""

    entity_id: str
    messages: Messages
    prompt_hash: str
    key: str


@dataclass(frozen=True)
class ProfileJob:
    """What to ask, of which model, for which dataset; everything that decides the answers."""

    dataset: str
    entity: str
    template: Template
    model_id: str
    backend: str
    rules: HistoryRules = field(default_factory=HistoryRules)
    sampling: Sampling | None = None  # None: temperature 0 and the entity's answer length (DEFAULT_MAX_TOKENS)
    limit: int | None = None
    fresh: bool = False
    name: str | None = None

    def __post_init__(self) -> None:
        if self.sampling is None:  # items get longer answers than users; the same default as kt profile's
            object.__setattr__(self, "sampling", Sampling(max_tokens=DEFAULT_MAX_TOKENS.get(self.entity, 128)))

    @property
    def set_name(self) -> str:
        suffix = "" if self.template.shipped else f"-{self.template.digest[:8]}"
        history = self.rules.name_suffix if self.template.reads_ratings else ""
        return self.name or f"{self.entity}-{self.model_id}{suffix}{history}"

    @property
    def rules_record(self) -> dict[str, object]:
        """The history rule as stored with the set: none for prompts that show no ratings."""
        if self.template.reads_ratings:
            return self.rules.as_dict()
        return {"history": "none (the prompt shows no ratings)"}


@dataclass
class ProfileReport:
    """What a profile run asked, reused and spent."""

    set: ProfileSetRow
    requested: int = 0
    from_store: int = 0
    from_files: int = 0
    called: int = 0
    failed: int = 0
    unanswered: int = 0  # not in any cache and not asked (offline)
    tokens_in: int = 0
    tokens_out: int = 0
    retries: int = 0
    call_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


def request_key(model_id: str, sampling: Sampling, messages: Messages) -> str:
    """The cache key of one LLM answer; the back-end (local or HTTP) is deliberately not part of it."""
    blob = json.dumps({"model": model_id, "sampling": sampling.as_dict(), "messages": messages}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def build_requests(store: Store, job: ProfileJob) -> list[ProfileRequest]:
    """One rendered prompt per user (or item) of the dataset, in id order, cut to ``job.limit``."""
    ensure_dataset(store, job.dataset)
    items = store.item_fields(job.dataset)
    everything = store.interactions(job.dataset)
    max_rating = float(everything["rating"].max()) if len(everything) else 5.0  # the scale, not a statistic
    if job.template.reads_ratings:
        inter = shown_interactions(store, job.dataset, job.rules.split)
    else:  # a factual item prompt: every item, whatever its ratings or split
        inter = everything.iloc[:0]
    if job.entity == "user":
        groups: dict = histories(inter)
    else:
        groups = dict(tuple(inter.groupby("item_id", sort=False)))
    known = groups.keys() if job.entity == "user" else set(items) | store.entity_ids(job.dataset, "item")
    ids = sorted(known, key=lambda i: (len(i), i))  # numeric-looking ids in numeric order
    if job.limit is not None:
        ids = ids[: job.limit]
    no_ratings = inter["rating"].iloc[:0]
    lines: dict[str, str] = {}
    requests = []
    for entity_id in ids:
        if job.entity == "user":
            values = user_values(groups[entity_id], items, job.rules, max_rating, job.dataset, lines)
        else:
            ratings = groups[entity_id]["rating"] if entity_id in groups else no_ratings
            values = item_values(items.get(entity_id, {}), ratings, max_rating, job.dataset)
        messages = job.template.render(values)
        requests.append(ProfileRequest(entity_id, messages, prompt_hash(messages),
                                       request_key(job.model_id, job.sampling, messages)))
    return requests


def cached_answers(store: Store, job: ProfileJob, requests: list[ProfileRequest],
                   cache_dir: Path | None) -> tuple[dict[str, int], int]:
    """{key: newest stored version} of the requests already answered, after loading the matching answers of
    the profile files in ``cache_dir``; and how many came from those files. ``job.fresh`` answers none."""
    if job.fresh:
        return {}, 0
    keys = [r.key for r in requests]
    from_files = 0
    if cache_dir is not None:
        from_files = cache_files.load_matching(store, cache_dir, job.dataset, job.entity, set(keys))
    stored = store.latest_responses(keys)
    return dict(zip(stored["key"], stored["version"])), from_files


Progress = Callable[[int, int], None]  # (answers done so far, total)


async def _ask_all(backend: ChatBackend, job: ProfileJob, pending: list[ProfileRequest], concurrency: int,
                   save: Callable[[ProfileRequest, Completion], None], report: ProfileReport) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(request: ProfileRequest) -> None:
        async with gate:
            try:
                answer = await backend.complete(request.messages, job.sampling)
            except LLMRequestError as e:
                report.failed += 1
                report.failures.append(f"{request.entity_id}: {e}")
                return
        save(request, answer)

    tasks: list[asyncio.Task[None]] = []
    try:
        await backend.check()
        tasks = [asyncio.create_task(one(r)) for r in pending]
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await backend.aclose()


def generate_profiles(store: Store, job: ProfileJob, open_backend: Callable[[], ChatBackend], *,
                      concurrency: int = 1, cache_dir: Path | None = None, offline: bool = False,
                      progress: Progress | None = None) -> ProfileReport:
    """Make (or reuse) the profile set ``job.set_name``; opens a back-end only if something is missing.

    ``offline`` never opens the back-end: the set holds the cached answers and the rest are counted as
    missing (those users train without a reconstruction target).
    """
    if job.entity not in ("user", "item"):
        raise UsageError(f"--entity must be 'user' or 'item', not '{job.entity}'.")
    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1.")
    requests = build_requests(store, job)
    report = ProfileReport(set=None)  # type: ignore[arg-type]  # filled in at the end
    report.requested = len(requests)
    answered, report.from_files = cached_answers(store, job, requests, cache_dir)
    report.from_store = len(answered) - report.from_files
    pending = [r for r in requests if r.key not in answered]
    done = len(requests) - len(pending)
    if progress and (done or (pending and not offline)):  # no bar for a run that has nothing to show
        progress(done, len(requests))

    def save(request: ProfileRequest, answer: Completion) -> None:
        nonlocal done
        version = store.add_response({
            "key": request.key, "backend": job.backend, "model": job.model_id, "params": job.sampling.as_dict(),
            "prompt_hash": request.prompt_hash, "text": answer.text, "tokens_in": answer.tokens_in,
            "tokens_out": answer.tokens_out, "seconds": answer.seconds, "finish_reason": answer.finish_reason,
            "created_at": _now()})
        answered[request.key] = version
        report.called += 1
        report.tokens_in += answer.tokens_in
        report.tokens_out += answer.tokens_out
        report.retries += answer.attempts - 1
        report.call_seconds += answer.seconds
        done += 1
        if progress:
            progress(done, len(requests))

    report.unanswered = len(pending) if offline else 0
    if pending and not offline:
        try:
            backend = open_backend()
        except (LLMError, ModelFileError) as e:  # say what is usable without the model
            raise type(e)(f"{e} {done} of {len(requests)} answers are cached already; --offline builds the "
                          "set from those alone.") from e
        started_calls = time.perf_counter()
        asyncio.run(_ask_all(backend, job, pending, concurrency, save, report))
        report.call_seconds = time.perf_counter() - started_calls
    entries = pd.DataFrame(
        [(r.entity_id, r.key, int(answered[r.key])) for r in requests if r.key in answered],
        columns=["entity_id", "response_key", "response_version"],
    )
    if entries.empty:
        shipped = cache_files.shipped_sets(cache_dir, job.dataset, job.entity) if cache_dir is not None else []
        if shipped:
            files = f" Profile files in {cache_dir} for {job.dataset} {job.entity}s: " + "; ".join(
                f"{name} ({history})" for name, history in shipped) + "."
        elif cache_dir is not None and not cache_dir.is_dir():
            files = f" The profiles cache folder {cache_dir} does not exist (--profiles-cache, KT_PROFILES_CACHE)."
        else:
            files = f" {cache_dir} holds no profile file for {job.dataset} {job.entity}s." if cache_dir else ""
        why = ("none of the cached answers matches these prompts (the template, the ratings shown, the split, "
               "the model and the sampling are all part of an answer's key)" if offline else
               f"every request failed ({report.failed}; first: {report.failures[0] if report.failures else '-'})")
        raise MissingInputError(
            f"No {job.entity} profile for {job.dataset} was made, so no set was stored: {why}.{files}",
            f"kt profile --dataset {job.dataset} --entity {job.entity} (without --offline, with an LLM)")
    total = len(store.entity_ids(job.dataset, job.entity))
    report.set = ProfileSetRow(job.dataset, job.set_name, job.entity, job.template.name, job.template.digest,
                               job.rules_record, job.backend, job.model_id, job.sampling.as_dict(),
                               len(entries), total - len(entries), _now())
    store.save_profile_set(report.set, entries)
    return report
