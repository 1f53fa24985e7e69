"""Pydantic response models the LLM must fill, derived from the ontology.

Type and relation fields are ``Literal`` enums of the ontology's names, so a
grammar-enforcing endpoint (llama.cpp's JSON-schema mode, OpenAI's strict
schemas) cannot even emit another label. Every list and string has an upper
bound: a tiny model that starts repeating itself hits the bound and stops,
instead of running to ``max_tokens`` and leaving truncated JSON.

The gates still check everything again (``extraction.gates``): the models
narrow what an honest endpoint says, the gates decide what the graph takes,
whatever an endpoint (or an injected document) produced.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from schemas.ontology import Ontology

MAX_NAME_CHARS = 80
MAX_QUOTE_CHARS = 300
MAX_MENTIONS = 16
MAX_RELATIONS = 12
NONE = "none"  # the answer for "no entity type" / "no relation"

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_CHARS)]
Quote = Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUOTE_CHARS)]


class JudgeVerdict(BaseModel):
    """The judge's answer about one relation: is it supported by the quoted text?"""

    model_config = ConfigDict(extra="forbid")
    supported: Literal["yes", "no"]


def open_model(ontology: Ontology) -> type[BaseModel]:
    """``OpenExtraction``: typed mentions and relations, each relation with its verbatim quote first.

    The quote comes before the triple so the model first finds the sentence,
    then reads the triple off it: the order of fields is the order a
    left-to-right decoder thinks in.
    """
    entity = ontology.entity_literal()
    relation = ontology.relation_literal()
    mention = create_model(
        "Mention",
        __config__=ConfigDict(extra="forbid"),
        text=(Name, Field(description="the name exactly as written in the document")),
        type=(entity, Field(description="its entity type")),
    )
    claim = create_model(
        "Relation",
        __config__=ConfigDict(extra="forbid"),
        evidence=(Quote, Field(description="the exact words of the document that state the relation")),
        subject=(Name, Field(description="the subject's name as written")),
        subject_type=(entity, ...),
        relation=(relation, ...),
        object=(Name, Field(description="the object's name as written")),
        object_type=(entity, ...),
    )
    return create_model(
        "OpenExtraction",
        __config__=ConfigDict(extra="forbid"),
        mentions=(list[mention], Field(max_length=MAX_MENTIONS)),
        relations=(list[claim], Field(max_length=MAX_RELATIONS)),
    )


def type_model(ontology: Ontology) -> type[BaseModel]:
    """``MentionType``: one concrete entity type, or "none" when the span names no such thing."""
    choices = (*ontology.concrete_types, NONE)
    return create_model(
        "MentionType", __config__=ConfigDict(extra="forbid"), type=(Literal[choices], ...)  # type: ignore[valid-type]
    )


def choice_model(options: tuple[str, ...]) -> type[BaseModel]:
    """``RelationChoice``: exactly one of ``options`` (sentences naming both mentions) or "none"."""
    if NONE in options:
        raise ValueError(f"an option may not be {NONE!r}")
    return create_model(
        "RelationChoice",
        __config__=ConfigDict(extra="forbid"),
        choice=(Literal[(*options, NONE)], ...),  # type: ignore[valid-type]
    )


def schema_version(model: type[BaseModel]) -> str:
    """Hash of the model's JSON schema: part of the cache key, so an ontology change re-asks."""
    text = json.dumps(model.model_json_schema(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
