"""``kt recommend``: top-K items of a trained ranking run for users, with their recent history."""

from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, note, table
from kt_cli.errors import UsageError


def _users_file(path: Path) -> list[str]:
    """One user id per line (the first comma- or tab-separated field); blank lines and # comments skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise UsageError(f"Cannot read --users-file {path}: {e.strerror}.") from e
    users = [line.replace("\t", ",").split(",")[0].strip() for line in lines]
    users = [u for u in users if u and not u.startswith("#")]
    if not users:
        raise UsageError(f"--users-file {path} holds no user id (one id per line).")
    return users


def recommend(
    run: Annotated[str, typer.Argument(help="A finished ranking run (see kt runs).")],
    user: Annotated[list[str], typer.Option("--user", help="User id (repeatable).")] = [],
    users_file: Annotated[Optional[Path], typer.Option(help="File of user ids, one per line.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="How many items to recommend per user.")] = 10,
    index: Annotated[str, typer.Option(
        help="exact (faiss inner product), ivf or hnsw (approximate; recall against exact reported); models "
             "without item vectors score every item.")] = "exact",
    history: Annotated[int, typer.Option(help="Recent interactions of each user shown beside the list.")] = 5,
    threads: options.Threads = 1,
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """Recommend the top-K unseen items of a trained ranking run to users, with titles, scores and history."""
    from kt_cli.recommend import recommend as library_recommend  # torch and RecBole: only now

    users = list(user) + (_users_file(users_file) if users_file is not None else [])
    result = library_recommend(store, run, users, k, index=index, history=history, threads=threads)
    if json:
        return emit_json(asdict(result))
    for answer in result.users:
        rows = [[str(r["rank"]), r["item_id"], r["title"], f"{r['score']:.4f}"] for r in answer.items]
        table(["rank", "item", "title", "score"], rows, title=f"{run}: top {k} for user {answer.user_id}")
        if answer.history:
            table(["when", "item", "title", "rating", "part"],
                  [[datetime.fromtimestamp(h["timestamp"], timezone.utc).strftime("%Y-%m-%d"), h["item_id"],
                    h["title"], f"{h['rating']:g}", h["part"]] for h in answer.history],
                  title=f"user {answer.user_id}: most recent interactions (all excluded from the list)")
    recall = f", recall@{k} against exact {result.recall_vs_exact:.3f}" if result.recall_vs_exact is not None else ""
    note(f"{len(result.users)} user(s); run loaded in {result.load_seconds:.2f}s; {result.index} search "
         f"{result.seconds_per_query * 1000:.2f} ms per user{recall}.")
