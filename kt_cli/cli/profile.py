"""``kt profile``: have an LLM write a taste profile for every user (or item), cached and resumable."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, note, progress_bar
from kt_cli.errors import UsageError
from kt_cli.profiles.models import DEFAULT_MODEL_CACHE

if TYPE_CHECKING:
    from kt_cli.profiles.batch import BatchImportReport


def profile(
    dataset: options.Dataset = "ml-100k",
    entity: options.Entity = "user",
    llm: Annotated[str, typer.Option(help="local (llama.cpp in process) or openai (any compatible server).")] = "local",
    model: Annotated[Optional[str], typer.Option(
        help="local: a packaged model (qwen2.5-coder-1.5b, qwen2.5-coder-0.5b, smollm2-135m); openai: the "
             "server's model name.")] = None,
    gguf: Annotated[Optional[Path], typer.Option(help="local: a GGUF file instead of a packaged model.")] = None,
    base_url: Annotated[str, typer.Option(envvar="KT_BASE_URL", help="openai: the server's /v1 URL. The key "
                                          "comes from KT_API_KEY or OPENAI_API_KEY.")] = "http://127.0.0.1:8080/v1",
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at once (openai).")] = 4,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for one answer before retrying.")] = 120.0,
    template: Annotated[Optional[str], typer.Option(
        help="Shipped prompt: movies, music or generic [default: from the dataset name].")] = None,
    prompt: Annotated[Optional[Path], typer.Option(help="Your own template file (copy a shipped one).")] = None,
    like_threshold: Annotated[float, typer.Option(help="Ratings at or above this are 'liked'.")] = 4.0,
    dislike_threshold: Annotated[float, typer.Option(help="Ratings at or below this are 'disliked'.")] = 2.0,
    token_budget: Annotated[int, typer.Option(help="Estimated tokens of history shown (most recent first).")] = 250,
    history: options.History = "train",
    split: options.Split = "0.7,0.1,0.2",
    split_order: options.SplitOrder = "time",
    split_seed: options.SplitSeed = 42,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.0,
    max_tokens: Annotated[Optional[int], typer.Option(
        min=1, show_default="128 for users, 192 for items",
        help="Longest answer, in tokens (item descriptions list more facts, so they get more room).")] = None,
    seed: options.Seed = 42,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Only the first N users/items (by id).")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Use stored and shipped answers only; never load "
                                          "or call an LLM. Missing profiles are counted.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Ask again even if answers are stored; the "
                                           "new answers are stored as new versions.")] = False,
    name: Annotated[Optional[str], typer.Option(help="Profile set name [default: <entity>-<model>].")] = None,
    export: Annotated[Optional[Path], typer.Option(
        "--export", help="Also write the set to this JSONL file (or folder) for sharing.")] = None,
    import_file: Annotated[Optional[Path], typer.Option(
        "--import", help="Load a profile file (from kt profile --export) instead of generating.")] = None,
    batch_file: Annotated[Optional[Path], typer.Option(
        "--batch-file", help="Write the unanswered prompts as an OpenAI Batch API / vLLM run-batch request file "
                             "(JSONL, custom_id = cache key) instead of calling an LLM.")] = None,
    import_batch: Annotated[Optional[Path], typer.Option(
        "--import-batch", help="Store the answers of a batch results file (same flags as --batch-file), then "
                               "build the set from every cached answer.")] = None,
    profiles_cache: options.ProfilesCache = options.DEFAULT_PROFILES_CACHE,
    model_cache: Annotated[Path, typer.Option(envvar="KT_MODEL_CACHE", show_default="~/.cache/kt/models",
                                              help="Where split packaged models are assembled once.")] = DEFAULT_MODEL_CACHE,
    threads: options.Threads = 1,
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """Write an LLM taste profile per user (or item); answers are cached, a rerun asks only what is missing."""
    from kt_cli.profiles import cache_files  # pandas, httpx: only when running
    from kt_cli.profiles.backends import BackendSpec
    from kt_cli.profiles.batch import import_batch_file, write_batch_file
    from kt_cli.profiles.generate import ProfileJob, generate_profiles
    from kt_cli.profiles.llm import DEFAULT_MAX_TOKENS, Sampling
    from kt_cli.profiles.prompts import domain_for, load_template
    from kt_cli.store import Store

    if import_file is not None:
        with Store.open(store) as db:
            row, added = cache_files.import_file(db, import_file, name)
        return emit_json({"set": row.name, "profiles": row.n_profiles, "new_answers": added}) if json else note(
            f"Imported profile set '{row.name}': {row.n_profiles} {row.entity} profiles ({added} new answers).")
    if template and prompt:
        raise UsageError("Give --template NAME or --prompt FILE, not both.")
    batch_flags = [f for f, v in (("--batch-file", batch_file), ("--import-batch", import_batch),
                                  ("--offline", offline), ("--no-cache", no_cache)) if v]
    if len(batch_flags) > 1 and (batch_file or import_batch):
        raise UsageError(f"{' and '.join(batch_flags)} do not go together: write a request file with --batch-file, "
                         "run it elsewhere, then read its results with --import-batch (same other flags).")
    if offline and no_cache:
        raise UsageError("--offline uses cached answers only and --no-cache ignores them: give one of them.")
    spec = BackendSpec(llm, model, gguf, base_url, os.environ.get("KT_API_KEY") or os.environ.get("OPENAI_API_KEY"),
                       timeout, threads, model_cache)
    job = ProfileJob(dataset, entity, load_template(entity, domain=template or domain_for(dataset), path=prompt),
                     spec.model_id, spec.kind, options.history_rules(
                         history, split, split_order, split_seed, like_threshold=like_threshold,
                         dislike_threshold=dislike_threshold, token_budget=token_budget),
                     Sampling(temperature, 1.0, max_tokens or DEFAULT_MAX_TOKENS.get(entity, 128), seed), limit, no_cache,
                     name)
    if batch_file:
        with Store.open(store) as db:
            written = write_batch_file(db, job, batch_file, cache_dir=profiles_cache)
        return emit_json(asdict(written) | {"path": str(written.path)}) if json else note(
            f"Wrote {written.written} requests to {written.path} ({written.cached} of {written.requested} "
            f"{entity} prompts are answered already). Run it (docs/profiles.md: OpenAI Batch API or vLLM "
            "run-batch), then: kt profile ... --import-batch RESULTS.jsonl")
    with Store.open(store) as db, progress_bar("profiles", disable=json) as bar:
        imported = import_batch_file(db, job, import_batch) if import_batch else None
        if imported and not json:
            _note_import(imported)
        report = generate_profiles(db, job, spec.open, concurrency=concurrency, cache_dir=profiles_cache,
                                   offline=offline or imported is not None,
                                   progress=bar.update)
        exported = cache_files.export_set(db, dataset, report.set.name, export) if export else None
    summary = {"set": report.set.name, "dataset": dataset, "entity": entity, "model": job.model_id,
               "template": job.template.name, "profiles": report.set.n_profiles, "missing": report.set.n_missing,
               "requested": report.requested, "cache_hits": report.from_store + report.from_files,
               "from_files": report.from_files, "not_asked": report.unanswered, "calls": report.called, "failures": report.failed,
               "retries": report.retries, "tokens_in": report.tokens_in, "tokens_out": report.tokens_out,
               "call_seconds": round(report.call_seconds, 2), "exported": str(exported[0]) if exported else None}
    if json:
        return emit_json(summary | ({"import": asdict(imported)} if imported else {}))
    note(f"Profile set '{report.set.name}': {report.set.n_profiles} {entity} profiles ({report.set.n_missing} "
         f"{entity}s without one; {report.unanswered} not asked: --offline). Calls {report.called}, cache hits {summary['cache_hits']} (from files "
         f"{report.from_files}), failures {report.failed}, retries {report.retries}, tokens in "
         f"{report.tokens_in} / out {report.tokens_out}.")
    for failure in report.failures[:5]:
        note(f"  failed: {failure}")
    if exported:
        note(f"Exported {exported[1]} profiles to {exported[0]}.")


def _note_import(report: BatchImportReport) -> None:
    note(f"Results file: {report.lines} lines; {report.stored} answers stored, {report.already_stored} already "
         f"stored (kept), {report.failed} failed, {report.unknown} unknown ids, {report.duplicate} duplicates, "
         f"{report.malformed} malformed. Failed and missing prompts go to the next --batch-file.")
    for problem in report.problems:
        note(f"  {problem}")
