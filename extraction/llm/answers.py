"""What goes in (``Request``), what comes out (``Answer``), and what it cost (``Usage``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from extraction.llm.endpoint import Endpoint

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Request(Generic[T]):
    """One question. ``cache_key`` is built by the caller, who knows what makes two questions the same (document
    hash, chunk, prompt and schema versions, the question); the client adds the model name."""

    messages: list[dict]
    response_model: type[T]
    cache_key: str
    max_tokens: int | None = None


@dataclass(frozen=True)
class Answer(Generic[T]):
    """A validated answer. Token counts cover every attempt it took (re-asks included); for a cached answer they are
    those of the original call, which cost nothing this time (``Usage`` does not count them again)."""

    value: T
    confidence: float | None
    cached: bool
    prompt_tokens: int
    completion_tokens: int
    seconds: float


@dataclass
class Usage:
    """Summed per client (per run).

    ``calls`` counts every request sent to the endpoint: first attempts, ``reasks`` (the answer failed validation and
    the model was asked again) and ``retries`` (transport: timeout, 429, 5xx, connection). ``cached`` counts answers
    served from the cache, which sent nothing. ``failures`` counts questions that ended in ``LLMError``.
    ``llm_seconds`` sums the time each question spent at the endpoint (backoff included); with ``concurrency`` > 1
    it can exceed the wall time.
    """

    calls: int = 0
    cached: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_seconds: float = 0.0
    reasks: int = 0

    def cost(self, endpoint: Endpoint) -> float:
        """Spend in the endpoint's currency from its per-million-token prices (0 for the bundled model)."""
        return (
            self.prompt_tokens * endpoint.price_in_per_mtok + self.completion_tokens * endpoint.price_out_per_mtok
        ) / 1e6

    def as_dict(self) -> dict:
        return asdict(self)
