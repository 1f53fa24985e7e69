"""Where and how to ask: the ``Endpoint`` a user configures, and the choices derived from it.

Everything a user can switch with a flag lives here (``--base-url``, ``--model``, the key's variable, the mode);
the rest of the layer reads only resolved values, so "bundled Gemma" and "OpenAI" are the same code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlparse

from extraction.llm.errors import LLMError

BUNDLED = "bundled"
OPENAI_BASE_URL = "https://api.openai.com/v1"
MODES = ("auto", "json_schema", "tools", "json")
# The local server ignores the key, but the openai client refuses to start without one.
NO_KEY = "no-key-needed"


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask. None base_url + model "bundled" = the bundled local Gemma 3 270M."""

    model: str = BUNDLED
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    mode: str = "auto"
    temperature: float = 0.0
    max_tokens: int = 512
    timeout_s: float = 120.0
    max_retries: int = 4
    max_reasks: int = 2
    concurrency: int = 2
    threads: int | None = None
    price_in_per_mtok: float = 0.0
    price_out_per_mtok: float = 0.0
    logprobs: bool = True
    # Added beyond the contract (defaults keep it unchanged):
    context_tokens: int = 4096  # bundled server only: context window of each of its `concurrency` slots
    backoff_s: float = 0.5  # first transport-retry delay; doubles per retry (with jitter), capped at 30 s

    def __post_init__(self) -> None:
        where = self.base_url or BUNDLED
        if self.mode not in MODES:
            raise LLMError(where, self.model, f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.model == BUNDLED and self.base_url is not None:
            raise LLMError(where, self.model, "model 'bundled' is the local server; give the served model's name")
        for name in ("max_tokens", "concurrency", "context_tokens"):
            if getattr(self, name) < 1:
                raise LLMError(where, self.model, f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_retries", "max_reasks"):
            if getattr(self, name) < 0:
                raise LLMError(where, self.model, f"{name} must not be negative, got {getattr(self, name)}")
        if self.timeout_s <= 0:
            raise LLMError(where, self.model, f"timeout_s must be positive, got {self.timeout_s}")

    @property
    def is_bundled(self) -> bool:
        return self.model == BUNDLED and self.base_url is None


def remote_base_url(endpoint: Endpoint) -> str:
    """The /v1 URL of a non-bundled endpoint: the flag, else $OPENAI_BASE_URL (the openai SDK's own variable), else
    OpenAI itself, resolved here so that mode selection and error messages see the URL actually used."""
    return (endpoint.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL).rstrip("/")


def is_openai(base_url: str) -> bool:
    return (urlparse(base_url).hostname or "").lower() == "api.openai.com"


def resolve_mode(endpoint: Endpoint, base_url: str) -> str:
    """The structured-output mode to use.

    ``auto`` picks the strongest mode each kind of server enforces: OpenAI enforces strict function schemas, while
    llama.cpp and vLLM compile a JSON schema into a sampling grammar (there ``tools`` and ``json`` are not enforced,
    and llama.cpp fails them outright), so every other URL gets ``json_schema``.
    """
    if endpoint.mode != "auto":
        return endpoint.mode
    return "tools" if is_openai(base_url) else "json_schema"


def api_key(endpoint: Endpoint, base_url: str) -> str:
    """The key from the variable the endpoint names; never stored or logged by this layer.

    Local servers (vLLM, llama.cpp) usually need none, so only OpenAI itself fails fast when it is missing.
    """
    if endpoint.is_bundled:
        return NO_KEY
    key = os.environ.get(endpoint.api_key_env, "")
    if key:
        return key
    if is_openai(base_url):
        raise LLMError(base_url, endpoint.model, f"no API key: set the environment variable {endpoint.api_key_env}")
    return NO_KEY


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def server_threads(endpoint: Endpoint) -> int:
    """CPU threads for the bundled server.

    Two threads is the fast setting on a quiet 2-core machine, but when anything else runs, two threads collapse
    (1-25 tok/s measured instead of 60), so CI and tests ask for one: ``KG_LLM_THREADS=N`` wins, else ``CI`` means 1.
    """
    if endpoint.threads is not None:
        return max(1, endpoint.threads)
    env = os.environ.get("KG_LLM_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise LLMError(BUNDLED, endpoint.model, f"KG_LLM_THREADS must be a whole number, got {env!r}") from None
    if _truthy(os.environ.get("CI")):
        return 1
    return min(2, os.cpu_count() or 1)
