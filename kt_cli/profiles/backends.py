"""Choosing a chat back-end from the command line's words, without loading anything until needed.

The model id (part of every cache key) is known at once; the model itself is opened only when some
answer is missing from the cache, so a fully cached run never loads llama.cpp or opens a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kt_cli.errors import UsageError
from kt_cli.profiles.llm import ChatBackend, LocalLlama, OpenAIChat
from kt_cli.profiles.models import DEFAULT_CHAT_MODEL, DEFAULT_MODEL_CACHE, packaged_model

BACKENDS = ("local", "openai")


@dataclass(frozen=True)
class BackendSpec:
    """``local`` (llama.cpp in process: a packaged model name or a GGUF file) or ``openai`` (HTTP)."""

    kind: str = "local"
    model: str | None = None
    gguf: Path | None = None
    base_url: str = "http://127.0.0.1:8080/v1"
    api_key: str | None = None  # from the environment; never stored
    timeout: float = 120.0
    threads: int = 1
    model_cache: Path = DEFAULT_MODEL_CACHE

    def __post_init__(self) -> None:
        if self.kind not in BACKENDS:
            raise UsageError(f"--llm must be one of {', '.join(BACKENDS)}, not '{self.kind}'.")
        if self.kind == "openai" and not self.model:
            raise UsageError("--llm openai needs --model NAME (the model name the server knows).")
        if self.kind == "openai" and self.gguf:
            raise UsageError("--gguf is for --llm local; a server loads its own model file.")
        if self.gguf and self.model:
            raise UsageError("Give --gguf PATH or --model NAME for --llm local, not both.")
        if self.gguf and not self.gguf.is_file():
            raise UsageError(f"GGUF file {self.gguf} does not exist.")
        if self.kind == "local" and not self.gguf:
            packaged_model(self.model or DEFAULT_CHAT_MODEL)  # unknown names fail before any work

    @property
    def model_id(self) -> str:
        if self.kind == "openai":
            return str(self.model)
        return self.gguf.stem if self.gguf else (self.model or DEFAULT_CHAT_MODEL)

    def open(self) -> ChatBackend:
        if self.kind == "openai":
            return OpenAIChat(self.base_url, self.model_id, api_key=self.api_key, timeout=self.timeout)
        path = self.gguf or packaged_model(self.model_id).path(self.model_cache)
        return LocalLlama(path, self.model_id, threads=self.threads)
