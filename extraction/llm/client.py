"""``open_client`` and ``LLMClient``: one structured question at a time, or many in parallel, cached and accounted.

Each question goes: answer cache → instructor (response model, mode, validation re-asks) → ``transport.send``
(transport retries) → the openai client → the endpoint. Whatever fails for good comes out as one ``LLMError``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import instructor
import openai
from instructor.core import IncompleteOutputException, InstructorError, InstructorRetryException
from pydantic import BaseModel, ValidationError

from extraction.llm.answers import Answer, Request, T, Usage
from extraction.llm.bundled import MODEL_ID, BundledServer, bundled_model_path
from extraction.llm.cache import AnswerCache, CachedAnswer, cache_root
from extraction.llm.endpoint import Endpoint, api_key, remote_base_url, resolve_mode, server_threads
from extraction.llm.errors import LLMError, redact, shorten
from extraction.llm.transport import Attempts, TransportFailure, send

log = logging.getLogger(__name__)
# instructor logs every failed attempt at ERROR; with no logging configured Python would print those to stderr,
# although the failure reaches the caller as an LLMError anyway. A NullHandler keeps them for users who configure
# logging and silent otherwise.
logging.getLogger("instructor").addHandler(logging.NullHandler())

INSTRUCTOR_MODES = {
    "json_schema": instructor.Mode.JSON_SCHEMA,
    "tools": instructor.Mode.TOOLS,
    "json": instructor.Mode.JSON,
}


def completion_confidence(completion: Any) -> float | None:
    """exp(mean token log-probability) of the completion's content: the geometric mean of the token probabilities,
    in (0, 1]. None when the endpoint gave no log-probabilities (not asked for, not supported, or a tool call:
    OpenAI gives them for content only).

    llama.cpp reports the model's probabilities before its grammar masks the sampling, so tokens the schema forces
    (braces, key names) count at whatever the model thought of them; the score ranks answers of one prompt and
    schema against each other, and a threshold on it must be calibrated per model and prompt.
    """
    choices = getattr(completion, "choices", None) or []
    logprobs = getattr(choices[0], "logprobs", None) if choices else None
    tokens = getattr(logprobs, "content", None) or []
    values = [t.logprob for t in tokens if t.logprob is not None]
    if not values:
        return None
    return math.exp(sum(values) / len(values))


def _strict_tools(response_model: type[BaseModel], kwargs: dict) -> dict:
    """OpenAI strict function calling: instructor 1.17 builds the tool but cannot mark it strict (its ``strict``
    argument is taken for pydantic validation), so the schema is replaced by openai's strict form (every object
    closed, every field required), under the name instructor chose, so its ``tool_choice`` still matches."""
    name = kwargs["tools"][0]["function"]["name"]
    return {**kwargs, "tools": [openai.pydantic_function_tool(response_model, name=name)]}


class LLMClient:
    """Asks one endpoint structured questions. Build it with ``open_client``, which also owns the local server."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        base_url: str,
        model_name: str,
        key: str,
        cache: AnswerCache | None,
        server: BundledServer | None = None,
    ):
        self.endpoint = endpoint
        self.base_url = base_url
        self.model_name = model_name
        self.mode = resolve_mode(endpoint, base_url)
        self.usage = Usage()
        self.server = server
        self._cache = cache
        self._secret = key  # held only to redact it from anything a server sends back
        self._openai = openai.OpenAI(base_url=base_url, api_key=key, timeout=endpoint.timeout_s, max_retries=0)
        self._closing = threading.Event()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LLMClient({self.base_url!r}, model={self.model_name!r}, mode={self.mode!r})"

    def close(self) -> None:
        """Stop retrying and waiting (threads still in flight end with an LLMError), and release the connections."""
        self._closing.set()
        self._openai.close()
        if self._cache is not None:
            self._cache.close()

    def ask(self, request: Request[T]) -> Answer[T]:
        """The validated answer: from the cache when this model answered this key before, else from the endpoint.
        Raises LLMError when transport retries or validation re-asks are exhausted."""
        t0 = time.perf_counter()
        hit = self._from_cache(request)
        if hit is not None:
            value, cached = hit
            with self._lock:
                self.usage.cached += 1
            seconds = time.perf_counter() - t0
            return Answer(value, cached.confidence, True, cached.prompt_tokens, cached.completion_tokens, seconds)

        attempts = Attempts()
        value, completion, reason = self._call(request, attempts)
        seconds = time.perf_counter() - t0
        with self._lock:
            u = self.usage
            u.calls += attempts.sent
            u.retries += attempts.retries
            u.reasks += max(0, attempts.sent - 1 - attempts.retries)
            u.prompt_tokens += attempts.prompt_tokens
            u.completion_tokens += attempts.completion_tokens
            u.llm_seconds += seconds
            u.failures += 1 if reason is not None else 0
        if reason is not None:
            raise LLMError(self.base_url, self.model_name, reason)

        # instructor hangs the raw completion on the value as a private attribute; rebuilding the value from its
        # JSON drops it, so a fresh answer equals (and pickles like) the same answer read back from the cache.
        value_json = value.model_dump_json()
        record = CachedAnswer(
            value_json, attempts.prompt_tokens, attempts.completion_tokens, completion_confidence(completion)
        )
        if self._cache is not None:
            self._cache.put(request.cache_key, self.model_name, record)
        value = request.response_model.model_validate_json(value_json)
        return Answer(value, record.confidence, False, record.prompt_tokens, record.completion_tokens, seconds)

    def ask_many(
        self, requests: list[Request], *, on_done: Callable[[int], None] | None = None
    ) -> list[Answer | LLMError]:
        """Answers in the order of ``requests``, at most ``endpoint.concurrency`` in flight; a question that fails
        yields its LLMError in its place instead of stopping the others. ``on_done(i)`` is called (from a worker
        thread) as each question ends, for a progress bar."""

        def one(i: int, request: Request) -> Answer | LLMError:
            try:
                return self.ask(request)
            except LLMError as e:
                return e
            finally:
                if on_done is not None:
                    on_done(i)

        pool = ThreadPoolExecutor(max_workers=self.endpoint.concurrency, thread_name_prefix="kg-llm")
        futures = [pool.submit(one, i, r) for i, r in enumerate(requests)]
        try:
            results = [f.result() for f in futures]
        except BaseException:
            # Ctrl-C: drop the questions not yet started and leave now; open_client's exit then closes the client
            # and stops the server, which ends the questions in flight.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return results

    def _from_cache(self, request: Request[T]) -> tuple[T, CachedAnswer] | None:
        if self._cache is None:
            return None
        cached = self._cache.get(request.cache_key, self.model_name)
        if cached is None:
            return None
        try:
            return request.response_model.model_validate_json(cached.value_json), cached
        except ValidationError:
            # Same key, but the response model changed without a new schema version in the key: ask again.
            log.warning(
                "cached answer for %s no longer validates as %s; asking again",
                request.cache_key,
                request.response_model.__name__,
            )
            return None

    def _call(self, request: Request[T], attempts: Attempts) -> tuple[T | None, Any, str | None]:
        """(value, completion, None) on success, (None, None, reason) on failure; the reason is computed inside
        the ``except`` blocks but the LLMError is raised by the caller, so it keeps no traceback to the key."""
        mode = INSTRUCTOR_MODES[self.mode]
        transport = partial(
            send,
            self._openai.chat.completions.create,
            attempts=attempts,
            max_retries=self.endpoint.max_retries,
            base_backoff_s=self.endpoint.backoff_s,
            timeout_s=self.endpoint.timeout_s,
            secret=self._secret,
            closing=self._closing,
            where=f"{self.base_url} model {self.model_name}",
        )
        if self.mode == "tools":

            def create(**kwargs):
                return transport(_strict_tools(request.response_model, kwargs))
        else:

            def create(**kwargs):
                return transport(kwargs)

        client = instructor.Instructor(
            client=self._openai, create=instructor.patch(create=create, mode=mode), mode=mode
        )
        extra: dict[str, Any] = {}
        if self.endpoint.logprobs:
            # top_logprobs=1: llama.cpp sends no log-probabilities at all for 0, and OpenAI accepts 1.
            extra = {"logprobs": True, "top_logprobs": 1}
        max_tokens = request.max_tokens or self.endpoint.max_tokens
        try:
            value, completion = client.create_with_completion(
                model=self.model_name,
                messages=request.messages,
                response_model=request.response_model,
                max_retries=self.endpoint.max_reasks,
                temperature=self.endpoint.temperature,
                max_tokens=max_tokens,
                **extra,
            )
            return value, completion, None
        except IncompleteOutputException:
            reason = (
                f"the answer reached max_tokens={max_tokens} before its JSON was complete; raise max_tokens or bound "
                "the list and string lengths in the response model"
            )
        except InstructorRetryException as e:
            reason = self._failure_reason(e, request)
        except InstructorError as e:
            reason = shorten(redact(f"{type(e).__name__}: {e}", self._secret))
        return None, None, reason

    def _failure_reason(self, error: InstructorRetryException, request: Request) -> str:
        cause = error.__cause__
        if isinstance(cause, TransportFailure):  # instructor wraps whatever the transport raised
            return cause.reason
        last = ""
        completion = error.last_completion
        if completion is not None and getattr(completion, "choices", None):
            message = completion.choices[0].message
            raw = message.content or (message.tool_calls[0].function.arguments if message.tool_calls else "")
            last = f"; last answer: {shorten(redact(raw or '', self._secret), 200)}"
        why = shorten(redact(str(cause or error), self._secret))
        n = error.n_attempts
        return f"no valid {request.response_model.__name__} after {n} attempt{'s' * (n != 1)}: {why}{last}"


