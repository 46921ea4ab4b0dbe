"""``kt runs``: the runs in the store, with their status and headline numbers; ``--delete`` removes runs."""

import fnmatch
import shutil
import sys
from dataclasses import asdict
from typing import Annotated, Optional

import typer

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, note, table
from kt_cli.errors import NotFoundError, UsageError
from kt_cli.store import RunRow, Store
from kt_cli.training import lease


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
          [[r.name, r.dataset, r.model, r.knowledge or "-", r.summary.get("layer") or "-",
            r.config.get("alpha") if r.knowledge else "-", r.seed, _epochs(r), r.status,
            r.summary.get("best_valid"), r.created_at.strftime("%Y-%m-%d %H:%M")]
           for r in rows])


def _delete(names: list[str], yes: bool, store, json: bool) -> None:
    with Store.open(store, create=False) as db:
        known = db.run_names()
        matched: list[str] = []
        for name in names:  # a quoted glob ('bpr-*') names every run it matches
            found = fnmatch.filter(known, name) if any(c in name for c in "*?[") else [name] if name in known else []
            if not found:
                raise NotFoundError("run", name, known, hint="Nothing was deleted.")
            matched += [m for m in found if m not in matched]
        names = matched
        rows = []
        for name in names:
            row = db.run(name)
            holder = db.owner(name)
            if row.status == "running" and lease.alive(holder):
                raise UsageError(f"Run '{name}' is being trained right now by {lease.describe(holder)}; it "
                                 "cannot be deleted until that process stops.")
            rows.append(row)
        if not yes and not sys.stdin.isatty():
            raise UsageError(f"kt runs --delete asks before deleting {', '.join(names)}, and there is no terminal to "
                             "ask on. Nothing was deleted; pass --yes to delete without asking.")
        if not yes:
            listed = ", ".join(f"{r.name} ({r.status}, {len(db.evaluations(r.name))} evaluations)" for r in rows)
            try:
                confirmed = typer.confirm(f"Delete {listed} and their weights?", err=True)
            except typer.Abort:  # no answer (stdin closed): nothing is deleted
                confirmed = False
            if not confirmed:
                raise UsageError("Nothing deleted. Pass --yes to delete without asking.")
        folders = [db.run_folder(r.name) for r in rows]
        for row in rows:
            db.delete_run(row.name)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    if json:
        return emit_json({"deleted": names})
    note(f"Deleted {len(names)} run(s): {', '.join(names)}.")
