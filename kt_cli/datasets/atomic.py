"""Reading RecBole atomic files (``NAME.inter``, ``NAME.item``, ``NAME.user``) strictly.

RecBole itself skips or mangles bad lines silently; kt reads the files itself first, so a truncated
or malformed file is reported with its line number before anything is trained on it.
Format: tab-separated, a header of ``field:type`` columns (``user_id:token item_id:token
rating:float timestamp:float``), one record per line.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kt_cli.errors import DataFormatError

INTER_COLUMNS = "user_id:token, item_id:token, and optionally rating:float and timestamp:float"


@dataclass(frozen=True)
class AtomicData:
    """Interactions (user_id, item_id, rating, timestamp) plus item and user text fields."""

    interactions: pd.DataFrame
    items: pd.DataFrame  # item_id, fields (JSON text)
    users: pd.DataFrame  # user_id, fields (JSON text)


def find_inter_file(folder: Path, name: str) -> Path:
    """``folder/<name>.inter``: the dataset's name names its files, as in RecBole."""
    if folder.is_file():
        raise DataFormatError(f"--path {folder} is a file; give the folder that holds it ({folder.parent}).")
    if not folder.is_dir():
        raise DataFormatError(
            f"Dataset folder {folder} does not exist. Expected a folder of RecBole atomic files: "
            f"{name}.inter (columns {INTER_COLUMNS}), optionally {name}.item and {name}.user."
        )
    named = folder / f"{name}.inter"
    if named.is_file():
        return named
    candidates = sorted(folder.glob("*.inter"))
    if len(candidates) == 1:
        other = candidates[0].stem
        raise DataFormatError(
            f"{folder} holds {candidates[0].name}, not {name}.inter: a dataset's files are named after it, as in "
            f"RecBole. Register it under its own name (kt data register {other} --path {folder}), or rename "
            f"its files to {name}.inter, {name}.item and {name}.user.")
    found = ", ".join(p.name for p in candidates) or "no .inter file"
    raise DataFormatError(
        f"{folder} must hold the interactions file {name}.inter (columns {INTER_COLUMNS}); found {found}."
    )


def _check_field_counts(path: Path) -> None:
    """Every line must have as many tab-separated fields as the header: catches truncated files,
    which pandas would otherwise pad with empty strings."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
        if not header.strip():
            raise DataFormatError(f"{path} is empty; it needs a header line such as "
                                  "'user_id:token<TAB>item_id:token'.")
        expected = header.count("\t")
        bad, first = 0, 0
        for number, line in enumerate(handle, start=2):
            line = line.rstrip("\r\n")
            if line and line.count("\t") != expected:
                bad += 1
                first = first or number
    if bad:
        raise DataFormatError(
            f"{path} is truncated or malformed: line {first} does not have the header's {expected + 1} "
            f"tab-separated fields ({header.strip()}); {bad} such line(s) in all. Re-export or "
            "re-download the file."
        )


def _read_table(path: Path) -> pd.DataFrame:
    """All columns as strings, header names without their ``:type`` suffix; bad lines are errors."""
    _check_field_counts(path)
    frame = pd.read_csv(
        path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE,
        encoding="utf-8", encoding_errors="replace", skip_blank_lines=True,
    )
    frame.columns = [str(c).split(":", 1)[0] for c in frame.columns]
    return frame


def _numeric(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = values.isna() & (frame[column].str.strip() != "")
    if bad.any():
        line = int(bad.to_numpy().nonzero()[0][0]) + 2
        raise DataFormatError(
            f"{path}: column '{column}' must be numeric, but line {line} has "
            f"'{frame[column].iloc[line - 2]}'."
        )
    return values.astype("float64")


def _fields(frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
    text_columns = [c for c in frame.columns if c != id_column]
    records = frame[text_columns].to_dict(orient="records")
    return pd.DataFrame({
        id_column: frame[id_column].astype(str),
        "fields": [json.dumps(r, ensure_ascii=False) for r in records],
    }).drop_duplicates(id_column)


def read_atomic(folder: Path, name: str) -> AtomicData:
    """Read and validate the atomic files of dataset ``name`` in ``folder``."""
    inter_path = find_inter_file(folder, name)
    inter = _read_table(inter_path)
    missing = [c for c in ("user_id", "item_id") if c not in inter.columns]
    if missing:
        raise DataFormatError(
            f"{inter_path} lacks the column(s) {', '.join(missing)}; its header has "
            f"{', '.join(inter.columns)}. Expected {INTER_COLUMNS}."
        )
    if len(inter) == 0:
        raise DataFormatError(f"{inter_path} has a header but no interactions.")
    interactions = pd.DataFrame({
        "user_id": inter["user_id"].astype(str),
        "item_id": inter["item_id"].astype(str),
        "rating": _numeric(inter, "rating", inter_path) if "rating" in inter else 1.0,
        "timestamp": _numeric(inter, "timestamp", inter_path) if "timestamp" in inter else 0.0,
    })
    stem = inter_path.with_suffix("")
    empty = {"item": pd.DataFrame({"item_id": [], "fields": []}),
             "user": pd.DataFrame({"user_id": [], "fields": []})}
    side: dict[str, pd.DataFrame] = {}
    for kind in ("item", "user"):
        path = stem.with_suffix(f".{kind}")
        if not path.is_file():
            side[kind] = empty[kind]
            continue
        table = _read_table(path)
        if f"{kind}_id" not in table.columns:
            raise DataFormatError(f"{path} lacks the column {kind}_id:token; its header has "
                                  f"{', '.join(table.columns)}.")
        side[kind] = _fields(table, f"{kind}_id")
    return AtomicData(interactions, side["item"], side["user"])
