"""A scriptable OpenAI-compatible chat-completions server for tests: stdlib ``http.server`` on a thread.

Replies come from a queue (``push``), one per request, or from a ``responder`` function of the request (for
parallel requests, whose arrival order is not fixed). It records every request (path, headers, JSON body), so tests
can count calls and look at what the client sent, and the most requests it held at once (``max_in_flight``).
Replies it can give: a completion (valid, malformed or truncated content, optional token log-probabilities), a tool
call, an HTTP error with headers (429 + Retry-After), and a stall longer than the client's timeout.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: dict | str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request as the server got it; header names in lower case."""

    path: str
    headers: dict[str, str]
    body: dict


def _completion(message: dict, *, prompt_tokens: int, completion_tokens: int, finish_reason: str, logprobs) -> Reply:
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}
    if logprobs is not None:
        choice["logprobs"] = {
            "content": [
                {"token": f"t{i}", "logprob": lp, "bytes": None, "top_logprobs": []} for i, lp in enumerate(logprobs)
            ]
        }
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
    usage["total_tokens"] = prompt_tokens + completion_tokens
    body = {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake-model"}
    return Reply(body={**body, "choices": [choice], "usage": usage})


def completion(
    content: dict | str,
    *,
    prompt_tokens: int = 20,
    completion_tokens: int = 5,
    logprobs: list[float] | None = None,
    finish_reason: str = "stop",
) -> Reply:
    """A chat completion whose message content is ``content`` (a dict is sent as its JSON; a str as is, so it can be
    malformed JSON)."""
    text = content if isinstance(content, str) else json.dumps(content)
    return _completion(
        {"content": text},
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        finish_reason=finish_reason,
        logprobs=logprobs,
    )


def tool_call(name: str, arguments: dict, *, prompt_tokens: int = 20, completion_tokens: int = 5) -> Reply:
    """A completion that calls function ``name`` with ``arguments``: what OpenAI answers in tools mode."""
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    return _completion(
        {"content": None, "tool_calls": [call]},
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        finish_reason="tool_calls",
        logprobs=None,
    )


def error(status: int, message: str = "fake failure", headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body={"error": {"message": message, "type": "fake"}}, headers=headers or {})


def stall(seconds: float, then: Reply | None = None) -> Reply:
    """Answer only after ``seconds``: past the client's timeout, the client gives up first."""
    reply = then or completion({})
    return Reply(status=reply.status, body=reply.body, headers=reply.headers, delay_s=seconds)


class FakeOpenAI:
    """``with FakeOpenAI() as fake: ... Endpoint(model="fake-model", base_url=fake.url)``."""

    def __init__(self, *replies: Reply, responder: Callable[[Received], Reply] | None = None):
        self._queue: deque[Reply] = deque(replies)
        self._lock = threading.Lock()
        self.responder = responder
        self.requests: list[Received] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._server: ThreadingHTTPServer | None = None

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def _next(self, request: Received) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(request)
        return error(500, "fake server: no scripted reply left")

    def __enter__(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Received(self.path, headers, json.loads(raw or b"{}"))
                with fake._lock:
                    fake.requests.append(request)
                    fake._in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake._in_flight)
                try:
                    self._answer(fake._next(request))
                finally:
                    with fake._lock:
                        fake._in_flight -= 1

            def _answer(self, reply: Reply) -> None:
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                data = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                payload = data.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
