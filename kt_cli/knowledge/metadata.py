"""Knowledge vectors from item metadata alone, with no LLM: the baseline any LLM profile must beat.

Each user becomes the share of each genre/category among the items they liked (rated at or above
their own mean) and among those they disliked, plus a histogram of release decades when the dataset
has years. It is the same information an LLM-KT prompt shows the LLM, without the LLM.
"""

from __future__ import annotations

import numpy as np

from kt_cli.datasets.fields import TOKEN_FIELDS, decade, genres
from kt_cli.datasets.registry import ensure_dataset
from kt_cli.errors import DataFormatError
from kt_cli.store import Store

def metadata_vectors(store: Store, dataset: str) -> tuple[list[str], np.ndarray, list[str]]:
    """User ids, their vectors, and the name of each column."""
    ensure_dataset(store, dataset)
    items = store.item_fields(dataset)
    tokens = {item: genres(fields) for item, fields in items.items()}
    decades = {item: decade(fields) for item, fields in items.items()}
    vocab = sorted({t for ts in tokens.values() for t in ts})
    eras = sorted({d for d in decades.values() if d})
    if not vocab:
        raise DataFormatError(
            f"Items of {dataset} have no genre or category field ({', '.join(TOKEN_FIELDS)}) to build "
            "metadata vectors from."
        )
    columns = [f"liked:{t}" for t in vocab] + [f"disliked:{t}" for t in vocab] + [f"era:{e}" for e in eras]
    index = {name: i for i, name in enumerate(columns)}
    inter = store.interactions(dataset)
    inter["liked"] = inter["rating"] >= inter.groupby("user_id")["rating"].transform("mean")
    users = sorted(inter["user_id"].unique())
    position = {u: i for i, u in enumerate(users)}
    matrix = np.zeros((len(users), len(columns)), dtype=np.float32)
    for user, item, liked in zip(inter["user_id"], inter["item_id"], inter["liked"]):
        row = matrix[position[user]]
        side = "liked" if liked else "disliked"
        for token in tokens.get(item, []):
            row[index[f"{side}:{token}"]] += 1
        if decades.get(item):
            row[index[f"era:{decades[item]}"]] += 1
    counts = inter.groupby("user_id").size().reindex(users).to_numpy(dtype=np.float32)
    return users, matrix / counts[:, None], columns
