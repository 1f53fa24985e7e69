"""Small hand-built RECORDS tables for the matching tests."""

from __future__ import annotations

import pyarrow as pa

from schemas.tables import RECORDS, conform


def records(rows: list[dict]) -> pa.Table:
    """RECORDS from partial rows: unspecified fields are null."""
    return conform(pa.Table.from_pylist(rows, schema=RECORDS), RECORDS)


def movie(source: str, source_id: str, name: str, year: int | None = None, **fields) -> dict:
    return {"source": source, "source_id": source_id, "type": "movie", "name": name, "year": year, **fields}


def person(source: str, source_id: str, name: str, year: int | None = None, **fields) -> dict:
    return {"source": source, "source_id": source_id, "type": "person", "name": name, "year": year, **fields}
