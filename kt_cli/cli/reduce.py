"""``kt reduce``: UMAP or PCA a knowledge set down to the width of the hooked layer."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Optional

import typer

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, note


def reduce(
    source: Annotated[str, typer.Option("--from", help="The knowledge set to reduce.")],
    dataset: options.Dataset = "ml-100k",
    method: Annotated[str, typer.Option(help="umap (library defaults, as in LLM-KT) or pca.")] = "umap",
    dim: Annotated[int, typer.Option(help="Target width (64 for NeuMF, SimpleX, MultVAE defaults).")] = 64,
    name: Annotated[Optional[str], typer.Option(help="Name of the new set [default: <from>-<method><dim>].")] = None,
    seed: options.Seed = 42,
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """Reduce a knowledge set to DIM columns; stores a new set that records its parent."""
    from kt_cli.knowledge.sets import reduce_set
    from kt_cli.store import Store

    with Store.open(store) as db:
        row, cached = reduce_set(db, dataset, source, method=method, dim=dim, seed=seed, name=name)
    if json:
        return emit_json({**asdict(row), "cached": cached})
    verb = "Already stored" if cached else "Stored"
    note(f"{verb} knowledge set '{row.name}': {row.n_vectors} vectors, {source} -> {method} {dim} dims.")
