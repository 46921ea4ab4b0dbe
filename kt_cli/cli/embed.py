"""``kt embed``: bring knowledge vectors into the store as a named set."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, note, progress_bar
from kt_cli.errors import UsageError
from kt_cli.knowledge.encoders import DEFAULT_ENCODER, make_encoder

if TYPE_CHECKING:
    from kt_cli.profiles.prompts import HistoryRules


def embed(
    profiles: Annotated[Optional[str], typer.Option(
        "--profiles", help="Embed this profile set (from kt profile) with --encoder.")] = None,
    history_text: Annotated[bool, typer.Option(
        "--history-text", help="No-LLM control: embed each user's liked/disliked lines (as a profile prompt "
                               "shows them) with --encoder.")] = False,
    from_file: Annotated[Optional[Path], typer.Option(
        "--from-file", help="Vectors: .npz (ids, embeddings), .npy + .ids.txt, .parquet, .json or .jsonl.")] = None,
    from_metadata: Annotated[bool, typer.Option(
        "--from-metadata", help="No-LLM vectors: shares of liked/disliked genres and release decades.")] = False,
    metadata_text: Annotated[bool, typer.Option(
        "--metadata-text", help="Item vectors from each item's own text, 'Title: ... Year: ... Genres: ...' (LEARN's "
                                "input; the no-LLM item control); the default source with --entity item. With "
                                "--profiles ITEM-SET, each item's profile follows its text.")] = False,
    random_like_set: Annotated[Optional[str], typer.Option(
        "--random-like", help="Control: random vectors for the same entities as this set, with its per-column "
                              "mean and spread.")] = None,
    name: Annotated[Optional[str], typer.Option(
        help="Name of the knowledge set [default: <profile-set>-<encoder>, history-<encoder>, <set>-random; "
             "required for files and metadata].")] = None,
    encoder: Annotated[str, typer.Option(
        help="Text encoder: minilm (all-MiniLM-L6-v2, offline) or openai:MODEL.")] = DEFAULT_ENCODER,
    base_url: Annotated[str, typer.Option(envvar="KT_BASE_URL", help="openai:MODEL encoders: the server's /v1 URL; "
                                          "key from KT_API_KEY or OPENAI_API_KEY.")] = "https://api.openai.com/v1",
    dataset: options.Dataset = "ml-100k",
    entity: options.Entity = "user",
    skip_invalid: Annotated[bool, typer.Option(
        help="Import the valid rows and report the rest, instead of refusing the file.")] = False,
    history: options.History = "train",
    split: options.Split = "0.7,0.1,0.2",
    split_order: options.SplitOrder = "time",
    split_seed: options.SplitSeed = 42,
    seed: options.Seed = 42,
    threads: options.Threads = 1,
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """Store knowledge vectors (one per user or item) as a named set: embedded texts, a file, metadata, random."""
    from kt_cli.knowledge.sets import import_metadata_vectors, import_vectors, random_like
    from kt_cli.store import Store

    sources = [profiles is not None and not metadata_text, history_text, metadata_text, from_file is not None,
               from_metadata, random_like_set is not None]
    metadata_text = metadata_text or (entity == "item" and not any(sources))  # an item's own text by default
    if sum(sources) + (not any(sources) and metadata_text) != 1:
        raise UsageError("Give exactly one source: --profiles SET, --history-text, --metadata-text, --from-file FILE, "
                         "--from-metadata or --random-like SET.")
    if profiles is not None or history_text or metadata_text:
        rules = options.history_rules(history, split, split_order, split_seed)
        return _embed_texts(profiles, rules, metadata_text, name, encoder, base_url, dataset, threads, store, json)
    if random_like_set is not None:
        with Store.open(store) as db:
            row, cached = random_like(db, dataset, random_like_set, seed=seed, name=name)
        return _done({"set": row.name, "dim": row.dim, "vectors": row.n_vectors, "cached": cached}, json,
                     f"{row.n_vectors} random vectors of {row.dim} dims matching '{random_like_set}'.")
    if name is None:
        raise UsageError("--name is required with --from-file and --from-metadata.")
    with Store.open(store) as db:
        report = (import_metadata_vectors(db, dataset, name) if from_metadata else
                  import_vectors(db, dataset, from_file, name, entity=entity, skip_invalid=skip_invalid))
    summary = {"set": report.set.name, "dataset": dataset, "entity": entity, "dim": report.set.dim,
               "vectors": report.set.n_vectors, "cached": report.cached, "rows_in_file": report.rows_in_file,
               "invalid_rows_skipped": report.invalid_rows, "unknown_ids_skipped": report.unknown_ids,
               f"{entity}s_without_vector": report.without_vector}
    _done(summary, json, f"{report.set.n_vectors} {entity} vectors of {report.set.dim} dims; skipped "
          f"{report.invalid_rows} invalid rows and {report.unknown_ids} unknown ids; {report.without_vector} "
          f"{entity}s of {dataset} have no vector.")


def _embed_texts(profiles: Optional[str], rules: HistoryRules, metadata: bool, name: Optional[str], encoder: str,
                 base_url: str, dataset: str, threads: int, store: Path, json: bool) -> None:
    """--profiles SET, --history-text (lines chosen by ``rules``) or --metadata-text: texts through the encoder."""
    from kt_cli.knowledge.texts import embed_history, embed_item_metadata, embed_profiles
    from kt_cli.store import Store

    model = make_encoder(encoder, base_url=base_url, threads=threads,
                         api_key=os.environ.get("KT_API_KEY") or os.environ.get("OPENAI_API_KEY"))
    with Store.open(store) as db, progress_bar("embed", disable=json) as bar:
        if metadata:
            report = embed_item_metadata(db, dataset, model, name=name, profile_set=profiles, progress=bar.update)
        elif profiles:
            report = embed_profiles(db, dataset, profiles, model, name=name, progress=bar.update)
        else:
            report = embed_history(db, dataset, model, rules, name=name, progress=bar.update)
    row = report.set
    summary = {"set": row.name, "dataset": dataset, "entity": row.entity, "dim": row.dim, "vectors": row.n_vectors,
               "cached": report.cached, "encoded": report.encoded, "reused": report.reused,
               "empty_texts": report.empty, f"{row.entity}s_without_vector": report.without_vector}
    _done(summary, json, f"{row.n_vectors} {row.entity} vectors of {row.dim} dims ({report.encoded} texts "
          f"encoded, {report.reused} from cache); {report.empty} empty texts skipped; {report.without_vector} "
          f"{row.entity}s of {dataset} have no vector.")


def _done(summary: dict[str, Any], json: bool, details: str) -> None:
    """The JSON summary, or one line saying what was stored (or found already stored)."""
    if json:
        return emit_json(summary)
    note(f"{'Already stored' if summary['cached'] else 'Stored'} knowledge set '{summary['set']}': {details}")
