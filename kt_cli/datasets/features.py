"""Side features for context-aware (CTR) models, and the labelled export of a split for RecBole.

A CTR sample is one interaction of kt's stored split with a 0/1 label from its rating (``rating >=
threshold``, recorded with the run); every train/valid/test interaction is a sample of its part. The users'
and items' own columns (``.user``/``.item`` files: ml-100k's age, gender, occupation, zip code; genres and
release year) become RecBole feature fields, typed by kt rather than by the file, to stay clear of three
RecBole traps (REFERENCE.md):

- unnormalised float fields leave AUC stuck at 0.5: kt never hands RecBole a float field. A numeric column
  with many distinct values is cut into ``NUMERIC_BINS`` quantile bins, each bin a token;
- a label field makes RecBole refuse ``full`` evaluation: kt evaluates CTR runs itself (tasks/ctr.py) and
  gives RecBole ``labeled`` mode only;
- float-sequence fields share one embedding table: kt never makes one; a multi-valued column (genres,
  categories, lists of numbers) is a token sequence.

Free-text titles are left out (near-unique, they would be a second item id). A zip or postal code keeps its
first ``ZIP_PREFIX`` characters (a region), as a full code is nearly a user id on ml-100k (795 codes for
943 users). KAR's knowledge enters through *slot* fields (``kar_user``, ``kar_item``): a copy of the id whose
embedding output the adaptor replaces (methods/kar.py); they are exported only for KAR runs, so a baseline
sees exactly the features it would without KAR.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kt_cli.datasets.fields import TITLE_FIELDS, TOKEN_FIELDS
from kt_cli.datasets.splits import PARTS, RECBOLE_DATASET
from kt_cli.errors import UsageError
from kt_cli.store import Store

LABEL = "label"
ZIP_FIELDS = ("zip_code", "zip", "zipcode", "postcode", "postal_code")
ZIP_PREFIX = 2
NUMERIC_BINS = 10
MAX_NUMERIC_TOKENS = 100  # a numeric column with more distinct values is binned
SLOTS = {"user": "kar_user", "item": "kar_item"}
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class Feature:
    """One side column as RecBole will read it: ``token`` or ``token_seq`` (never a float)."""

    name: str
    kind: str
    rule: str  # how the column's values were turned into tokens, for the run's record


def _token(value: str) -> str:
    return re.sub(r"\s+", "_", value.strip()) or "unknown"


def infer_features(rows: dict[str, dict[str, str]]) -> list[Feature]:
    """The feature fields of one side (users or items), decided from its columns' values."""
    columns: dict[str, list[str]] = {}
    for fields in rows.values():
        for name, value in fields.items():
            columns.setdefault(name, []).append("" if value is None else str(value))
    features = []
    for name, values in columns.items():
        if name in TITLE_FIELDS or name in SLOTS.values() or name in (LABEL, "user_id", "item_id"):
            continue
        present = [v.strip() for v in values if v.strip()]
        if not present:
            continue
        if name in ZIP_FIELDS:
            features.append(Feature(name, "token", f"first {ZIP_PREFIX} characters"))
        elif name in TOKEN_FIELDS or any(re.search(r"\s|\|", v) for v in present):
            features.append(Feature(name, "token_seq", "one token per listed value"))
        elif all(_NUMBER.match(v) for v in present) and len(set(present)) > MAX_NUMERIC_TOKENS:
            features.append(Feature(name, "token", f"{NUMERIC_BINS} quantile bins"))
        else:
            features.append(Feature(name, "token", "value as a token"))
    return features


def feature_frame(rows: dict[str, dict[str, str]], id_column: str, features: list[Feature]) -> pd.DataFrame:
    """One row per entity with each feature's tokens, as written to the ``.user``/``.item`` file."""
    ids = list(rows)
    frame = pd.DataFrame({id_column: ids})
    for feature in features:
        raw = [str(rows[i].get(feature.name) or "").strip() for i in ids]
        if feature.rule.startswith("first"):
            values = [_token(v[:ZIP_PREFIX]) if v else "unknown" for v in raw]
        elif feature.kind == "token_seq":
            values = [" ".join(_token(p) for p in (v.split("|") if "|" in v else v.split()) if p.strip()) for v in raw]
        elif feature.rule.endswith("bins"):
            numbers = pd.to_numeric(pd.Series(raw), errors="coerce")
            bins = pd.qcut(numbers, NUMERIC_BINS, labels=False, duplicates="drop")
            values = ["unknown" if np.isnan(b) else f"q{int(b)}" for b in bins]
        else:
            values = [_token(v) if v else "unknown" for v in raw]
        frame[feature.name] = values
    return frame


