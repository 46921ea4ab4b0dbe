"""kt embed --profiles: real all-MiniLM-L6-v2 vectors, cached by text, stored as a knowledge set."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kt_cli.cli.app import app
from kt_cli.errors import MissingInputError, NotFoundError
from kt_cli.knowledge.encoders import MiniLM, make_encoder
from kt_cli.knowledge.texts import embed_profiles, embed_texts
from kt_cli.profiles.generate import generate_profiles
from kt_cli.store import Store
from tests.test_profiles import Scripted, _job


@pytest.fixture(scope="module")
def minilm() -> MiniLM:
    return MiniLM()


def test_profiles_become_normalised_384d_vectors_and_reruns_are_cached(store_path: Path, minilm: MiniLM) -> None:
    with Store.open(store_path) as store:
        made = generate_profiles(store, _job(limit=4), Scripted)
        first = embed_profiles(store, "ml-100k", made.set.name, minilm)
        again = embed_profiles(store, "ml-100k", made.set.name, minilm)
        ids, vectors = store.knowledge_vectors("ml-100k", first.set.name)
    assert first.set.name == "user-scripted-minilm" and first.set.source == "profiles"
    assert (first.encoded, first.without_vector, first.set.dim) == (4, 939, 384)
    assert again.cached and again.encoded == 0
    assert ids == ["1", "2", "3", "4"] and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_same_texts_under_another_name_reuse_cached_vectors(store_path: Path, minilm: MiniLM) -> None:
    with Store.open(store_path) as store:
        a = embed_texts(store, "ml-100k", "user", ["1", "2"], ["likes noir", "likes westerns"], minilm,
                        name="a", source="test", params={})
        b = embed_texts(store, "ml-100k", "user", ["1", "2", "3"], ["likes noir", "likes westerns", ""], minilm,
                        name="b", source="test", params={})
        assert np.array_equal(store.knowledge_vectors("ml-100k", "a")[1], store.knowledge_vectors("ml-100k", "b")[1])
    assert (a.encoded, b.encoded, b.reused, b.empty) == (2, 0, 2, 1)


def test_missing_profile_set_names_the_command(store_path: Path, minilm: MiniLM) -> None:
    with Store.open(store_path) as store, pytest.raises(MissingInputError, match="kt profile --dataset ml-100k"):
        embed_profiles(store, "ml-100k", "nope", minilm)


def test_unknown_encoder_lists_the_valid_forms() -> None:
    with pytest.raises(NotFoundError, match="minilm, openai:MODEL"):
        make_encoder("bert", base_url="http://x/v1", api_key=None)


def test_cli_embed_profiles_json(store_path: Path) -> None:
    with Store.open(store_path) as store:
        made = generate_profiles(store, _job(limit=3), Scripted)
    result = CliRunner().invoke(app, ["embed", "--profiles", made.set.name, "--store", str(store_path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["vectors"], summary["dim"], summary["users_without_vector"]) == (3, 384, 940)


def test_cli_lists_profile_sets(store_path: Path) -> None:
    with Store.open(store_path) as store:
        generate_profiles(store, _job(limit=2), Scripted)
    result = CliRunner().invoke(app, ["knowledge", "--profiles", "--store", str(store_path), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert (row["name"], row["n_profiles"], row["n_missing"], row["model"]) == ("user-scripted", 2, 941, "scripted")
