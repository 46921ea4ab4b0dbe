"""``kt runs``: the runs in the store, with their status and headline numbers."""

from dataclasses import asdict

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, table
from kt_cli.store import Store


def runs(store: options.Store = options.DEFAULT_STORE, json: options.Json = False) -> None:
    """List training runs: model, knowledge, status and best validation score."""
    with Store.open(store) as db:
        rows = db.runs()
    if json:
        return emit_json([asdict(r) for r in rows])
    table(["name", "dataset", "model", "knowledge", "alpha", "seed", "status", "best valid", "created"],
          [[r.name, r.dataset, r.model, r.knowledge or "-", r.config.get("alpha") if r.knowledge else "-",
            r.seed, r.status, r.summary.get("best_valid"), r.created_at.strftime("%Y-%m-%d %H:%M")]
           for r in rows])
