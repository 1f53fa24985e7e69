"""Parsed chunks → records and quarantine, as one polars query per chunk.

Every mapping rule (coalescing paths, splitting lists, "Last, First" names,
year/number parsing, units, type rules) is an expression, so a chunk of a
million rows is mapped by polars' engine in parallel, never row by row.
A value that does not parse does not vanish: the row goes to quarantine
with the field and the reason (or, with ``on_error = "null"``, the value is
nulled and counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import polars as pl

from kg.ingest.mapping import INT_FIELDS, LIST_FIELDS, UNITS, Mapping
from kg.ingest.paths import STR_LIST, path_expr, path_value
from kg.ingest.readers import Chunk
from schemas import RECORDS

_EMPTY_LIST = pl.lit([], dtype=STR_LIST)
_RECORD_DTYPES = pl.from_arrow(RECORDS.empty_table()).schema
_LAST_FIRST = r"^([^,]+),\s*([^,]+)$"


@dataclass(frozen=True)
class Plan:
    """The raw paths a mapping reads, numbered into slots ``v{i}`` (value) and ``e{i}`` (shape error)."""

    mapping: Mapping

    @cached_property
    def slots(self) -> list[str]:
        m = self.mapping
        paths = [m.source.id, *(p for r in m.type.rules for p in r.when)]
        paths += [m.type.path] if m.type.path else []
        for fm in m.fields.values():
            paths += list(fm.path)
        return list(dict.fromkeys(paths))

    def slot(self, path: str) -> int:
        return self.slots.index(path)

    @cached_property
    def dtypes(self) -> dict[str, pl.DataType]:
        out: dict[str, pl.DataType] = {"__line": pl.Int64}
        for i, p in enumerate(self.slots):
            out[f"v{i}"] = STR_LIST if "[]" in p else pl.String
            out[f"e{i}"] = pl.String
        return out


def flatten(chunk: Chunk, plan: Plan) -> pl.DataFrame:
    """The chunk's raw values per slot, from whichever path read it."""
    if chunk.frame is not None:
        exprs = [pl.Series("__line", chunk.lines)]
        for i, path in enumerate(plan.slots):
            value, error = path_expr(path, chunk.frame.schema)
            exprs += [value.alias(f"v{i}"), (error if error is not None else pl.lit(None, pl.String)).alias(f"e{i}")]
        return chunk.frame.select(exprs)
    columns: dict[str, list] = {name: [] for name in plan.dtypes}
    columns["__line"] = chunk.lines.tolist()
    for obj in chunk.objects or []:
        for i, path in enumerate(plan.slots):
            value, error = path_value(obj, path)
            columns[f"v{i}"].append(value)
            columns[f"e{i}"].append(error)
    return pl.DataFrame(columns, schema=plan.dtypes)


def _clean(expr: pl.Expr, collapse: bool = False) -> pl.Expr:
    """Trimmed text, null when empty; ``collapse`` also folds runs of whitespace (not for long texts)."""
    text = expr.str.strip_chars()
    if collapse:
        text = text.str.replace_all(r"\s+", " ")
    return pl.when(text.str.len_bytes() > 0).then(text)


def _name_order(expr: pl.Expr, order: str) -> pl.Expr:
    if order == "last_first":
        return expr.str.replace(_LAST_FIRST, "${2} ${1}").str.strip_chars()
    return expr


def _first_text(plan: Plan, path: str) -> pl.Expr:
    """The path's value as clean text; for a list path, its first item."""
    i = plan.slot(path)
    v = pl.col(f"v{i}")
    return _clean(v.list.first() if plan.dtypes[f"v{i}"] == STR_LIST else v)


def _as_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return expr.list.join(", ") if dtype == STR_LIST else expr


class _Field:
    """Expressions for one record field: its value, why it failed, whether it was nulled."""

    def __init__(self, plan: Plan, name: str):
        fm = plan.mapping.fields[name]
        self.name, self.fm, self.plan = name, fm, plan
        self.slots = [plan.slot(p) for p in fm.path]
        self.parse = plan.mapping.field_parse(name)

    def _list_value(self) -> pl.Expr:
        parts = []
        for i in self.slots:
            v = pl.col(f"v{i}")
            if self.plan.dtypes[f"v{i}"] != STR_LIST:
                v = v.str.split(self.fm.split) if self.fm.split else pl.when(v.is_not_null()).then(pl.concat_list([v]))
            parts.append(v.fill_null(_EMPTY_LIST))
        items = pl.concat_list(parts).list.eval(
            _name_order(_clean(pl.element(), True), self.fm.name_order).drop_nulls()
        )
        items = items.list.unique(maintain_order=True)
        return pl.when(items.list.len() > 0).then(items)

    def raw(self) -> pl.Expr:
        """The first non-null raw text among the field's paths."""
        text = pl.coalesce([_first_text(self.plan, p) for p in self.fm.path])
        if self.fm.split and self.name not in LIST_FIELDS:  # a numeric field given as a list: the first counts
            text = _clean(text.str.split(self.fm.split).list.first())
        return text

    @property
    def raw_col(self) -> str:
        return f"__raw_{self.name}"

    def stage(self) -> list[pl.Expr]:
        """Stage-one columns: the raw text (scalar fields) and the parsed value, computed once."""
        if self.name in LIST_FIELDS:
            return [self._list_value().alias(self.name)]
        return [self.raw().alias(self.raw_col)]

    def value(self) -> pl.Expr:
        """The parsed value of a scalar field, from its stage-one raw column (list fields are final after stage one)."""
        raw = pl.col(self.raw_col)
        if self.parse == "string":
            return raw if self.name == "abstract" else _name_order(_clean(raw, True), self.fm.name_order)
        if self.parse == "year":
            number = raw.str.extract(r"(\d{4})", 1).cast(pl.Float64)
        else:
            number = raw.str.replace_all(",", "").cast(pl.Float64, strict=False)
            if self.parse == "int":
                number = pl.when(number == number.floor()).then(number)
        if self.fm.unit:
            number = number * UNITS[self.fm.unit]
        if self.name in INT_FIELDS:
            return pl.when(number.abs() < 2**31).then(number).cast(pl.Int32)
        return number.cast(pl.Float32)

    def parse_failed(self) -> pl.Expr:
        if self.name in LIST_FIELDS or self.parse == "string":
            return pl.lit(False)
        return pl.col(self.raw_col).is_not_null() & pl.col(self.name).is_null()

    def error(self) -> pl.Expr:
        """Why the row cannot be kept because of this field, or null."""
        shape = pl.coalesce([pl.col(f"e{i}") for i in self.slots])
        parse = pl.lit(None, pl.String)
        if self.fm.on_error == "quarantine" and self.name not in LIST_FIELDS and self.parse != "string":
            kind = {"year": "a year", "int": "an integer", "float": "a number"}[self.parse]
            parse = pl.when(self.parse_failed()).then(pl.format("cannot parse '{}' as " + kind, pl.col(self.raw_col)))
        return pl.coalesce([shape, parse])

    def raw_text(self) -> pl.Expr:
        return pl.coalesce([_as_text(pl.col(f"v{i}"), self.plan.dtypes[f"v{i}"]) for i in self.slots])


