"""The peer for the ingest benchmark: what a careful plain-Python ingester does.

``json.loads`` per line, a dict per record built by walking the mapping's
paths, Python parsing of years/numbers/names, then ``pa.Table.from_pylist``
and a Parquet write. Same mapping, same output schema, same quarantine
rule (a row whose value does not parse is set aside), so the ratio compares
the engines and not the amount of work.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from kg.ingest.mapping import FLOAT_FIELDS, INT_FIELDS, LIST_FIELDS, UNITS, Mapping
from kg.ingest.paths import path_value
from schemas import RECORDS

_YEAR = re.compile(r"(\d{4})")
_LAST_FIRST = re.compile(r"^([^,]+),\s*([^,]+)$")


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text or None


def _order(name: str, order: str) -> str:
    if order == "last_first":
        m = _LAST_FIRST.match(name)
        if m:
            return f"{m.group(2)} {m.group(1)}".strip()
    return name


def _record(obj: dict, mapping: Mapping) -> dict | None:
    """One raw object → one record dict, or None when a value does not parse."""
    rid = _clean(path_value(obj, mapping.source.id)[0])
    if rid is None:
        return None
    tm = mapping.type
    rtype = tm.default
    if tm.path:
        rtype = tm.map.get(_clean(path_value(obj, tm.path)[0]) or "", rtype)
    for rule in tm.rules:
        values = [_clean(path_value(obj, p)[0] if "[]" not in p else None) for p in rule.when]
        if all(values) and (rule.equals is None or values[0] == rule.equals):
            rtype = rule.type
            break
    rec: dict = {"source": mapping.source.name, "source_id": rid, "type": rtype}
    for name, fm in mapping.fields.items():
        values = [path_value(obj, p)[0] for p in fm.path]
        if name in LIST_FIELDS:
            items: list[str] = []
            for v in values:
                if v is None:
                    continue
                if isinstance(v, list):
                    items.extend(x for x in v if x is not None)
                else:
                    items.extend(v.split(fm.split) if fm.split else [v])
            cleaned = [_order(c, fm.name_order) for c in (_clean(i) for i in items) if c]
            rec[name] = list(dict.fromkeys(cleaned)) or None
            continue
        text = next((_clean(v[0] if isinstance(v, list) and v else v) for v in values if v), None)
        if text is not None and fm.split and name not in LIST_FIELDS:
            text = _clean(text.split(fm.split)[0])
        if name in INT_FIELDS | FLOAT_FIELDS and text is not None:
            kind = mapping.field_parse(name)
            try:
                number = float(_YEAR.search(text).group(1)) if kind == "year" else float(text.replace(",", ""))
            except (AttributeError, ValueError):
                return None
            number *= UNITS[fm.unit] if fm.unit else 1.0
            rec[name] = int(number) if name in INT_FIELDS else number
        else:
            rec[name] = text if name == "abstract" or text is None else _order(text, fm.name_order)
    return rec


def ingest_python(mapping: Mapping, path: Path, out: Path) -> tuple[int, int]:
    """Map a JSON Lines file row by row; returns (records, quarantined)."""
    rows, bad, seen = [], 0, set()
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                rec = _record(json.loads(raw), mapping)
            except (json.JSONDecodeError, TypeError):
                rec = None
            if rec is None or rec["source_id"] in seen:
                bad += 1
                continue
            seen.add(rec["source_id"])
            rec["line"] = line_no
            rows.append(rec)
    pq.write_table(pa.Table.from_pylist(rows, schema=RECORDS), out, compression="zstd")
    return len(rows), bad
