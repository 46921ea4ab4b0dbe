"""The llm:MODEL encoder: a packaged GGUF model (SmolLM2-135M here) frozen in llama.cpp's embedding mode,
mean-pooled and L2-normalised; vectors cached by (encoder, text) so a rerun asks the model nothing; and the
errors for an unknown model and a missing llama.cpp."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from kt_cli.errors import ModelFileError
from kt_cli.knowledge.encoders import LlamaEmbeddings, make_encoder
from kt_cli.knowledge.texts import embed_texts, item_text
from kt_cli.store import Store
from tests.test_cli_errors import assert_fails, kt

TEXTS = [item_text({"movie_title": "Toy Story", "release_year": "1995", "class": "Animation Children's Comedy"}),
         item_text({"movie_title": "Heat", "release_year": "1995", "class": "Action Crime Thriller"}),
         item_text({"movie_title": "Heat", "release_year": "1995", "class": "Action Crime Thriller"})]


def test_item_text_is_leans_format() -> None:
    assert TEXTS[0] == "Title: Toy Story. Year: 1995. Genres: Animation, Children's, Comedy."


def test_llm_encoder_mean_pools_and_normalises() -> None:
    encoder = make_encoder("llm:smollm2-135m", base_url="", api_key=None)
    assert isinstance(encoder, LlamaEmbeddings) and encoder.name == "llm:smollm2-135m"
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (3, 576) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(vectors[1], vectors[2]) and not np.allclose(vectors[0], vectors[1])
    assert np.allclose(encoder.encode(TEXTS[:1]), vectors[:1], atol=1e-5)  # frozen: same text, same vector


class _Counting:
    """The real encoder, counting the texts it is asked to encode."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.asked = inner, inner.name, 0

    def encode(self, texts):
        self.asked += len(texts)
        return self.inner.encode(texts)


def test_cached_reruns_ask_the_model_nothing(tmp_path: Path) -> None:
    encoder = _Counting(make_encoder("llm:smollm2-135m", base_url="", api_key=None))
    with Store.open(tmp_path / "kt.duckdb") as store:
        first = embed_texts(store, "ml-100k", "item", ["1", "2"], TEXTS[:2], encoder, name="items",
                            source="item-text", params={})
        again = embed_texts(store, "ml-100k", "item", ["1", "2"], TEXTS[:2], encoder, name="items-again",
                            source="item-text", params={})
    assert first.encoded == 2 and again.encoded == 0 and again.reused == 2 and encoder.asked == 2


def test_llm_encoder_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_fails(kt("embed", "--entity", "item", "--encoder", "llm:gpt-9", "--store", tmp_path / "kt.duckdb"), 1,
                 "Unknown encoder 'llm:gpt-9'", "llm:smollm2-135m", "minilm")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as on a machine without the local extra
    with pytest.raises(ModelFileError, match=r"pip install -e '\.\[local\]'"):
        LlamaEmbeddings("smollm2-135m").encode(["x"])
