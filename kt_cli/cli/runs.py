"""``kt runs``: the runs in the store, with their status and headline numbers; ``--delete`` removes runs."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, note, table
from kt_cli.errors import NotFoundError, UsageError
from kt_cli.training import lease

if TYPE_CHECKING:
    from kt_cli.store import RunRow


def _epochs(row: RunRow) -> str:
    """Epochs run per phase, e.g. ``34+21``."""
    phases = row.summary.get("phases") or []
    return "+".join(str(p.get("epochs", "?")) for p in phases) or "-"


def runs(
    delete: Annotated[Optional[list[str]], typer.Option(
        "--delete", help="Delete this run with its evaluations, epoch log and weights (repeatable).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """List training runs: model, knowledge, layer, epochs, status and best validation score."""
    from kt_cli.store import Store

    if delete:
        return _delete(delete, yes, store, json)
    if yes:
        raise UsageError("--yes only answers the question --delete asks; name the runs with --delete NAME.")
    with Store.open(store, create=False) as db:
        rows = db.runs()
    if json:
        return emit_json([asdict(r) for r in rows])
    table(["name", "dataset", "model", "knowledge", "layer", "alpha", "seed", "epochs", "status", "best valid",
           "created"],
          [[r.name, r.dataset, r.model, r.knowledge_label, r.summary.get("layer") or "-",
            r.config.get("alpha") if r.knowledge else "-", r.seed, _epochs(r), r.status,
            r.summary.get("best_valid"), r.created_at.strftime("%Y-%m-%d %H:%M")]
           for r in rows])


def _delete(patterns: list[str], yes: bool, store, json: bool) -> None:
    """Delete runs named (or matched by a quoted glob), after asking; the store is not held while asking."""
    from kt_cli.store import Store

    names = _deletable(store, patterns)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"kt runs --delete asks before deleting {', '.join(names)}, and there is no terminal to "
                             "ask on. Nothing was deleted; pass --yes to delete without asking.")
        try:
            confirmed = typer.confirm(f"Delete {', '.join(names)}, with their evaluations and weights?", err=True)
        except typer.Abort:  # no answer: nothing is deleted
            confirmed = False
        if not confirmed:
            raise UsageError("Nothing deleted. Pass --yes to delete without asking.")
        names = _deletable(store, names)  # checked again: a training may have started while we asked
    with Store.open(store, create=False) as db:
        for name in names:
            db.delete_run(name)
    if json:
        return emit_json({"deleted": names})
    note(f"Deleted {len(names)} run(s): {', '.join(names)}.")


def _deletable(store, patterns: list[str]) -> list[str]:
    """The runs the patterns name, refusing unknown names and runs a live process is training."""
    from kt_cli.store import Store

    with Store.open(store, create=False) as db:
        names: list[str] = []
        for pattern in patterns:
            found = db.match_runs(pattern)
            if not found:
                raise NotFoundError("run", pattern, db.run_names(), hint="Nothing was deleted.")
            names += [n for n in found if n not in names]
        for name in names:
            holder = db.owner(name)
            if db.run(name).status == "running" and lease.alive(holder):
                raise UsageError(f"Run '{name}' is being trained right now by {lease.describe(holder)}; it "
                                 "cannot be deleted until that process stops. Nothing was deleted.")
    return names