@contextmanager
def open_client(
    endpoint: Endpoint | None = None, *, cache_dir: Path | None = None, use_cache: bool = True
) -> Iterator[LLMClient]:
    """A client for ``endpoint`` (default: the bundled model), with its answer cache in ``cache_dir`` (default
    ``$KG_CACHE_DIR/llm``, else ``~/.cache/kg-toolkit/llm``); ``use_cache=False`` asks every question afresh and
    stores nothing. For the bundled model it starts the local server in a child process first and stops it on the
    way out, whether the block ends normally, by an exception or by Ctrl-C (see ``bundled.py`` for SIGTERM and for
    a parent killed outright)."""
    endpoint = endpoint or Endpoint()
    server = None
    if endpoint.is_bundled:
        model_path = bundled_model_path()
        server = BundledServer(
            model_path, threads=server_threads(endpoint), ctx=endpoint.context_tokens, parallel=endpoint.concurrency
        ).start()
    try:
        base_url = server.base_url if server else remote_base_url(endpoint)
        model_name = MODEL_ID if server else endpoint.model
        key = api_key(endpoint, base_url)
        cache = AnswerCache(cache_dir or cache_root() / "llm") if use_cache else None
        client = LLMClient(endpoint, base_url=base_url, model_name=model_name, key=key, cache=cache, server=server)
        try:
            yield client
        finally:
            client.close()
    finally:
        if server is not None:
            server.stop()