def _type_expr(plan: Plan) -> tuple[pl.Expr, pl.Expr]:
    """(type, error): the first matching rule, else the mapped type field, else the default."""
    tm = plan.mapping.type
    result = pl.lit(tm.default, pl.String)
    raw = pl.lit(None, pl.String)
    if tm.path:
        raw = _first_text(plan, tm.path)
        result = pl.coalesce([raw.replace_strict(tm.map, default=None, return_dtype=pl.String), result])
    for rule in reversed(tm.rules):
        values = [_first_text(plan, p) for p in rule.when]
        hit = pl.all_horizontal([v.is_not_null() for v in values])
        if rule.equals is not None:
            hit = hit & (values[0] == rule.equals)
        result = pl.when(hit.fill_null(False)).then(pl.lit(rule.type)).otherwise(result)
    where = f"type.map of {tm.path}" if tm.path else "the type rules"
    error = pl.when(result.is_null()).then(
        pl.format("cannot decide the entity type: value '{}' matches none of " + where, raw.fill_null(""))
    )
    return result, error


def map_chunk(flat: pl.DataFrame, plan: Plan) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """Map one flat chunk to (records without source columns, quarantine rows, nulled-value counts).

    Records keep ``__line`` and ``source_id``; the caller adds ``source``,
    checks duplicate ids across chunks and writes both tables.
    """
    m = plan.mapping
    fields = {name: _Field(plan, name) for name in m.fields}
    id_slot = plan.slot(m.source.id)
    source_id = _clean(pl.col(f"v{id_slot}"))
    type_value, type_error = _type_expr(plan)

    # Stage one: every raw text and parsed value once; stage two: checks read those columns.
    staged = flat.with_columns(
        source_id.alias("source_id"),
        type_value.alias("type"),
        *[e for f in fields.values() for e in f.stage()],
    ).with_columns(f.value().alias(name) for name, f in fields.items() if name not in LIST_FIELDS)
    checks: list[tuple[str, pl.Expr, pl.Expr]] = [
        (
            m.source.id,
            pl.coalesce([pl.col(f"e{id_slot}"), pl.when(pl.col("source_id").is_null()).then(pl.lit("missing id"))]),
            pl.col(f"v{id_slot}"),
        ),
        ("type", type_error, pl.lit(None, pl.String)),
    ]
    checks += [(name, f.error(), f.raw_text()) for name, f in fields.items()]
    frame = staged.with_columns(
        pl.coalesce([pl.when(err.is_not_null()).then(pl.lit(name)) for name, err, _ in checks]).alias("__field")
    )
    failed = frame.filter(pl.col("__field").is_not_null())
    bad = failed.select(
        pl.col("__line").alias("line"),
        "source_id",
        pl.col("__field").alias("field"),
        pl.concat_str(
            [pl.when(err.is_not_null()).then(pl.format("{}: {}", pl.lit(name), err)) for name, err, _ in checks],
            separator="; ",
            ignore_nulls=True,
        ).alias("reason"),
        pl.coalesce([pl.when(err.is_not_null()).then(raw) for _, err, raw in checks]).str.slice(0, 1000).alias("raw"),
    )
    good = frame.filter(pl.col("__field").is_null())
    nulled = [f.name for f in fields.values() if f.fm.on_error == "null" and f.parse != "string"]
    counts = good.select([fields[n].parse_failed().sum().alias(n) for n in nulled]).row(0, named=True) if nulled else {}
    records = good.select(
        pl.col("__line").alias("line"),
        *[
            pl.col(f.name)
            if f.name in fields or f.name in ("source_id", "type")
            else pl.lit(None, dtype=_RECORD_DTYPES[f.name]).alias(f.name)
            for f in RECORDS
            if f.name not in ("source", "line")
        ],
    )
    return records, bad, {k: int(v) for k, v in counts.items() if v}
