"""Shared fixtures of the extraction tests (the LLM endpoint layer and the pipeline)."""

from __future__ import annotations

import pytest

from tests.extraction.fake_openai import FakeOpenAI


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "llm: runs the bundled local model (a few seconds, one CPU thread)")


@pytest.fixture
def fake_openai():
    """A running scriptable OpenAI-compatible server (tests/extraction/fake_openai.py)."""
    with FakeOpenAI() as fake:
        yield fake