def export_ctr(store: Store, sid: str, dataset: str, threshold: float, slots: tuple[str, ...] = ()) -> tuple[Path, dict]:
    """Write the split as labelled RecBole files with side features (once per split, threshold and slots).

    Returns RecBole's ``data_path`` and the description of what was written (label rule, features per side,
    label balance per part), which the run records. ``slots`` names the entities ("user", "item") that get a
    KAR slot field.
    """
    tag = f"ctr-{threshold:g}" + "".join(f"-{s}" for s in slots)
    root = store.artifacts_dir / "splits" / sid / tag
    folder = root / RECBOLE_DATASET
    rows = store.split_rows(sid).merge(store.interactions(dataset)[["user_id", "item_id", "rating"]],
                                       on=["user_id", "item_id"], how="left")
    rows[LABEL] = (rows["rating"] >= threshold).astype(float)
    shares = {PARTS[p]: float(rows.loc[rows["part"] == p, LABEL].mean()) for p in range(3)}
    single = [part for part, share in shares.items() if share in (0.0, 1.0)]
    if single:
        described = ", ".join(f"{part} {share:.0%}" for part, share in shares.items())
        raise UsageError(
            f"--label-threshold {threshold:g} labels every {' and '.join(single)} sample alike (positive share: "
            f"{described}; ratings of {dataset} run from {rows['rating'].min():g} to {rows['rating'].max():g}), so "
            "there is nothing to learn or no AUC to compute. Choose a threshold inside the rating range.")
    sides = {}
    for entity in ("user", "item"):
        values = store.side_fields(dataset, entity)
        id_column = f"{entity}_id"
        known = rows[id_column].unique()
        values = {**{i: {} for i in known}, **values}  # entities without a side row get 'unknown' tokens
        features = infer_features(values)
        frame = feature_frame(values, id_column, features)
        if entity in slots:
            frame[SLOTS[entity]] = frame[id_column]
            features = features + [Feature(SLOTS[entity], "token", "KAR slot: the adaptor supplies its embedding")]
        sides[entity] = (frame, features)
    description = {
        "label": f"{LABEL} = rating >= {threshold:g}", "threshold": threshold,
        "features": {e: [f"{f.name} ({f.kind}: {f.rule})" for f in feats] for e, (_, feats) in sides.items()},
        "positive_share": shares,
    }
    targets = [folder / f"{RECBOLE_DATASET}.{part}.inter" for part in PARTS]
    side_files = {e: folder / f"{RECBOLE_DATASET}.{e}" for e in sides}
    if all(t.is_file() for t in [*targets, *side_files.values()]):
        return root, description
    folder.mkdir(parents=True, exist_ok=True)
    for index, target in enumerate(targets):
        _write(target, ["user_id:token", "item_id:token", f"{LABEL}:float"],
               rows.loc[rows["part"] == index, ["user_id", "item_id", LABEL]])
    for entity, (frame, features) in sides.items():
        _write(side_files[entity], [f"{entity}_id:token"] + [f"{f.name}:{f.kind}" for f in features], frame)
    return root, description


def load_columns(description: dict) -> dict[str, list[str]]:
    """RecBole's ``load_col`` for an export made by :func:`export_ctr`."""
    def names(entity: str) -> list[str]:
        return [f"{entity}_id"] + [entry.split(" ")[0] for entry in description["features"][entity]]

    return {"inter": ["user_id", "item_id", LABEL], "user": names("user"), "item": names("item")}


def _write(target: Path, header: list[str], frame: pd.DataFrame) -> None:
    """Temporary name, then rename: an interrupted export never leaves a complete-looking file."""
    tmp = target.with_suffix(target.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("\t".join(header) + "\n")
        frame.to_csv(handle, sep="\t", header=False, index=False)
    os.replace(tmp, target)
