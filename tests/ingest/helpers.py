"""Small builders for ingest tests: a mapping from a dict, raw files from lines."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from kg.ingest import IngestReport, ingest_source, parse_mapping


def mapping(fmt: str = "jsonl", fields: dict | None = None, **source) -> object:
    return parse_mapping(
        {
            "source": {"name": "src", "format": fmt, "id": "id", **source},
            "type": {"default": "movie", "rules": [{"when": "born", "type": "person"}]},
            "fields": fields
            or {"name": ["title", "name"], "year": "year", "cast": {"path": "cast[].name", "name_order": "last_first"}},
        }
    )


def run(
    tmp_path: Path, data: bytes | str, fmt: str = "jsonl", suffix: str = ".jsonl", **kw
) -> tuple[IngestReport, pl.DataFrame, pl.DataFrame]:
    raw = tmp_path / f"raw{suffix}"
    raw.write_bytes(data.encode() if isinstance(data, str) else data)
    fields = kw.pop("fields", None)
    strict = kw.pop("strict", False)
    report = ingest_source(mapping(fmt, fields, **kw), [raw], tmp_path / "out", strict=strict)
    return report, pl.read_parquet(report.records_path), pl.read_parquet(report.quarantine_path)
