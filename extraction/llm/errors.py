"""The one error the endpoint layer raises, and the redaction that keeps API keys out of it."""

from __future__ import annotations

from kg.errors import KGError


class LLMError(KGError):
    """An LLM request failed for good: transport retries or validation re-asks exhausted, or a fatal HTTP error.

    The message names the endpoint URL and the model so a user knows which flag to fix; it never carries the
    API key (server text quoted in it is passed through ``redact`` first). The error is built outside any
    ``except`` block, so it holds no reference to the openai exception, whose request headers carry the key.
    """

    def __init__(self, base_url: str, model: str, reason: str):
        self.base_url, self.model, self.reason = base_url, model, reason
        super().__init__(f"LLM endpoint {base_url} model {model}: {reason}")


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` (the API key) replaced, for anything quoted from a server."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def shorten(text: str, limit: int = 300) -> str:
    """One line of at most ``limit`` characters: server bodies and validation errors can be pages long."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
