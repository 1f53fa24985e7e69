"""The endpoint layer against the fake OpenAI-compatible server: structured answers, retries, re-asks, failures,
accounting, parallel questions and the API key's secrecy."""

from __future__ import annotations

import json
import logging
import math
import pickle
import socket
import threading
import traceback
import uuid
from enum import StrEnum
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from extraction.llm import Endpoint, LLMError, Request, open_client
from tests.extraction.fake_openai import FakeOpenAI, Received, completion, error, stall, tool_call

KEY_ENV = "KG_TEST_LLM_KEY"


class Kind(StrEnum):
    movie = "movie"
    person = "person"


class Typed(BaseModel):
    kind: Kind
    name: str = Field(max_length=40)


HEAT = {"kind": "movie", "name": "Heat"}


def endpoint(fake: FakeOpenAI, **kw) -> Endpoint:
    """Fast settings: tiny backoff so retries take milliseconds."""
    settings = {"model": "fake-model", "base_url": fake.url, "api_key_env": KEY_ENV, "backoff_s": 0.01, "timeout_s": 5}
    return Endpoint(**{**settings, **kw})


def question(text: str = "What is Heat?", key: str | None = None, **kw) -> Request[Typed]:
    return Request([{"role": "user", "content": text}], Typed, cache_key=key or uuid.uuid4().hex, **kw)


