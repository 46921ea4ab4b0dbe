"""Talking to chat models: an OpenAI-compatible HTTP client and llama.cpp in process.

Both back-ends expose one coroutine, ``complete(messages, sampling) -> Completion``. The HTTP client
retries 429, 5xx and timeouts with capped exponential back-off and full jitter, honouring
``Retry-After``; it fails at once, with one clear paragraph, when the server cannot be reached, rejects
the key or does not know the model. The API key lives only in the request header: every message that
could echo it (an error body, a URL with credentials) goes through :func:`redact` first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import functools
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from kt_cli.errors import LLMError, LLMRequestError
from kt_cli.profiles.prompts import Messages

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


# Longest answer by entity: an item description lists more facts (genre, era, people, plot, mood, acclaim)
# than a taste profile, and at 128 tokens most were cut mid-sentence.
DEFAULT_MAX_TOKENS = {"user": 128, "item": 192}


@dataclass(frozen=True)
class Sampling:
    """Generation parameters; part of every cache key."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 128
    seed: int = 42

    def as_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                "seed": self.seed}


@dataclass(frozen=True)
class Completion:
    """One answer and what it cost."""

    text: str
    tokens_in: int
    tokens_out: int
    seconds: float
    finish_reason: str
    attempts: int = 1


class ChatBackend(Protocol):
    """What profile generation needs from a chat model."""

    model_id: str
    backend: str

    async def check(self) -> list[str]: ...

    async def complete(self, messages: Messages, sampling: Sampling) -> Completion: ...

    async def aclose(self) -> None: ...


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret, and any word starting with a secret's first 8 characters, as ``***``.

    The prefix rule catches servers that echo a key partly masked (``sk-abc12***xyz``).
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
            if len(secret) >= 12:
                text = re.sub(re.escape(secret[:8]) + r"\S*", "***", text)
    return text


