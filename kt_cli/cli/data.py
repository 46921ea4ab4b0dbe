"""``kt data``: list datasets, register a folder of RecBole atomic files, import raw Amazon dumps."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from kt_cli.cli import options
from kt_cli.cli.render import emit_json, note, table

if TYPE_CHECKING:
    from kt_cli.datasets.registry import Filters

MinRating = Annotated[Optional[float], typer.Option(help="Drop interactions rated below this.")]
MinUser = Annotated[int, typer.Option(help="Keep users with at least this many interactions (k-core).")]
MinItem = Annotated[int, typer.Option(help="Keep items with at least this many interactions (k-core).")]
Replace = Annotated[bool, typer.Option(help="Overwrite a different dataset registered under this name.")]


def list_datasets(store: options.Store = options.DEFAULT_STORE, json: options.Json = False) -> None:
    """List built-in and registered datasets."""
    from kt_cli.datasets.registry import list_datasets as library_list
    from kt_cli.store import Store

    if store.is_file():
        with Store.open(store) as db:
            rows = library_list(db)
    else:  # reading must not create a store: the built-in datasets need none
        rows = library_list(None)
    if json:
        return emit_json(rows)
    table(["name", "source", "users", "items", "interactions", "filters", "description"],
          [[r["name"], r["source"], r["users"], r["items"], r["interactions"], r["filters"], r["description"]]
           for r in rows])


def register(
    name: Annotated[str, typer.Argument(help="Name to register the dataset under.")],
    path: Annotated[Path, typer.Option(help="Folder with NAME.inter (and optionally .item, .user).")],
    min_rating: MinRating = None,
    min_user_inter: MinUser = 0,
    min_item_inter: MinItem = 0,
    replace: Replace = False,
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """Register a folder of RecBole atomic files (e.g. RecBole's Amazon_CDs_and_Vinyl or ml-1m)."""
    from kt_cli.datasets.registry import Filters

    _register(store, name, path, Filters(min_rating, min_user_inter, min_item_inter), replace, "atomic", json)


def import_amazon(
    name: Annotated[str, typer.Argument(help="Dataset name, e.g. amazon-cds.")],
    out: Annotated[Path, typer.Option(help="Folder to write the atomic files into.")],
    ratings: Annotated[Optional[Path], typer.Option(help="Ratings-only CSV (2014, 2018 or 2023 dump).")] = None,
    reviews: Annotated[Optional[Path], typer.Option(help="Reviews JSON lines (2014/2018/2023).")] = None,
    meta: Annotated[Optional[Path], typer.Option(help="Item metadata JSON lines.")] = None,
    min_rating: MinRating = None,
    min_user_inter: MinUser = 5,
    min_item_inter: MinItem = 5,
    replace: Replace = False,
    store: options.Store = options.DEFAULT_STORE,
    json: options.Json = False,
) -> None:
    """Convert raw Amazon review dumps (gzip or not) to atomic files and register them."""
    from kt_cli.datasets.amazon import import_amazon as run_amazon_import
    from kt_cli.datasets.registry import Filters

    report = run_amazon_import(out, name, ratings=ratings, reviews=reviews, meta=meta)
    if not json:
        note(f"Wrote {', '.join(str(f) for f in report.files)}: {report.n_interactions} interactions, "
             f"{report.n_duplicates} duplicates merged, {report.n_bad_lines} bad lines skipped, "
             f"{report.n_items_with_meta}/{report.n_items} items with metadata.")
    _register(store, name, out, Filters(min_rating, min_user_inter, min_item_inter), replace, "amazon", json,
              {"import": asdict(report)})


def _register(store: Path, name: str, folder: Path, filters: Filters, replace: bool, source: str, json: bool,
              extra: dict[str, Any] | None = None) -> None:
    """Register ``folder`` and report it; ``extra`` wraps the JSON as {**extra, "dataset": row}."""
    from kt_cli.datasets.registry import register_dataset
    from kt_cli.store import Store

    with Store.open(store) as db:
        row = register_dataset(db, name, folder, filters, replace=replace, source=source)
    if json:
        return emit_json({**extra, "dataset": asdict(row)} if extra else asdict(row))
    note(f"Registered {row.name}: {row.n_users} users, {row.n_items} items, {row.n_interactions} "
         f"interactions after filters {row.filters}.")