def test_answer_is_validated_with_confidence_tokens_and_grammar_mode(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.push(completion(HEAT, prompt_tokens=30, completion_tokens=8, logprobs=[-0.1, -0.3]))
    with open_client(endpoint(fake_openai), cache_dir=tmp_path) as llm:
        answer = llm.ask(question())
    assert answer.value == Typed(kind=Kind.movie, name="Heat")
    assert answer.confidence == pytest.approx(math.exp(-0.2))
    assert (answer.cached, answer.prompt_tokens, answer.completion_tokens) == (False, 30, 8)
    body = fake_openai.requests[0].body
    assert body["model"] == "fake-model"
    assert body["response_format"]["type"] == "json_schema"  # any non-OpenAI URL gets the grammar-enforced mode
    assert body["response_format"]["json_schema"]["schema"]["properties"]["kind"]
    assert (body["logprobs"], body["top_logprobs"], body["max_tokens"], body["temperature"]) == (True, 1, 512, 0.0)


def test_request_max_tokens_wins_and_logprobs_can_be_off(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.push(completion(HEAT))
    with open_client(endpoint(fake_openai, logprobs=False), cache_dir=tmp_path) as llm:
        answer = llm.ask(question(max_tokens=64))
    body = fake_openai.requests[0].body
    assert body["max_tokens"] == 64
    assert "logprobs" not in body and "top_logprobs" not in body
    assert answer.confidence is None


def test_transport_retries_500_and_timeout_then_succeeds(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.push(error(500), stall(1.5), completion(HEAT))
    with open_client(endpoint(fake_openai, timeout_s=0.3), cache_dir=tmp_path) as llm:
        answer = llm.ask(question())
        usage = llm.usage
    assert answer.value.name == "Heat"
    assert len(fake_openai.requests) == 3
    assert (usage.calls, usage.retries, usage.reasks, usage.failures) == (3, 2, 0, 0)


def test_429_waits_as_long_as_retry_after_says(fake_openai: FakeOpenAI, tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, logger="extraction.llm")
    fake_openai.push(error(429, "slow down", {"Retry-After": "0.2"}), completion(HEAT))
    with open_client(endpoint(fake_openai), cache_dir=tmp_path) as llm:
        llm.ask(question())
        assert llm.usage.retries == 1
    assert "HTTP 429" in caplog.text and "retry 1/4 in 0.20 s" in caplog.text


def test_gives_up_after_max_retries_naming_endpoint_and_model(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.push(error(503), error(503), error(503), completion(HEAT))
    with open_client(endpoint(fake_openai, max_retries=2), cache_dir=tmp_path) as llm:
        with pytest.raises(LLMError) as caught:
            llm.ask(question())
        usage = llm.usage
    message = str(caught.value)
    assert fake_openai.url in message and "fake-model" in message
    assert "HTTP 503" in message and "after 3 attempts" in message
    assert len(fake_openai.requests) == 3
    assert (usage.calls, usage.retries, usage.failures) == (3, 2, 1)


def test_client_error_is_not_retried(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.push(error(400, "unknown model"), completion(HEAT))
    with open_client(endpoint(fake_openai), cache_dir=tmp_path) as llm, pytest.raises(LLMError, match="HTTP 400"):
        llm.ask(question())
    assert len(fake_openai.requests) == 1


def test_connection_refused_is_retried_then_reported(tmp_path: Path):
    with socket.socket() as s:  # a port that nothing listens on once this block ends
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    ep = Endpoint(model="m", base_url=url, api_key_env=KEY_ENV, backoff_s=0.01, max_retries=1)
    with open_client(ep, cache_dir=tmp_path) as llm:
        with pytest.raises(LLMError, match="cannot connect") as caught:
            llm.ask(question())
        assert (llm.usage.calls, llm.usage.retries) == (2, 1)
    assert url in str(caught.value)


def test_malformed_json_is_reasked_with_the_error_then_accepted(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.push(
        completion('{"kind": "movie", "name": ', prompt_tokens=30, completion_tokens=9),
        completion({"kind": "planet", "name": "Mars"}, prompt_tokens=60, completion_tokens=9),
        completion(HEAT, prompt_tokens=90, completion_tokens=8),
    )
    asked = question()
    with open_client(endpoint(fake_openai), cache_dir=tmp_path) as llm:
        answer = llm.ask(asked)
        usage = llm.usage
    assert answer.value.name == "Heat"
    assert asked.messages == [{"role": "user", "content": "What is Heat?"}]  # the caller's list is not touched
    assert (answer.prompt_tokens, answer.completion_tokens) == (180, 26)  # every attempt is paid for
    assert (usage.calls, usage.reasks, usage.retries) == (3, 2, 0)
    reask = fake_openai.requests[2].body["messages"]
    assert reask[0] == {"role": "user", "content": "What is Heat?"}
    assert any(m["role"] == "assistant" and "planet" in m["content"] for m in reask)
    assert "kind" in reask[-1]["content"]  # the validation error is shown to the model


def test_reasks_exhausted_raise_with_last_answer(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.push(completion("not json"), completion("still not json"), completion(HEAT))
    with open_client(endpoint(fake_openai, max_reasks=1), cache_dir=tmp_path) as llm:
        with pytest.raises(LLMError, match="no valid Typed after 2 attempts") as caught:
            llm.ask(question())
        assert (llm.usage.calls, llm.usage.reasks, llm.usage.failures) == (2, 1, 1)
    assert "still not json" in str(caught.value)
    assert len(fake_openai.requests) == 2


def test_truncated_answer_says_to_raise_max_tokens(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.push(completion('{"kind": "mo', finish_reason="length"))
    with open_client(endpoint(fake_openai, max_tokens=8), cache_dir=tmp_path) as llm:
        pytest.raises(LLMError, llm.ask, question()).match("max_tokens=8")


def test_cache_hit_sends_no_request_and_counts_as_cached(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.push(completion(HEAT, prompt_tokens=30, completion_tokens=8, logprobs=[-0.5]))
    with open_client(endpoint(fake_openai), cache_dir=tmp_path) as llm:
        first = llm.ask(question(key="doc1:chunk0:v1"))
    with open_client(endpoint(fake_openai), cache_dir=tmp_path) as llm:  # a later run
        again = llm.ask(question(key="doc1:chunk0:v1"))
        usage = llm.usage
    assert len(fake_openai.requests) == 1
    assert again.cached and again.value == first.value and again.confidence == first.confidence
    assert (again.prompt_tokens, again.completion_tokens) == (30, 8)
    assert (usage.cached, usage.calls, usage.prompt_tokens, usage.completion_tokens) == (1, 0, 0, 0)

    fake_openai.push(completion(HEAT))
    with open_client(endpoint(fake_openai, model="other-model"), cache_dir=tmp_path) as llm:
        assert not llm.ask(question(key="doc1:chunk0:v1")).cached  # the model is part of the key
    assert len(fake_openai.requests) == 2


def test_without_the_cache_every_question_is_asked(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.push(completion(HEAT), completion(HEAT))
    with open_client(endpoint(fake_openai), cache_dir=tmp_path, use_cache=False) as llm:
        assert not llm.ask(question(key="same")).cached
        assert not llm.ask(question(key="same")).cached
    assert len(fake_openai.requests) == 2
    assert list(tmp_path.iterdir()) == []


def test_usage_sums_tokens_and_prices_them(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.push(completion(HEAT, prompt_tokens=100, completion_tokens=10))
    fake_openai.push(completion(HEAT, prompt_tokens=50, completion_tokens=20))
    ep = endpoint(fake_openai, price_in_per_mtok=2.0, price_out_per_mtok=8.0)
    with open_client(ep, cache_dir=tmp_path) as llm:
        llm.ask(question())
        llm.ask(question())
        usage = llm.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.calls) == (150, 30, 2)
    assert usage.cost(ep) == pytest.approx((150 * 2.0 + 30 * 8.0) / 1e6)
    assert usage.as_dict()["prompt_tokens"] == 150 and usage.llm_seconds > 0


def test_ask_many_keeps_order_bounds_concurrency_and_returns_failures(fake_openai: FakeOpenAI, tmp_path: Path):
    def respond(request: Received):
        i = int(request.body["messages"][-1]["content"][1:])
        if i == 3:
            return error(400, "bad question")
        reply = completion({"kind": "movie", "name": f"n{i}"})
        return stall(0.05 * (5 - i), reply)  # later questions answer sooner: completion order differs

    fake_openai.responder = respond
    done: list[int] = []
    with open_client(endpoint(fake_openai, concurrency=2), cache_dir=tmp_path) as llm:
        results = llm.ask_many([question(f"q{i}") for i in range(6)], on_done=done.append)
        usage = llm.usage
    assert isinstance(results[3], LLMError) and "HTTP 400" in str(results[3])
    assert [r.value.name for i, r in enumerate(results) if i != 3] == ["n0", "n1", "n2", "n4", "n5"]
    assert sorted(done) == list(range(6))
    assert fake_openai.max_in_flight == 2
    assert (usage.calls, usage.failures) == (6, 1)


def test_tools_mode_sends_a_strict_schema(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.push(tool_call("Typed", HEAT))
    with open_client(endpoint(fake_openai, mode="tools"), cache_dir=tmp_path) as llm:
        answer = llm.ask(question())
    assert answer.value.name == "Heat" and answer.confidence is None  # no logprobs for tool calls
    body = fake_openai.requests[0].body
    function = body["tools"][0]["function"]
    assert function["name"] == "Typed" and function["strict"] is True
    assert function["parameters"]["additionalProperties"] is False
    assert sorted(function["parameters"]["required"]) == ["kind", "name"]
    assert body["tool_choice"]["function"]["name"] == "Typed"
    assert "response_format" not in body


def test_json_mode_asks_for_a_json_object(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.push(completion(HEAT))
    with open_client(endpoint(fake_openai, mode="json"), cache_dir=tmp_path) as llm:
        assert llm.ask(question()).value.name == "Heat"
    assert fake_openai.requests[0].body["response_format"] == {"type": "json_object"}


def test_api_key_is_sent_but_never_logged_raised_or_cached(
    fake_openai: FakeOpenAI, tmp_path: Path, caplog, monkeypatch
):
    secret = "sk-test-" + uuid.uuid4().hex
    monkeypatch.setenv(KEY_ENV, secret)
    caplog.set_level(logging.DEBUG)

    def echo_key(request: Received):  # a careless server that quotes the key back
        return error(401, f"Incorrect API key provided: {request.headers.get('authorization')}")

    fake_openai.push(completion(HEAT), error(500, "boom"))
    fake_openai.responder = echo_key
    with open_client(endpoint(fake_openai, max_retries=1), cache_dir=tmp_path) as llm:
        llm.ask(question())  # answered and cached
        failures = [llm.ask_many([question()])[0]]
        with pytest.raises(LLMError) as caught:
            llm.ask(question())
        failures.append(caught.value)
        shown = repr(llm)
    assert fake_openai.requests[0].headers["authorization"] == f"Bearer {secret}"
    assert all(secret not in json.dumps(r.body) for r in fake_openai.requests)
    for failure in failures:
        assert isinstance(failure, LLMError) and "***" in str(failure)
        assert failure.__cause__ is None and failure.__context__ is None
        text = "".join(traceback.format_exception(failure)) + repr(failure)
        assert secret not in text
        assert secret.encode() not in pickle.dumps(failure)
    assert secret not in caplog.text and secret not in shown
    for file in tmp_path.iterdir():
        assert secret.encode() not in file.read_bytes(), file


def test_missing_key_for_openai_fails_before_any_request(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    opening = open_client(Endpoint(model="gpt-4o-mini"), cache_dir=tmp_path)
    with pytest.raises(LLMError, match="set the environment variable OPENAI_API_KEY") as caught:
        opening.__enter__()
    assert "https://api.openai.com/v1" in str(caught.value)


def test_client_closed_while_waiting_stops_retrying(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.push(error(503, headers={"Retry-After": "30"}))
    with open_client(endpoint(fake_openai), cache_dir=tmp_path) as llm:
        closer = threading.Timer(0.2, llm.close)  # what leaving the context (Ctrl-C) does to questions in flight
        closer.start()
        with pytest.raises(LLMError, match="closed while waiting to retry"):
            llm.ask(question())
        closer.join()
    assert len(fake_openai.requests) == 1
