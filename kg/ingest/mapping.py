"""Source mappings: a small declarative file that says how one raw source becomes records.

A mapping is TOML so a user can write one without code (docs/mapping.md is
the reference). It is validated when loaded, against the records schema and
the ontology, so a typo in a mapping fails before any data is read, with the
file and key named.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kg.errors import MappingError
from schemas import RECORDS, load_ontology

LIST_FIELDS = frozenset(f.name for f in RECORDS if str(f.type).startswith("list"))
INT_FIELDS = frozenset({"year", "end_year", "season", "episode"})
FLOAT_FIELDS = frozenset({"runtime_min"})
STRING_FIELDS = frozenset({"name", "parent", "abstract"})
MAPPABLE = LIST_FIELDS | INT_FIELDS | FLOAT_FIELDS | STRING_FIELDS

UNITS = {"minutes": 1.0, "seconds": 1 / 60, "hours": 60.0}
_PATH = re.compile(r"^[^\[\]]+(\[\])?(\.[^\[\]]+(\[\])?)*$")


def split_path(path: str) -> tuple[list[str], list[str], bool]:
    """``"credits.cast[].name"`` → ``(["credits", "cast"], ["name"], True)``.

    The head leads to the value (ending at the list, when there is one); the
    tail applies to each list item; the bool says whether there is a list.
    """
    names = [part.removesuffix("[]") for part in path.split(".")]
    list_at = next((i for i, part in enumerate(path.split(".")) if part.endswith("[]")), None)
    if list_at is None:
        return names, [], False
    return names[: list_at + 1], names[list_at + 1 :], True


class FieldMap(BaseModel):
    """How one record field is read: where from, and how the raw text is parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: tuple[str, ...] = Field(min_length=1)
    split: str | None = None
    name_order: Literal["first_last", "last_first"] = "first_last"
    parse: Literal["string", "int", "float", "year"] | None = None
    unit: Literal["minutes", "seconds", "hours"] | None = None
    on_error: Literal["quarantine", "null"] = "quarantine"

    @field_validator("path", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return (v,) if isinstance(v, str) else v

    @field_validator("path")
    @classmethod
    def _well_formed(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            if not _PATH.match(p) or p.count("[]") > 1:
                raise ValueError(f"malformed path {p!r} (use a.b, a[] or a[].b, at most one [])")
        return v


class TypeRule(BaseModel):
    """First matching rule decides the record's type.

    It matches when every path in ``when`` holds a non-empty value (and, with
    ``equals``, the first one equals it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: tuple[str, ...] = Field(min_length=1)
    equals: str | None = None
    type: str

    @field_validator("when", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return (v,) if isinstance(v, str) else v


class TypeMap(BaseModel):
    """Entity type: a fixed default, ordered rules, and/or a field whose values ``map`` to types."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str | None = None
    rules: tuple[TypeRule, ...] = ()
    path: str | None = None
    map: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _decidable(self) -> TypeMap:
        if self.default is None and not self.rules and self.path is None:
            raise ValueError("give a default type, rules, or a path with a map")
        if self.path is not None and not self.map:
            raise ValueError("type.path needs a map from raw values to entity types")
        return self

    def types_named(self) -> set[str]:
        named = {r.type for r in self.rules} | set(self.map.values())
        return named | ({self.default} if self.default else set())


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    format: Literal["jsonl", "json", "csv"]
    id: str
    delimiter: str = ","
    encoding: str = "utf-8"
    header: Literal["as_is", "uri_last_segment"] = "as_is"

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError(f"delimiter must be one character, got {v!r}")
        return v

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {v!r}") from exc
        return v


class Mapping(BaseModel):
    """A whole mapping file: the source, its entity type rules, and one entry per record field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: SourceSpec
    type: TypeMap
    fields: dict[str, FieldMap]

    @field_validator("fields", mode="before")
    @classmethod
    def _shorthand(cls, v: object) -> object:
        if isinstance(v, dict):
            return {k: ({"path": x} if isinstance(x, (str, list)) else x) for k, x in v.items()}
        return v

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, v: dict[str, FieldMap]) -> dict[str, FieldMap]:
        for name, fm in v.items():
            if name not in MAPPABLE:
                raise ValueError(f"unknown record field {name!r}; known: {sorted(MAPPABLE)}")
            numeric = FLOAT_FIELDS | INT_FIELDS
            if fm.split is not None and name in STRING_FIELDS:
                raise ValueError(f"fields.{name}: split applies to list fields (and numeric ones: first item)")
            if fm.unit is not None and name not in numeric:
                raise ValueError(f"fields.{name}: unit applies to numeric fields only")
            if fm.parse not in (None, "string") and name not in numeric:
                raise ValueError(f"fields.{name}: parse {fm.parse!r} applies to numeric fields only")
            if fm.parse == "string" and name in numeric:
                raise ValueError(f"fields.{name}: a numeric field cannot be parsed as string")
        return v

    def field_parse(self, name: str) -> str:
        """The parser a field uses: its own ``parse`` or the one its record type implies."""
        explicit = self.fields[name].parse
        if explicit:
            return explicit
        if name in {"year", "end_year"}:
            return "year"
        if name in INT_FIELDS:
            return "int"
        if name in FLOAT_FIELDS:
            return "float"
        return "string"


def load_mapping(path: str | Path, ontology_path: str | Path | None = None) -> Mapping:
    """Read and validate a mapping file; every problem names the file and the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError(f"{path}: cannot read mapping: {exc.strerror}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MappingError(f"{path}: not valid TOML: {exc}") from exc
    return parse_mapping(data, where=str(path), ontology_path=ontology_path)


def parse_mapping(data: dict, where: str = "<mapping>", ontology_path: str | Path | None = None) -> Mapping:
    """Validate an already-parsed mapping (a dict shaped like the TOML file)."""
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise MappingError(f"{where}: {problems}") from exc
    ontology = load_ontology(ontology_path)
    for t in sorted(mapping.type.types_named()):
        if t not in ontology.concrete_types:
            raise MappingError(f"{where}: type {t!r} is not an entity type of the ontology")
    return mapping
