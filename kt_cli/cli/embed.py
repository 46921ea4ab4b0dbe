"""``kt embed``: bring knowledge vectors into the store as a named set."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, note
from kt_cli.errors import UsageError
from kt_cli.knowledge.sets import import_metadata_vectors, import_vectors
from kt_cli.store import Store


def embed(
    name: Annotated[str, typer.Option(help="Name of the knowledge set to create.")],
    from_file: Annotated[Optional[Path], typer.Option(
        "--from-file", help="Vectors: .npz (ids, embeddings), .npy + .ids.txt, .parquet, .json or .jsonl.")] = None,
    from_metadata: Annotated[bool, typer.Option(
        "--from-metadata", help="No-LLM vectors: shares of liked/disliked genres and release decades.")] = False,
    dataset: options.Dataset = "ml-100k",
    entity: Annotated[str, typer.Option(help="Whose vectors these are: user or item.")] = "user",
    skip_invalid: Annotated[bool, typer.Option(
        help="Import the valid rows and report the rest, instead of refusing the file.")] = False,
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """Store knowledge vectors (one per user or item) as a named set: from a file, or from metadata."""
    if (from_file is None) == (not from_metadata):
        raise UsageError("Give exactly one source: --from-file FILE or --from-metadata.")
    with Store.open(store) as db:
        report = (import_metadata_vectors(db, dataset, name) if from_metadata else
                  import_vectors(db, dataset, from_file, name, entity=entity, skip_invalid=skip_invalid))
    summary = {"set": report.set.name, "dataset": dataset, "entity": entity, "dim": report.set.dim,
               "vectors": report.set.n_vectors, "cached": report.cached, "rows_in_file": report.rows_in_file,
               "invalid_rows_skipped": report.invalid_rows, "unknown_ids_skipped": report.unknown_ids,
               f"{entity}s_without_vector": report.without_vector}
    if json:
        return emit_json(summary)
    verb = "Already stored" if report.cached else "Stored"
    note(f"{verb} knowledge set '{report.set.name}': {report.set.n_vectors} {entity} vectors of "
         f"{report.set.dim} dims; skipped {report.invalid_rows} invalid rows and {report.unknown_ids} "
         f"unknown ids; {report.without_vector} {entity}s of {dataset} have no vector.")
