"""Knowledge sets: metadata vectors, reduce with provenance and caching, and a light CLI start-up."""

import subprocess
import sys

import numpy as np
import pytest

from kt_cli.errors import MissingInputError, UsageError
from kt_cli.knowledge.sets import import_metadata_vectors, reduce_set
from kt_cli.store import Store


def test_metadata_vectors_are_genre_and_decade_shares(store_path) -> None:
    with Store.open(store_path) as store:
        report = import_metadata_vectors(store, "ml-100k", "genres")
        ids, vectors = store.knowledge_vectors("ml-100k", "genres")
        columns = store.knowledge_set("ml-100k", "genres").params["columns"]
        inter = store.interactions("ml-100k")
        items = store.item_fields("ml-100k")
        assert import_metadata_vectors(store, "ml-100k", "genres").cached
    assert report.set.n_vectors == 943 and vectors.shape == (943, len(columns))
    # recompute user 1's share of liked Comedy by hand
    user = inter[inter.user_id == "1"]
    liked = user[user.rating >= user.rating.mean()]
    comedies = sum("Comedy" in items[i]["class"].split() for i in liked.item_id)
    row = vectors[ids.index("1")]
    assert row[columns.index("liked:Comedy")] == pytest.approx(comedies / len(user))
    era_columns = [i for i, c in enumerate(columns) if c.startswith("era:")]
    assert row[era_columns].sum() == pytest.approx(1.0, abs=0.01)  # (almost) every movie has a year


def test_reduce_records_its_parent_and_is_cached(store_path) -> None:
    with Store.open(store_path) as store:
        import_metadata_vectors(store, "ml-100k", "genres")
        row, cached = reduce_set(store, "ml-100k", "genres", method="pca", dim=8)
        again, cached_again = reduce_set(store, "ml-100k", "genres", method="pca", dim=8)
        _, reduced = store.knowledge_vectors("ml-100k", "genres-pca8")
    assert (row.name, row.parent, row.method, row.dim, cached, cached_again) == (
        "genres-pca8", "genres", "pca", 8, False, True)
    assert reduced.shape == (943, 8) and np.isfinite(reduced).all()
    assert reduced[:, 0].var() >= reduced[:, 7].var()  # PCA orders components by variance


def test_reduce_errors_name_the_fix(store_path) -> None:
    with Store.open(store_path) as store:
        with pytest.raises(MissingInputError, match="kt embed"):
            reduce_set(store, "ml-100k", "nothing")
        import_metadata_vectors(store, "ml-100k", "genres")
        with pytest.raises(UsageError, match="--dim must be between 1 and"):
            reduce_set(store, "ml-100k", "genres", method="pca", dim=500)


def test_cli_start_up_imports_no_torch_recbole_or_umap() -> None:
    code = ("import sys, kt_cli.cli.app; heavy = [m for m in ('torch', 'recbole', 'umap', 'sklearn') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
