"""The OpenAI-compatible client's fault handling, against a fake transport (no network)."""

import asyncio
import email.utils
import json
import random
import time

import httpx
import pytest

from kt_cli.errors import LLMError, LLMRequestError
from kt_cli.profiles.llm import OpenAIChat, RetryPolicy, Sampling, display_url, redact

KEY = "sk-test-0123456789abcdefSECRET"
MESSAGES = [{"role": "user", "content": "hi"}]


def _ok(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(200, json={"choices": [{"message": {"content": f" echo {body['model']} "},
                                                  "finish_reason": "stop"}],
                                     "usage": {"prompt_tokens": 7, "completion_tokens": 3}})


def _client(responses: list, sleeps: list[float] | None = None, **kwargs) -> OpenAIChat:
    """A client whose transport answers with ``responses`` in turn (a callable, a Response, or an exception)."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        step = queue.pop(0)
        if isinstance(step, Exception):
            raise step
        return step(request) if callable(step) else step

    async def fake_sleep(seconds: float) -> None:
        (sleeps if sleeps is not None else []).append(seconds)

    return OpenAIChat("http://llm.test/v1", "m", api_key=KEY, transport=httpx.MockTransport(handler),
                      rng=random.Random(0), sleep=fake_sleep, **kwargs)


def _complete(client: OpenAIChat):
    async def run():
        try:
            return await client.complete(MESSAGES, Sampling())
        finally:
            await client.aclose()
    return asyncio.run(run())


def test_success_parses_text_and_usage() -> None:
    answer = _complete(_client([_ok]))
    assert (answer.text, answer.tokens_in, answer.tokens_out, answer.attempts) == ("echo m", 7, 3, 1)


def test_429_waits_at_least_retry_after_then_succeeds() -> None:
    sleeps: list[float] = []
    answer = _complete(_client([httpx.Response(429, headers={"Retry-After": "7"}), _ok], sleeps))
    assert answer.attempts == 2 and sleeps == [7.0]


def test_500_and_timeout_are_retried_with_growing_capped_backoff() -> None:
    sleeps: list[float] = []
    timeout = httpx.ReadTimeout("slow")
    answer = _complete(_client([httpx.Response(500), timeout, httpx.Response(503), _ok], sleeps,
                               retry=RetryPolicy(attempts=6, base=1.0, cap=3.0)))
    assert answer.attempts == 4 and len(sleeps) == 3
    assert all(0 <= s <= bound for s, bound in zip(sleeps, [1.0, 2.0, 3.0]))


def test_retry_policy_bounds() -> None:
    policy, rng = RetryPolicy(base=0.5, cap=4.0), random.Random(1)
    for attempt in range(1, 12):
        assert 0 <= policy.delay(attempt, None, rng) <= min(4.0, 0.5 * 2 ** (attempt - 1))
    assert policy.delay(1, "10", rng) == 10.0  # the server's hint wins over a shorter back-off
    assert policy.delay(1, "not a date", rng) <= 0.5
    in_20_s = email.utils.formatdate(time.time() + 20, usegmt=True)  # Retry-After may be an HTTP date
    assert 17 <= policy.delay(1, in_20_s, rng) <= 20


def test_exhausted_retries_give_one_clear_error() -> None:
    with pytest.raises(LLMError, match="kept failing after 3 attempts.*HTTP 502.*rerun to continue"):
        _complete(_client([httpx.Response(502)] * 3, retry=RetryPolicy(attempts=3)))


def test_unreachable_server_fails_at_once() -> None:
    with pytest.raises(LLMError, match="Cannot reach the LLM server at http://llm.test/v1.*--base-url"):
        _complete(_client([httpx.ConnectError("refused")]))


def test_rejected_key_is_redacted_from_the_message() -> None:
    echo = httpx.Response(401, json={"error": f"Incorrect API key provided: {KEY}"})
    with pytest.raises(LLMError) as caught:
        _complete(_client([echo]))
    assert KEY not in str(caught.value) and KEY[:8] not in str(caught.value)
    assert "KT_API_KEY" in str(caught.value)


def test_a_bad_request_fails_only_that_request() -> None:
    with pytest.raises(LLMRequestError, match="HTTP 400"):
        _complete(_client([httpx.Response(400, text="context too long")]))


def test_check_lists_served_models_when_ours_is_missing() -> None:
    models = httpx.Response(200, json={"data": [{"id": "a"}, {"id": "b"}]})
    client = _client([models])
    with pytest.raises(LLMError, match="does not serve model 'm'. It serves: a, b"):
        asyncio.run(client.check())


def test_check_accepts_a_single_model_server() -> None:  # llama.cpp lists its file path, ignores the name
    client = _client([httpx.Response(200, json={"data": [{"id": "/models/x.gguf"}]})])
    assert asyncio.run(client.check()) == ["/models/x.gguf"]


def test_unknown_model_404_is_explained() -> None:
    with pytest.raises(LLMError, match="does not know model 'm'"):
        _complete(_client([httpx.Response(404, json={"error": {"message": "The model `m` does not exist"}})]))


def test_redaction_helpers() -> None:
    assert redact(f"key={KEY}; prefix={KEY[:10]}", (KEY,)) == "key=***; prefix=***"
    assert redact("nothing", ("",)) == "nothing"
    assert display_url("http://user:pw@host:1/v1") == "http://host:1/v1"


def test_embeddings_come_back_in_input_order() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        texts = json.loads(request.content)["input"]
        data = [{"index": i, "embedding": [float(i), 1.0]} for i in range(len(texts))][::-1]
        return httpx.Response(200, json={"data": data})

    client = _client([handler])
    assert asyncio.run(client.embed(["a", "b", "c"])) == [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]
