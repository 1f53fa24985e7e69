"""A scripted stand-in for ``extraction.llm.LLMClient`` (same surface: ask, ask_many, usage, endpoint, model_name).

Pipeline tests use it to decide exactly what "the model" answers to each
question, including answers no real endpoint would let through (values
built with ``model_construct``, skipping validation), so the gates are
tested against the worst a model or an injected document can produce.
The endpoint layer itself is tested against a real HTTP fake server in
test_llm_*.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from pydantic import BaseModel

from extraction.llm import Answer, Endpoint, LLMError, Request, Usage

Reply = BaseModel | tuple[BaseModel, float | None] | Exception
Responder = Callable[[Request], Reply]


class ScriptedClient:
    """Answers each request with ``responder(request)``; caches by key like the real client."""

    def __init__(
        self,
        responder: Responder,
        *,
        model_name: str = "scripted-model",
        confidence: float | None = 0.9,
        price_in: float = 0.0,
        price_out: float = 0.0,
        endpoint: Endpoint | None = None,
    ):
        self.responder = responder
        self.endpoint = endpoint or Endpoint(
            model=model_name,
            base_url="http://scripted.invalid/v1",
            price_in_per_mtok=price_in,
            price_out_per_mtok=price_out,
        )
        self.model_name = model_name if endpoint is None else f"scripted-{endpoint.model}"
        self.usage = Usage()
        self.confidence = confidence
        self.asked: list[Request] = []
        self._cache: dict[str, Answer] = {}

    def ask(self, request: Request) -> Answer:
        if request.cache_key in self._cache:
            self.usage.cached += 1
            hit = self._cache[request.cache_key]
            return Answer(hit.value, hit.confidence, True, hit.prompt_tokens, hit.completion_tokens, 0.0)
        self.asked.append(request)
        reply = self.responder(request)
        prompt_tokens = sum(len(m["content"]) for m in request.messages) // 4
        self.usage.calls += 1
        self.usage.prompt_tokens += prompt_tokens
        if isinstance(reply, Exception):
            self.usage.failures += 1
            raise LLMError(self.endpoint.base_url or "bundled", self.model_name, str(reply))
        value, confidence = reply if isinstance(reply, tuple) else (reply, self.confidence)
        completion_tokens = len(value.model_dump_json(warnings=False)) // 4
        self.usage.completion_tokens += completion_tokens
        self.usage.llm_seconds += 0.001
        answer = Answer(value, confidence, False, prompt_tokens, completion_tokens, 0.001)
        self._cache[request.cache_key] = answer
        return answer

    def ask_many(self, requests: list[Request], *, on_done: Callable[[int], None] | None = None) -> list:
        out = []
        for i, request in enumerate(requests):
            try:
                out.append(self.ask(request))
            except LLMError as exc:
                out.append(exc)
            if on_done is not None:
                on_done(i)
        return out


# -- reading the questions back --------------------------------------------------------------------


def kind(request: Request) -> str:
    """Which prompt asked: open, type, relation or judge (by the response model's name)."""
    return {"OpenExtraction": "open", "MentionType": "type", "RelationChoice": "relation", "JudgeVerdict": "judge"}[
        request.response_model.__name__
    ]


def document_text(request: Request) -> str:
    """The delimited data block of the user message."""
    content = request.messages[-1]["content"]
    match = re.search(r"<(doc-[0-9a-f]+)>\n(.*)\n</\1>", content, flags=re.S)
    assert match, "the document text must sit between its delimiters"
    return match.group(2)


def asked_mention(request: Request) -> str:
    return re.search(r'What is "(.*)" in this text\?', request.messages[-1]["content"]).group(1)


def options(request: Request) -> list[str]:
    """The relation options the response model allows (its Literal values)."""
    schema = request.response_model.model_json_schema()
    return list(schema["properties"]["choice"]["enum"])


def open_answer(request: Request, mentions: list[dict], relations: list[dict]) -> BaseModel:
    """A validated OpenExtraction built from plain dicts (raises if a real endpoint could not have produced it)."""
    return request.response_model.model_validate_json(json.dumps({"mentions": mentions, "relations": relations}))


def raw_answer(request: Request, **fields) -> BaseModel:
    """An answer built WITHOUT validation: what a client that trusted a misbehaving endpoint might hand over."""
    return request.response_model.model_construct(**fields)