def display_url(url: str) -> str:
    """The URL with any user:password part removed, safe to print."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(userinfo=b"")) if parsed.userinfo else url


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential back-off with full jitter; ``Retry-After`` (seconds or a date) wins if longer."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, retry_after: str | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        backoff = rng.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        hinted = _retry_after_seconds(retry_after)
        return backoff if hinted is None else max(backoff, hinted)


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None  # unparseable hint: fall back to back-off


@dataclass
class OpenAIChat:
    """A chat-completions client for any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama, TGI)."""

    base_url: str
    model_id: str
    api_key: str | None = None
    timeout: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    transport: httpx.AsyncBaseTransport | None = None  # tests pass a fake
    rng: random.Random = field(default_factory=random.Random)
    sleep: Any = asyncio.sleep
    backend: str = "openai"

    def __post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._client = httpx.AsyncClient(base_url=self.base_url.rstrip("/") + "/", headers=headers,
                                         timeout=self.timeout, transport=self.transport)
        self._where = display_url(self.base_url)

    def _safe(self, text: str) -> str:
        return redact(text, (self.api_key or "",))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def check(self) -> list[str]:
        """Fail fast on an unreachable server, a rejected key or an unknown model; returns served models.

        Servers that serve one model (llama.cpp) ignore the request's model name, so a one-model list
        that lacks it is accepted; a longer list must contain it.
        """
        response, _ = await self._send("GET", "models", None, retries=False)
        if response.status_code == 404:
            return []  # some servers (TGI) have no model list
        self._raise_for_fatal(response)
        try:
            listed = response.json().get("data", []) if response.status_code < 400 else []
        except (ValueError, AttributeError):
            listed = []  # not a model list: let the first real request decide
        served = [str(m.get("id")) for m in listed if isinstance(m, dict)]
        if len(served) > 1 and self.model_id not in served:
            shown = ", ".join(served[:20]) + (" ..." if len(served) > 20 else "")
            raise LLMError(f"The server at {self._where} does not serve model '{self.model_id}'. It serves: "
                           f"{shown}. Pass one of them with --model.")
        return served

    def _raise_for_fatal(self, response: httpx.Response) -> None:
        body = self._safe(response.text[:300])
        if response.status_code in (401, 403):
            raise LLMError(f"The server at {self._where} rejected the request ({response.status_code}: "
                           f"{body}). Set a valid key in KT_API_KEY or OPENAI_API_KEY.")
        if response.status_code == 404 and "model" in body.lower():
            raise LLMError(f"The server at {self._where} does not know model '{self.model_id}' ({body}). "
                           "Check --model against the server's model list.")

    async def _send(self, method: str, path: str, payload: dict[str, Any] | None, *,
                    retries: bool = True) -> tuple[httpx.Response, int]:
        """The first response that is not worth retrying, and the attempt it came on."""
        attempts = self.retry.attempts if retries else 1
        for attempt in range(1, attempts + 1):
            retry_after = None
            try:
                response = await self._client.request(method, path, json=payload)
                if response.status_code not in RETRY_STATUSES:
                    return response, attempt
                retry_after = response.headers.get("retry-after")
                problem = f"HTTP {response.status_code}: {self._safe(response.text[:200])}"
            except httpx.ConnectError as e:
                raise LLMError(f"Cannot reach the LLM server at {self._where} ({self._safe(str(e)) or 'refused'})"
                               ". Start the server, or fix --base-url (it should end in /v1).") from e
            except httpx.TimeoutException as e:
                problem = f"no answer within {self.timeout:g} s ({type(e).__name__})"
            except httpx.TransportError as e:  # connection dropped mid-request (server crashed)
                problem = f"connection lost ({self._safe(str(e)) or type(e).__name__})"
            if attempt == attempts:
                raise LLMError(f"The LLM server at {self._where} kept failing after {attempts} attempts "
                               f"(last: {problem}). Finished answers are stored; rerun to continue.")
            await self.sleep(self.retry.delay(attempt, retry_after, self.rng))
        raise AssertionError("unreachable")

    async def complete(self, messages: Messages, sampling: Sampling) -> Completion:
        start = time.perf_counter()
        payload = {"model": self.model_id, "messages": messages, **sampling.as_dict()}
        response, attempts = await self._send("POST", "chat/completions", payload)
        self._raise_for_fatal(response)
        if response.status_code >= 400:
            raise LLMRequestError(f"The LLM server at {self._where} refused the request (HTTP {response.status_code}: "
                           f"{self._safe(response.text[:300])}).")
        try:
            body = response.json()
            choice = body["choices"][0]
            text = choice["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise LLMError(f"The server at {self._where} answered with something that is not a chat "
                           f"completion: {self._safe(response.text[:200])}") from e
        usage = body.get("usage") or {}
        return Completion(text.strip(), int(usage.get("prompt_tokens") or 0),
                          int(usage.get("completion_tokens") or 0), time.perf_counter() - start,
                          str(choice.get("finish_reason") or ""), attempts)


    async def embed(self, texts: list[str]) -> list[list[float]]:
        """Vectors for ``texts`` from ``/embeddings``, in input order."""
        response, _ = await self._send("POST", "embeddings", {"model": self.model_id, "input": texts})
        self._raise_for_fatal(response)
        try:
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            vectors = [list(map(float, d["embedding"])) for d in data]
        except (httpx.HTTPStatusError, ValueError, KeyError, TypeError) as e:
            raise LLMError(f"The server at {self._where} did not return embeddings (HTTP "
                           f"{response.status_code}: {self._safe(response.text[:200])}).") from e
        if len(vectors) != len(texts):
            raise LLMError(f"The server at {self._where} returned {len(vectors)} embeddings for {len(texts)} texts.")
        return vectors


class LocalLlama:
    """llama.cpp in this process (the optional ``local`` extra); one request at a time on one worker thread.

    Closing waits for the request in flight: freeing the model under a running decode crashes the
    process (a Ctrl-C would otherwise end in a segmentation fault instead of a clean, resumable stop).
    """

    backend = "local"

    def __init__(self, gguf: Path, model_id: str, *, threads: int = 1, n_ctx: int = 2048) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise LLMError("The local back-end needs llama-cpp-python: pip install -e '.[local]' (builds "
                           "llama.cpp, several minutes), or use --llm openai with a running server.") from e
        self.model_id = model_id
        self._llm = Llama(model_path=str(gguf), n_ctx=n_ctx, n_threads=threads, verbose=False)
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="kt-llama")

    async def check(self) -> list[str]:
        return [self.model_id]

    async def aclose(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
        self._llm.close()

    async def complete(self, messages: Messages, sampling: Sampling) -> Completion:
        start = time.perf_counter()
        call = functools.partial(self._llm.create_chat_completion, messages=messages, **sampling.as_dict())
        out = await asyncio.get_running_loop().run_in_executor(self._worker, call)
        usage = out.get("usage") or {}
        choice = out["choices"][0]
        return Completion((choice["message"]["content"] or "").strip(), int(usage.get("prompt_tokens", 0)),
                          int(usage.get("completion_tokens", 0)), time.perf_counter() - start,
                          str(choice.get("finish_reason") or ""))
