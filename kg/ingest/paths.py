"""Field paths (``credits.cast[].name``) resolved two ways that must agree.

The fast path turns a path into a polars expression over a chunk that
pyarrow parsed (nested structs and lists stay columnar). The slow path walks
one parsed JSON object in Python; it only runs for chunks the fast path
cannot take (a malformed line, a field whose JSON type changes between rows)
so that one bad row costs one chunk's speed, not the file's.

Both produce the same *flat* value per path: a string for a scalar path, a
list of strings for a path with ``[]``, and an error text where the raw value
has the wrong shape (an object where text was expected). Leaves are rendered
as text (numbers as polars prints them) and parsed later, in one place.
"""

from __future__ import annotations

import polars as pl

from kg.ingest.mapping import split_path

STR_LIST = pl.List(pl.String)
_SCALARS = (pl.String, pl.Boolean, pl.Categorical, pl.Date, pl.Datetime)


def _is_scalar(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or isinstance(dtype, _SCALARS) or dtype == pl.String


def _null(as_list: bool) -> pl.Expr:
    return pl.lit(None, dtype=STR_LIST if as_list else pl.String)


def _shape_error(expr: pl.Expr, found: str) -> pl.Expr:
    return pl.when(expr.is_not_null()).then(pl.lit(f"expected text or a number, found {found}"))


def _walk(expr: pl.Expr, dtype: pl.DataType, parts: list[str]) -> tuple[pl.Expr | None, pl.DataType, str | None]:
    """Follow struct fields; returns (expr, dtype, shape problem) or (None, ..) when the path is absent."""
    for i, name in enumerate(parts):
        if dtype == pl.Null:
            return None, dtype, None
        if not isinstance(dtype, pl.Struct):
            return expr, dtype, f"text where {'.'.join(parts[: i + 1])} expects an object"
        fields = {f.name: f.dtype for f in dtype.fields}
        if name not in fields:
            return None, dtype, None
        expr, dtype = expr.struct.field(name), fields[name]
    return expr, dtype, None


def _leaf(expr: pl.Expr, dtype: pl.DataType) -> tuple[pl.Expr, pl.Expr | None]:
    """Render a leaf as text; objects and lists where text belongs become shape errors."""
    if dtype == pl.Null:
        return pl.lit(None, dtype=pl.String), None
    if isinstance(dtype, pl.Datetime):  # pyarrow reads ISO dates as timestamps: give back the date text
        with_time = expr.dt.strftime("%Y-%m-%dT%H:%M:%S")
        return pl.when(expr.dt.time() == pl.time(0)).then(expr.dt.strftime("%Y-%m-%d")).otherwise(with_time), None
    if _is_scalar(dtype):
        return expr.cast(pl.String), None
    found = "a list" if isinstance(dtype, (pl.List, pl.Array)) else "an object"
    return pl.lit(None, dtype=pl.String), _shape_error(expr, found)


def path_expr(path: str, schema: pl.Schema) -> tuple[pl.Expr, pl.Expr | None]:
    """Polars expressions (value, error) for ``path`` over a frame with ``schema``.

    A path with ``[]`` yields ``List[String]``; a scalar found where a list was
    expected counts as a one-element list (sources often write a lone value).
    """
    head, tail, as_list = split_path(path)
    if head[0] not in schema:
        return _null(as_list), None
    expr, dtype, problem = _walk(pl.col(head[0]), schema[head[0]], head[1:])
    if expr is None:
        return _null(as_list), None
    if problem is not None:
        return _null(as_list), _shape_error(expr, problem)
    if not as_list:
        return _leaf(expr, dtype)
    if dtype == pl.Null:
        return _null(True), None
    if not isinstance(dtype, pl.List):
        value, error = _leaf(expr, dtype)
        return pl.when(value.is_not_null()).then(pl.concat_list([value])), error
    inner, inner_dtype, problem = _walk(pl.element(), dtype.inner, tail)
    if inner is None:
        return _null(True), None
    if problem is not None:
        return _null(True), _shape_error(expr, f"list items that are {problem}")
    if not _is_scalar(inner_dtype) and inner_dtype != pl.Null:
        return _null(True), _shape_error(expr, "list items that are objects or lists")
    return expr.list.eval(_leaf(inner, inner_dtype)[0]), None


def _text(value: object) -> str | None:
    """A JSON leaf as text, the way polars renders it (``true``, ``2009``, ``2009.5``)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise TypeError("an object" if isinstance(value, dict) else "a list")


def _get(obj: object, names: list[str]) -> tuple[object, str | None]:
    for i, name in enumerate(names):
        if obj is None:
            return None, None
        if not isinstance(obj, dict):
            return None, f"text where {'.'.join(names[: i + 1])} expects an object"
        obj = obj.get(name)
    return obj, None


def path_value(obj: dict, path: str) -> tuple[object, str | None]:
    """Slow-path twin of :func:`path_expr` for one parsed JSON object."""
    head, tail, as_list = split_path(path)
    value, problem = _get(obj, head)
    if problem is not None:
        return None, f"expected text or a number, found {problem}"
    if not as_list:
        try:
            return _text(value), None
        except TypeError as exc:
            return None, f"expected text or a number, found {exc}"
    if value is None:
        return None, None
    if not isinstance(value, list):
        try:
            text = _text(value)
        except TypeError as exc:
            return None, f"expected text or a number, found {exc}"
        return [text], None
    out = []
    for item in value:
        leaf, problem = _get(item, tail)
        if problem is not None:
            return None, f"expected text or a number, found list items that are {problem}"
        try:
            out.append(_text(leaf))
        except TypeError:
            return None, "expected text or a number, found list items that are objects or lists"
    return out, None
