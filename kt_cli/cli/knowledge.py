"""``kt knowledge``: list knowledge sets (or profile sets) with their provenance."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Optional

import typer

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, table


def knowledge(
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Only this dataset's sets.")] = None,
    profiles: Annotated[bool, typer.Option("--profiles", help="List LLM profile sets instead.")] = False,
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """List knowledge sets (entity, width, size, origin), or with --profiles the LLM profile sets."""
    from kt_cli.store import Store

    with Store.open(store, create=False) as db:
        sets = db.profile_sets(dataset) if profiles else db.knowledge_sets(dataset)
    if json:
        return emit_json([asdict(s) for s in sets])
    if profiles:
        return table(["dataset", "name", "entity", "profiles", "missing", "backend", "model", "template", "created"],
                     [[p.dataset, p.name, p.entity, p.n_profiles, p.n_missing, p.backend, p.model,
                       f"{p.template} ({p.template_hash[:8]})", p.created_at.strftime("%Y-%m-%d %H:%M")]
                      for p in sets])
    table(["dataset", "name", "entity", "dim", "vectors", "source", "method", "parent", "created"],
          [[s.dataset, s.name, s.entity, s.dim, s.n_vectors, s.source, s.method, s.parent,
            s.created_at.strftime("%Y-%m-%d %H:%M")] for s in sets])
