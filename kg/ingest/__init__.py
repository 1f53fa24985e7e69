"""Ingest: raw sources (JSON Lines, JSON arrays, CSV/TSV) + a declarative mapping → the records table.

The whole surface a user needs::

    from kg.ingest import load_mapping, ingest_source
    report = ingest_source("tmdb.toml", ["tmdb.jsonl"], "out/")
    report.records, report.quarantined   # out/records/tmdb.parquet, out/quarantine/tmdb.parquet
"""

from kg.ingest.mapping import Mapping, load_mapping, parse_mapping
from kg.ingest.run import FileReport, IngestReport, ingest_source

__all__ = ["FileReport", "IngestReport", "Mapping", "ingest_source", "load_mapping", "parse_mapping"]
