"""The ontology: which entity types exist and which relations may join them.

Kept as data (``ontology.toml``) with pydantic models over it, so users
extend it with a file instead of code, and the extraction package derives
its LLM response models (``Literal`` of type names) from the same object the
quality gates check against: what the LLM may say and what the graph accepts
cannot drift apart.
"""

from __future__ import annotations

import tomllib
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_PATH = Path(__file__).with_name("ontology.toml")


class OntologyError(ValueError):
    """An ontology file is malformed or inconsistent; the message names file and key."""


class EntityType(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    doc: str = ""
    parent: str | None = None
    abstract: bool = False


class RelationType(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    doc: str = ""
    domain: tuple[str, ...] = Field(min_length=1)
    range: tuple[str, ...] = Field(min_length=1)
    symmetric: bool = False


class TypeGroup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    doc: str = ""
    types: tuple[str, ...] = Field(min_length=2)


class Ontology(BaseModel):
    """Entity and relation types; ``allows`` is the check every gate uses."""

    model_config = ConfigDict(frozen=True)

    entity_types: dict[str, EntityType]
    relation_types: dict[str, RelationType]
    type_groups: dict[str, TypeGroup] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Ontology:
        for t in self.entity_types.values():
            if t.parent is not None and t.parent not in self.entity_types:
                raise ValueError(f"entity type {t.name!r}: unknown parent {t.parent!r}")
        for r in self.relation_types.values():
            for side, names in (("domain", r.domain), ("range", r.range)):
                unknown = [n for n in names if n not in self.entity_types]
                if unknown:
                    raise ValueError(f"relation {r.name!r}: unknown {side} type(s) {unknown}")
        seen: dict[str, str] = {}
        for g in self.type_groups.values():
            for t in g.types:
                if t not in self.entity_types or self.entity_types[t].abstract:
                    raise ValueError(f"type group {g.name!r}: {t!r} is not a concrete entity type")
                if t in seen:
                    raise ValueError(f"type {t!r} is in two type groups: {seen[t]!r} and {g.name!r}")
                seen[t] = g.name
        return self

    def is_a(self, type_name: str, ancestor: str) -> bool:
        """True when ``type_name`` is ``ancestor`` or one of its descendants."""
        current: str | None = type_name
        while current is not None:
            if current == ancestor:
                return True
            current = self.entity_types[current].parent if current in self.entity_types else None
        return False

    @cached_property
    def concrete_types(self) -> tuple[str, ...]:
        """Types an entity may have (abstract ones only group others)."""
        return tuple(n for n, t in self.entity_types.items() if not t.abstract)

    @cached_property
    def groups(self) -> dict[str, str]:
        """Type -> its type group, for the grouped types only: one entity may mix the types of a group."""
        return {t: g.name for g in self.type_groups.values() for t in g.types}

    def compatible(self, a: str, b: str) -> bool:
        """Whether records of types ``a`` and ``b`` may belong to one entity."""
        return a == b or (a in self.groups and self.groups[a] == self.groups.get(b))

    def allows(self, relation: str, subject_type: str, object_type: str) -> bool:
        """Whether ``subject_type -relation-> object_type`` is allowed (either way round if symmetric)."""
        rel = self.relation_types.get(relation)
        if rel is None:
            return False

        def fits(s: str, o: str) -> bool:
            return any(self.is_a(s, d) for d in rel.domain) and any(self.is_a(o, r) for r in rel.range)

        return fits(subject_type, object_type) or (rel.symmetric and fits(object_type, subject_type))

    def relations_between(self, subject_type: str, object_type: str) -> list[str]:
        """Relations allowed from ``subject_type`` to ``object_type``: the choices a narrow LLM question offers."""
        return [r for r in self.relation_types if self.allows(r, subject_type, object_type)]

    def entity_literal(self) -> type:
        """``Literal[...]`` of the concrete entity types, for pydantic response models."""
        return Literal[self.concrete_types]  # type: ignore[valid-type]

    def relation_literal(self) -> type:
        """``Literal[...]`` of the relation types, for pydantic response models."""
        return Literal[tuple(self.relation_types)]  # type: ignore[valid-type]


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise OntologyError(f"{path}: {exc}") from exc


def load_ontology(extra: str | Path | None = None) -> Ontology:
    """The default ontology, extended by the user file ``extra`` when given."""
    merged: dict[str, dict] = {"entity_types": {}, "relation_types": {}, "type_groups": {}}
    for path in [DEFAULT_PATH, *([Path(extra)] if extra else [])]:
        data = _read(path)
        unknown = set(data) - set(merged)
        if unknown:
            raise OntologyError(f"{path}: unknown section(s) {sorted(unknown)}")
        for section, entries in data.items():
            for name, body in entries.items():
                if not isinstance(body, dict):
                    raise OntologyError(f"{path}: [{section}] {name} must be a table")
                merged[section][name] = {**body, "name": name}
    try:
        return Ontology.model_validate(merged)
    except ValidationError as exc:
        where = extra or DEFAULT_PATH
        raise OntologyError(f"{where}: {exc}") from exc
