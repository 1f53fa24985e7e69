"""Choices derived from an Endpoint (mode, threads, URL, validation), the backoff schedule, and the shared cache."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from extraction.llm import Endpoint, LLMError
from extraction.llm.cache import AnswerCache, CachedAnswer, cache_root
from extraction.llm.endpoint import remote_base_url, resolve_mode, server_threads
from extraction.llm.transport import BACKOFF_CAP_S, backoff_s


@pytest.mark.parametrize(
    ("mode", "url", "expected"),
    [
        ("auto", "https://api.openai.com/v1", "tools"),  # OpenAI enforces strict function schemas
        ("auto", "http://gpu-box:8000/v1", "json_schema"),  # vLLM: guided decoding from the schema
        ("auto", "http://127.0.0.1:8080/v1", "json_schema"),  # llama.cpp: schema → grammar
        ("json_schema", "https://api.openai.com/v1", "json_schema"),  # the user's choice wins
        ("json", "http://gpu-box:8000/v1", "json"),
    ],
)
def test_mode_is_the_strongest_the_endpoint_enforces(mode: str, url: str, expected: str):
    assert resolve_mode(Endpoint(model="m", base_url=url, mode=mode), url) == expected


def test_base_url_defaults_to_openai_unless_the_sdk_variable_says_otherwise(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert remote_base_url(Endpoint(model="gpt-4o-mini")) == "https://api.openai.com/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://vllm:8000/v1/")
    assert remote_base_url(Endpoint(model="m")) == "http://vllm:8000/v1"
    assert remote_base_url(Endpoint(model="m", base_url="http://llama:8080/v1")) == "http://llama:8080/v1"


@pytest.mark.parametrize(
    ("env", "threads", "expected"),
    [
        ({"CI": "true"}, None, 1),
        ({"CI": "false"}, None, 2),
        ({"KG_LLM_THREADS": "1"}, None, 1),
        ({"KG_LLM_THREADS": "3", "CI": "1"}, None, 3),
        ({"CI": "1"}, 4, 4),
    ],
)
def test_server_threads(monkeypatch, env: dict, threads: int | None, expected: int):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("KG_LLM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert server_threads(Endpoint(threads=threads)) == expected


def test_bad_endpoints_are_refused_with_the_reason():
    with pytest.raises(LLMError, match="mode 'xml' is not one of"):
        Endpoint(mode="xml")
    with pytest.raises(LLMError, match="give the served model's name"):
        Endpoint(base_url="http://localhost:8080/v1")
    with pytest.raises(LLMError, match="concurrency must be at least 1"):
        Endpoint(concurrency=0)


def test_backoff_doubles_with_jitter_and_respects_retry_after():
    for retry in range(1, 10):
        ceiling = min(BACKOFF_CAP_S, 0.5 * 2 ** (retry - 1))
        delays = [backoff_s(retry, 0.5, None) for _ in range(50)]
        assert all(ceiling / 2 <= d < ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert backoff_s(1, 0.5, 7.0) == 7.0
    assert backoff_s(1, 0.5, 1e6) == 120.0


def test_cache_root_follows_kg_cache_dir(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("KG_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv("KG_CACHE_DIR")
    assert cache_root() == Path.home() / ".cache" / "kg-toolkit"


def _write_answers(folder: str, writer: int, n: int) -> None:
    cache = AnswerCache(Path(folder))
    for i in range(n):
        cache.put(f"key-{writer}-{i}", "model", CachedAnswer(f'{{"i": {i}}}', i, writer, None))
    cache.close()


@pytest.mark.slow  # spawning two interpreters that import openai and instructor: 3-5 s here
def test_cache_is_shared_safely_by_processes(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_write_answers, args=(str(tmp_path), w, 200)) for w in range(2)]
    for p in workers:
        p.start()
    _write_answers(str(tmp_path), 2, 200)  # and this process at the same time
    for p in workers:
        p.join()
        assert p.exitcode == 0
    cache = AnswerCache(tmp_path)
    for writer in range(3):
        for i in range(200):
            got = cache.get(f"key-{writer}-{i}", "model")
            assert got == CachedAnswer(f'{{"i": {i}}}', i, writer, None)
    assert cache.get("key-0-0", "other-model") is None
    cache.close()
