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


def test_history_text_control_embeds_every_user(store_path: Path, minilm: MiniLM) -> None:
    from kt_cli.knowledge.texts import embed_history
    from kt_cli.profiles.prompts import HistoryRules

    with Store.open(store_path) as store:
        report = embed_history(store, "ml-100k", minilm, HistoryRules(token_budget=40))
    assert (report.set.name, report.set.n_vectors, report.set.dim, report.without_vector) == (
        "history-minilm", 943, 384, 0)
    assert report.set.source == "history-text"


def test_random_like_covers_the_same_users_with_the_same_scale(store_path: Path) -> None:
    from kt_cli.knowledge.sets import random_like

    rng = np.random.default_rng(0)
    with Store.open(store_path) as store:
        from kt_cli.datasets.registry import ensure_dataset
        from kt_cli.store import KnowledgeSetRow, _now

        ensure_dataset(store, "ml-100k")
        base = (rng.standard_normal((300, 8)) * np.arange(1, 9) + 5).astype(np.float32)
        ids = [str(i) for i in range(1, 301)]
        store.save_knowledge_set(KnowledgeSetRow("ml-100k", "llm", "user", 8, 300, "test", None, {}, None, _now()),
                                 ids, base)
        row, cached = random_like(store, "ml-100k", "llm", seed=1)
        again, cached_again = random_like(store, "ml-100k", "llm", seed=1)
        got_ids, noise = store.knowledge_vectors("ml-100k", row.name)
    assert (row.name, row.parent, cached, cached_again) == ("llm-random", "llm", False, True)
    assert got_ids == sorted(ids)
    assert np.allclose(noise.std(axis=0), base.std(axis=0), rtol=0.2)
    assert abs(np.corrcoef(noise[:, 0], base[np.argsort(ids)][:, 0])[0, 1]) < 0.2  # unrelated to the source


def test_item_text_with_profiles_appends_each_items_profile(store_path: Path, minilm: MiniLM) -> None:
    from kt_cli.knowledge.texts import embed_item_metadata, item_text
    from kt_cli.profiles.generate import ProfileJob
    from kt_cli.profiles.prompts import load_template

    job = ProfileJob("ml-100k", "item", load_template("item", domain="movies"), "scripted", "openai", limit=3)
    with Store.open(store_path) as store:
        made = generate_profiles(store, job, Scripted)
        report = embed_item_metadata(store, "ml-100k", minilm, profile_set=made.set.name)
        ids, vectors = store.knowledge_vectors("ml-100k", report.set.name)
        answers = store.profiles("ml-100k", made.set.name)
        fields = store.item_fields("ml-100k")
        with pytest.raises(MissingInputError, match="kt profile --dataset ml-100k --entity item"):
            embed_item_metadata(store, "ml-100k", minilm, profile_set="nope")
    assert report.set.name == "item-metadata-item-scripted-minilm" and len(ids) == 1682
    assert report.set.params["profile_set"] == made.set.name
    with_profile = dict(zip(answers["entity_id"], answers["text"]))
    probe = [ids.index(i) for i in list(with_profile)[:2]] + [ids.index("1682")]
    texts = [item_text(fields[ids[p]]) + (f" {with_profile[ids[p]]}" if ids[p] in with_profile else "") for p in probe]
    assert np.allclose(vectors[probe], minilm.encode(texts), atol=1e-5)
    assert "1682" not in with_profile
