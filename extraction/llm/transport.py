"""Transport retries: timeouts, 429, 5xx and connection errors, with exponential backoff and jitter.

The openai client's own retries are switched off (``max_retries=0``) so that every retry happens here, where it is
counted in ``Usage`` and logged, honours ``Retry-After``, and stops at once when the client is closing (Ctrl-C).
Validation re-asks are instructor's job and sit above this: each of its attempts goes through ``send``.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import openai

from extraction.llm.errors import redact, shorten

log = logging.getLogger(__name__)

BACKOFF_CAP_S = 30.0
RETRY_AFTER_CAP_S = 120.0
RETRY_STATUS = frozenset({408, 429})  # and every 5xx


class TransportFailure(Exception):
    """The endpoint could not be reached or answered with an error, for good. Carries only a redacted reason: no
    reference to the openai exception, whose request holds the API key in its headers."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass
class Attempts:
    """What one question cost at the endpoint; summed into ``Usage`` when the question ends."""

    sent: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def is_retryable(error: openai.APIError) -> bool:
    if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
        return True
    return isinstance(error, openai.APIStatusError) and (error.status_code in RETRY_STATUS or error.status_code >= 500)


def retry_after_s(error: openai.APIError) -> float | None:
    """The server's own wait, from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if not isinstance(error, openai.APIStatusError):
        return None
    headers = error.response.headers
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is not None:
                return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return None


def backoff_s(retry: int, base_s: float, retry_after: float | None) -> float:
    """Delay before retry number ``retry`` (1-based): the server's Retry-After when it gives one (capped), else
    ``base_s * 2**(retry-1)`` capped at 30 s, scaled by a random factor in [0.5, 1) so that parallel requests that
    failed together do not come back together."""
    if retry_after is not None:
        return min(retry_after, RETRY_AFTER_CAP_S)
    return min(BACKOFF_CAP_S, base_s * 2 ** (retry - 1)) * (0.5 + random.random() / 2)


def describe(error: openai.APIError, secret: str, timeout_s: float) -> str:
    """A one-line reason quoting the server, with the key redacted in case a server echoes it."""
    if isinstance(error, openai.APITimeoutError):
        return f"no answer within the {timeout_s:g} s timeout"
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error.__context__
        return "cannot connect" + (f" ({shorten(redact(str(cause), secret), 160)})" if cause else "")
    if isinstance(error, openai.APIStatusError):
        body = error.response.text if error.response is not None else str(error)
        return f"HTTP {error.status_code}: {shorten(redact(body, secret))}"
    return shorten(redact(f"{type(error).__name__}: {error}", secret))


def send(
    create: Callable[..., object],
    kwargs: dict,
    *,
    attempts: Attempts,
    max_retries: int,
    base_backoff_s: float,
    timeout_s: float,
    secret: str,
    closing: threading.Event,
    where: str,
):
    """One completion request, retried on transient errors; returns the completion or raises TransportFailure.

    Token usage of every completion that arrives is added to ``attempts`` here, so answers that later fail
    validation (and are re-asked) are paid for too.
    """
    while True:
        if closing.is_set():
            raise TransportFailure("the client was closed")
        attempts.sent += 1
        reason = None
        try:
            completion = create(**kwargs)
        except openai.APIError as e:
            reason, retryable, wait = describe(e, secret, timeout_s), is_retryable(e), retry_after_s(e)
        if reason is None:
            usage = getattr(completion, "usage", None)
            if usage is not None:
                attempts.prompt_tokens += usage.prompt_tokens or 0
                attempts.completion_tokens += usage.completion_tokens or 0
            return completion
        done = attempts.retries
        if not retryable or done >= max_retries:
            tried = f" after {done + 1} attempts" if retryable else ""
            raise TransportFailure(reason + tried)
        delay = backoff_s(done + 1, base_backoff_s, wait)
        log.info("%s: %s; retry %d/%d in %.2f s", where, reason, done + 1, max_retries, delay)
        if closing.wait(delay):
            raise TransportFailure(f"the client was closed while waiting to retry ({reason})")
        attempts.retries += 1
