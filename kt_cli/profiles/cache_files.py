"""Shareable profile files: one JSONL per (dataset, profile set), as shipped in ``profiles_cache/``.

The first line is a header with the provenance of the set (template and its hash, history rules,
back-end, model, sampling parameters, dataset fingerprint); each further line is one profile with the
cache key of the answer, so importing a file fills the store's response cache and a later ``kt profile``
with the same template, model and parameters finds every answer there and calls no LLM.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from kt_cli import __version__
from kt_cli.datasets.registry import ensure_dataset
from kt_cli.errors import DataFormatError, MissingInputError
from kt_cli.store import ProfileSetRow, Store, _now

FORMAT = "kt-profiles/1"
ROW_FIELDS = ("entity_id", "key", "prompt_hash", "text", "tokens_in", "tokens_out", "seconds", "finish_reason",
              "created_at")


def file_name(dataset: str, entity: str, set_name: str) -> str:
    """``<dataset>.<entity>.<set name without its entity prefix>.jsonl``: sets of one model made from
    different histories (``...-allhistory``) get different files."""
    tail = set_name.removeprefix(f"{entity}-")
    return f"{dataset}.{entity}.{tail}.jsonl"


def export_set(store: Store, dataset: str, name: str, target: Path) -> tuple[Path, int]:
    """Write profile set ``name`` to ``target``: a ``.jsonl`` path is the file, anything else a folder
    (created if needed) that gets the standard file name."""
    row = store.profile_set(dataset, name)
    if row is None:
        raise MissingInputError(f"Profile set '{name}' of {dataset} does not exist.",
                                f"kt profile --dataset {dataset}")
    if target.suffix != ".jsonl":
        target.mkdir(parents=True, exist_ok=True)
        target = target / file_name(dataset, row.entity, row.name)
    path = target
    frame = store.profiles(dataset, name)
    header = {"format": FORMAT, "dataset": dataset, "fingerprint": ensure_dataset(store, dataset).fingerprint,
              "name": row.name, "entity": row.entity, "template": row.template, "template_hash": row.template_hash,
              "rules": row.rules, "backend": row.backend, "model": row.model, "params": row.params,
              "n_profiles": row.n_profiles, "created_at": row.created_at.isoformat(), "kt_version": __version__}
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as out:
        out.write(json.dumps(header, sort_keys=True) + "\n")
        for record in frame.to_dict("records"):
            values = {f: record[f] for f in ROW_FIELDS}
            values["created_at"] = pd.Timestamp(values["created_at"]).isoformat()
            out.write(json.dumps(values, ensure_ascii=False, default=_plain) + "\n")
    partial.replace(path)
    return path, len(frame)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def read_file(path: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """Header and rows of a profile file; a file in another format is refused with its line number."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataFormatError(f"Cannot read profile file {path}: {e.strerror}.") from e
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        header = {}
    if header.get("format") != FORMAT:
        raise DataFormatError(f"{path} is not a kt profile file (its first line must be a header with "
                              f"\"format\": \"{FORMAT}\"). Write one with kt profile --export.")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            record = json.loads(line)
            rows.append({f: record[f] for f in ROW_FIELDS})
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DataFormatError(f"{path}, line {number}: not a profile row ({e}). Each row needs "
                                  f"{', '.join(ROW_FIELDS)}.") from e
    frame = pd.DataFrame(rows, columns=list(ROW_FIELDS))
    frame["created_at"] = pd.to_datetime(frame["created_at"]).dt.tz_localize(None)
    return header, frame


def _responses(header: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["entity_id"]).assign(
        version=1, backend=header["backend"], model=header["model"], params=json.dumps(header["params"],
                                                                                      sort_keys=True))


def import_file(store: Store, path: Path, name: str | None = None) -> tuple[ProfileSetRow, int]:
    """Load a profile file as a profile set (its own name unless ``name``); returns it and new answers."""
    header, frame = read_file(path)
    dataset = header["dataset"]
    ensure_dataset(store, dataset)
    known = store.entity_ids(dataset, header["entity"])
    unknown = sorted(set(frame["entity_id"]) - known)
    if unknown:
        raise DataFormatError(f"{path} has {len(unknown)} {header['entity']} ids that are not in {dataset} "
                              f"(e.g. {', '.join(unknown[:5])}); it was made for another version of the dataset.")
    with store.transaction():
        added = store.import_responses(_responses(header, frame))
        versions = store.latest_responses(frame["key"].tolist())
        chosen = dict(zip(versions["key"], versions["version"]))
        entries = pd.DataFrame({"entity_id": frame["entity_id"], "response_key": frame["key"],
                                "response_version": [int(chosen[k]) for k in frame["key"]]})
        row = ProfileSetRow(dataset, name or header["name"], header["entity"], header["template"],
                            header["template_hash"], header["rules"], header["backend"], header["model"],
                            header["params"], len(entries), len(known) - len(entries), _now())
        store.save_profile_set(row, entries)
    return row, added


def shipped_sets(folder: Path, dataset: str, entity: str) -> list[tuple[str, str]]:
    """(set name, history rule) of every profile file in ``folder`` for this dataset and entity."""
    found = []
    for path in sorted(folder.glob(f"{dataset}.{entity}.*.jsonl")):
        with open(path, encoding="utf-8") as handle:
            try:
                header = json.loads(handle.readline())
            except json.JSONDecodeError:
                continue
        if header.get("format") == FORMAT and header.get("dataset") == dataset:
            found.append((str(header.get("name")), str(header.get("rules", {}).get("history", "?"))))
    return found


def load_matching(store: Store, folder: Path, dataset: str, entity: str, keys: set[str]) -> int:
    """Add to the store's cache the answers in ``folder``'s files for this dataset whose key is wanted."""
    added = 0
    for path in sorted(folder.glob(f"{dataset}.{entity}.*.jsonl")):
        header, frame = read_file(path)
        if header.get("dataset") != dataset or header.get("entity") != entity:
            continue
        wanted = frame[frame["key"].isin(keys)]
        if len(wanted):
            added += store.import_responses(_responses(header, wanted))
    return added
