"""Arrow schemas of every table that crosses a module boundary.

Each schema carries its name and version in its metadata (``kg.table``,
``kg.version``) and a one-line doc per field (field metadata ``doc``), so a
Parquet file written by one stage says what it is to the next stage, to a
DuckDB/Spark reader, and to a person running ``parquet-tools schema``.

Bump a table's version when a field changes meaning or type; adding a
nullable field at the end is compatible and keeps the version.
"""

from __future__ import annotations

from functools import cache

import polars as pl
import pyarrow as pa


class SchemaMismatch(ValueError):
    """A table does not fit the schema a stage expects; the message names the column."""


def _field(name: str, type_: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


def _schema(name: str, version: int, doc: str, fields: list[pa.Field]) -> pa.Schema:
    return pa.schema(
        fields,
        metadata={"kg.table": name, "kg.version": str(version), "doc": doc},
    )


_STR_LIST = pa.list_(pa.string())

RECORDS = _schema(
    "records",
    1,
    "One row per source record, mapped from raw metadata by ingest.",
    [
        _field("source", pa.string(), "source name, from the mapping", nullable=False),
        _field("source_id", pa.string(), "the record's id within its source", nullable=False),
        _field("type", pa.string(), "ontology entity type (movie, series, episode, person, ...)", nullable=False),
        _field("name", pa.string(), "display title, or a person's name in 'First Last' order"),
        _field("aliases", _STR_LIST, "alternate, original and translated titles or name forms"),
        _field("year", pa.int32(), "release or start year; birth year for people"),
        _field("end_year", pa.int32(), "end year of a series; death year for people"),
        _field("runtime_min", pa.float32(), "runtime in minutes"),
        _field("countries", _STR_LIST, "countries of origin (people: nationality), as given"),
        _field("languages", _STR_LIST, "original languages"),
        _field("genres", _STR_LIST, "genres, as given by the source"),
        _field("directors", _STR_LIST, "director names, 'First Last'"),
        _field("cast", _STR_LIST, "cast member names, 'First Last', billing order"),
        _field("writers", _STR_LIST, "writer names, 'First Last'"),
        _field("professions", _STR_LIST, "a person's professions or job titles"),
        _field("parent", pa.string(), "title of the series an episode or season belongs to"),
        _field("season", pa.int32(), "season number of an episode or season"),
        _field("episode", pa.int32(), "episode number within its season"),
        _field("abstract", pa.string(), "synopsis, plot or biography text: input for extraction"),
        _field("line", pa.int64(), "line (JSON Lines, CSV) or 1-based record number (JSON array) in the raw file"),
    ],
)

QUARANTINE = _schema(
    "quarantine",
    1,
    "Raw rows that ingest could not map, each with the reason; in + out reconcile with these.",
    [
        _field("source", pa.string(), "source name", nullable=False),
        _field("file", pa.string(), "path of the raw file", nullable=False),
        _field("line", pa.int64(), "line or record number in the file; null for file-level problems"),
        _field("source_id", pa.string(), "the record's id, where it could be read"),
        _field("field", pa.string(), "the mapped field at fault, or null for a whole-row problem"),
        _field("reason", pa.string(), "why the row was set aside", nullable=False),
        _field("raw", pa.string(), "the raw row or value, truncated to 1000 characters"),
    ],
)

_PAIR_KEYS = [
    _field("left_source", pa.string(), "source of the left record", nullable=False),
    _field("left_id", pa.string(), "source_id of the left record", nullable=False),
    _field("right_source", pa.string(), "source of the right record", nullable=False),
    _field("right_id", pa.string(), "source_id of the right record", nullable=False),
]

CANDIDATE_PAIRS = _schema(
    "candidate_pairs",
    1,
    "Pairs proposed by blocking; each pair appears once, in exactly one partition.",
    [
        *_PAIR_KEYS,
        _field("partition", pa.int32(), "partition that owns the pair", nullable=False),
        _field("rule", pa.string(), "name of the first blocking rule that proposed the pair"),
    ],
)

FEATURES = _schema(
    "features",
    1,
    "Pair features: the pair keys, then one float32 column per feature (null = missing).",
    [*_PAIR_KEYS, _field("partition", pa.int32(), "partition that owns the pair", nullable=False)],
)

SCORES = _schema(
    "scores",
    1,
    "Classifier output per candidate pair.",
    [
        *_PAIR_KEYS,
        _field("partition", pa.int32(), "partition that owns the pair", nullable=False),
        _field("score", pa.float32(), "match probability", nullable=False),
        _field("match", pa.bool_(), "score at or above the model's threshold", nullable=False),
        _field("model_id", pa.string(), "id of the model that scored the pair", nullable=False),
    ],
)

PAIR_LABELS = _schema(
    "pair_labels",
    1,
    "Reviewed record pairs, canonical order (left key < right key), agreed labels only: training input of the model.",
    [*_PAIR_KEYS, _field("label", pa.int8(), "1: the same entity (match), 0: different entities", nullable=False)],
)

REVIEW_LABELS = _schema(
    "review_labels",
    1,
    "Analyst labels to store in the graph, one row per label: record pairs, entity pairs, edges, claims.",
    [
        _field("target_kind", pa.string(), "records, entities, edge or claim", nullable=False),
        _field("left_source", pa.string(), "records: source of the first record; else null"),
        _field("left_id", pa.string(), "records: source_id; entities: entity id; edge/claim: its id", nullable=False),
        _field("right_source", pa.string(), "records: source of the second record; else null"),
        _field("right_id", pa.string(), "records: source_id; entities: the other entity id; else null"),
        _field("label", pa.string(), "match / non_match (pairs), correct / wrong (edge, claim), or unsure",
               nullable=False),
        _field("reviewer", pa.string(), "who labelled it", nullable=False),
        _field("note", pa.string(), "free text: why"),
    ],
)

CROSSWALK = _schema(
    "crosswalk",
    1,
    "Source records mapped to resolved entities.",
    [
        _field("source", pa.string(), "source name", nullable=False),
        _field("source_id", pa.string(), "the record's id within its source", nullable=False),
        _field("entity_id", pa.string(), "stable id of the resolved entity", nullable=False),
        _field("type", pa.string(), "ontology entity type", nullable=False),
        _field("run_id", pa.string(), "matching run that produced the mapping", nullable=False),
    ],
)

MENTIONS = _schema(
    "mentions",
    1,
    "Entity mentions found in documents, with spans and, when linked, the entity.",
    [
        _field("doc_id", pa.string(), "document id", nullable=False),
        _field("chunk", pa.int32(), "chunk index within the document", nullable=False),
        _field("text", pa.string(), "the mention as it appears in the document", nullable=False),
        _field("type", pa.string(), "ontology entity type", nullable=False),
        _field("start", pa.int32(), "character offset of the mention in the document"),
        _field("end", pa.int32(), "character offset one past the mention's end"),
        _field("entity_id", pa.string(), "linked graph entity, null when unlinked"),
        _field("link_score", pa.float32(), "confidence of the link"),
        _field("model", pa.string(), "model that proposed or typed the mention"),
        _field("prompt_version", pa.string(), "version of the prompt used"),
        _field("run_id", pa.string(), "extraction run id", nullable=False),
    ],
)

RELATIONS = _schema(
    "relations",
    1,
    "Typed, directed relations with their evidence; rejected ones are kept with a reason.",
    [
        _field("subject", pa.string(), "subject mention text or entity id", nullable=False),
        _field("subject_type", pa.string(), "ontology type of the subject", nullable=False),
        _field("relation", pa.string(), "ontology relation type", nullable=False),
        _field("object", pa.string(), "object mention text or entity id", nullable=False),
        _field("object_type", pa.string(), "ontology type of the object", nullable=False),
        _field("subject_id", pa.string(), "linked subject entity, null when unlinked"),
        _field("object_id", pa.string(), "linked object entity, null when unlinked"),
        _field("confidence", pa.float32(), "calibrated confidence in [0, 1]"),
        _field("doc_id", pa.string(), "document the evidence comes from", nullable=False),
        _field("evidence", pa.string(), "exact quote from the document that supports the relation"),
        _field("start", pa.int32(), "character offset of the evidence in the document"),
        _field("end", pa.int32(), "character offset one past the evidence's end"),
        _field("status", pa.string(), "accepted or rejected", nullable=False),
        _field("reason", pa.string(), "why a rejected relation was rejected"),
        _field("model", pa.string(), "model that proposed the relation"),
        _field("prompt_version", pa.string(), "version of the prompt used"),
        _field("run_id", pa.string(), "extraction run id", nullable=False),
    ],
)

TABLES: dict[str, pa.Schema] = {
    s.metadata[b"kg.table"].decode(): s
    for s in (RECORDS, QUARANTINE, CANDIDATE_PAIRS, FEATURES, SCORES, CROSSWALK, MENTIONS, RELATIONS)
}


def schema_version(schema: pa.Schema) -> tuple[str, int] | None:
    """The (table, version) a schema declares, or None for a foreign table."""
    meta = schema.metadata or {}
    if b"kg.table" not in meta:
        return None
    return meta[b"kg.table"].decode(), int(meta[b"kg.version"])


def empty(schema: pa.Schema) -> pa.Table:
    """A zero-row table of ``schema``: empty inputs still produce typed outputs."""
    return schema.empty_table()


def conform(table: pa.Table, schema: pa.Schema, *, extra: pa.DataType | None = None) -> pa.Table:
    """Check ``table`` against ``schema`` and return it cast to the schema's exact types and order.

    A stage calls this at its boundary so a wrong table fails there, with the
    column named, instead of deep inside the next stage. Columns beyond the
    schema are refused unless ``extra`` names their type (the feature table's
    float32 feature columns). A table stamped with another version of the same
    schema is refused: silently reading v2 data as v1 is how graphs go wrong.
    """
    name = schema.metadata[b"kg.table"].decode()
    stamped = schema_version(table.schema)
    expected = schema_version(schema)
    if stamped is not None and stamped[0] == name and stamped != expected:
        raise SchemaMismatch(f"{name}: table is version {stamped[1]}, this toolkit reads version {expected[1]}")
    columns, fields = [], []
    for field in schema:
        if field.name not in table.column_names:
            raise SchemaMismatch(f"{name}: missing column {field.name!r} ({field.type})")
        column = table[field.name]
        if not field.nullable and column.null_count:
            raise SchemaMismatch(f"{name}: column {field.name!r} has {column.null_count} nulls")
        columns.append(_cast(column, field, name))
        fields.append(field)
    for col in table.column_names:
        if schema.get_field_index(col) >= 0:
            continue
        if extra is None:
            raise SchemaMismatch(f"{name}: unexpected column {col!r}")
        field = pa.field(col, extra)
        columns.append(_cast(table[col], field, name))
        fields.append(field)
    return pa.table(columns, schema=pa.schema(fields, metadata=schema.metadata))


def conform_frame(table: pa.Table | pl.DataFrame, schema: pa.Schema) -> pl.DataFrame:
    """``conform`` with a polars frame out; a frame already of the schema's exact columns and types passes as it is.

    The round trip through Arrow copies every string column twice (polars
    holds string views, the schemas plain strings): a second per million
    records at each stage boundary, for a frame checked when it was read.
    """
    if isinstance(table, pl.DataFrame):
        required = [f.name for f in schema if not f.nullable]
        if list(table.schema.items()) == _polars_fields(schema) and not any(table[c].null_count() for c in required):
            return table
        table = table.to_arrow()
    return pl.from_arrow(conform(table, schema))


@cache
def _polars_fields(schema: pa.Schema) -> list[tuple[str, pl.DataType]]:
    return list(pl.from_arrow(schema.empty_table()).schema.items())


def _cast(column: pa.ChunkedArray, field: pa.Field, table: str) -> pa.ChunkedArray:
    if column.type == field.type:
        return column
    try:
        return column.cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaMismatch(f"{table}: column {field.name!r} is {column.type}, expected {field.type}: {exc}") from exc
