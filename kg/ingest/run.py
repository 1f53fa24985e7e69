"""Ingest one source: raw files + mapping → a records Parquet file and a quarantine Parquet file.

Streaming, chunk by chunk, so memory stays bounded by the block size and
not the file size; both outputs are written under temporary names and
renamed only when the whole source succeeded, so a crash or a strict-mode
stop never leaves a half-written table that looks finished.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from kg.errors import IngestError
from kg.ingest.mapping import Mapping, load_mapping
from kg.ingest.readers import read_chunks
from kg.ingest.transform import Plan, flatten, map_chunk
from schemas import QUARANTINE, RECORDS, conform


@dataclass
class FileReport:
    path: str
    rows_in: int = 0
    records: int = 0
    quarantined: int = 0
    blank_lines: int = 0

    @property
    def empty(self) -> bool:
        return self.rows_in == 0


@dataclass
class IngestReport:
    """What one source's ingest did; ``rows_in == records + quarantined`` always holds."""

    source: str
    records_path: Path
    quarantine_path: Path
    files: list[FileReport] = field(default_factory=list)
    quarantined_by_field: Counter = field(default_factory=Counter)
    nulled_by_field: Counter = field(default_factory=Counter)
    bytes_in: int = 0
    seconds: float = 0.0

    @property
    def rows_in(self) -> int:
        return sum(f.rows_in for f in self.files)

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)


class _SeenIds:
    """Ids already written for this source, as sorted 64-bit hashes with where each was first seen.

    Hashes keep memory at 16 bytes an id (10 million ids: 160 MB) instead of
    the strings themselves; two different ids colliding in 64 bits is
    vanishingly unlikely at these sizes (about 1 in 10^7 for 10 million ids).
    """

    def __init__(self) -> None:
        self.hashes = np.empty(0, dtype=np.uint64)
        self.where = np.empty(0, dtype=np.int64)  # file index << 40 | line

    def duplicates(self, ids: pl.Series, lines: np.ndarray, file_index: int) -> tuple[np.ndarray, np.ndarray]:
        """(is-duplicate mask, first-seen location) for ``ids``; new ids are remembered."""
        hashes = ids.hash(seed=0).to_numpy()
        where = (np.int64(file_index) << 40) | lines.astype(np.int64)
        first = pl.DataFrame({"h": hashes, "w": where}).select(pl.col("w").first().over("h")).to_series().to_numpy()
        dup = first != where  # a later occurrence within this chunk
        if self.hashes.size:
            pos = np.minimum(np.searchsorted(self.hashes, hashes), self.hashes.size - 1)
            found = self.hashes[pos] == hashes
            first = np.where(found, self.where[pos], first)
            dup |= found
        order = np.argsort(hashes[~dup], kind="stable")
        new_h, new_w = hashes[~dup][order], where[~dup][order]
        at = np.searchsorted(self.hashes, new_h)
        self.hashes = np.insert(self.hashes, at, new_h)
        self.where = np.insert(self.where, at, new_w)
        return dup, first


def _quarantine_frame(source: str, file: str, rows: pl.DataFrame) -> pa.Table:
    table = rows.with_columns(pl.lit(source).alias("source"), pl.lit(file).alias("file")).select(
        [f.name for f in QUARANTINE]
    )
    return conform(table.to_arrow(), QUARANTINE)


def ingest_source(
    mapping: Mapping | str | Path,
    inputs: list[str | Path],
    out_dir: str | Path,
    *,
    strict: bool = False,
) -> IngestReport:
    """Map every raw file of one source into ``out_dir/records/<source>.parquet``.

    Bad rows go to ``out_dir/quarantine/<source>.parquet`` with the file,
    line, field and reason; with ``strict=True`` the first bad row raises
    :class:`IngestError` instead and no output is written.
    """
    if not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    plan = Plan(mapping)
    source = mapping.source.name
    out_dir = Path(out_dir)
    report = IngestReport(
        source,
        out_dir / "records" / f"{source}.parquet",
        out_dir / "quarantine" / f"{source}.parquet",
    )
    for p in (report.records_path, report.quarantine_path):
        p.parent.mkdir(parents=True, exist_ok=True)
    tmp_records = report.records_path.with_suffix(".parquet.tmp")
    tmp_quarantine = report.quarantine_path.with_suffix(".parquet.tmp")
    started = time.perf_counter()
    seen = _SeenIds()
    paths = [Path(p) for p in inputs]
    try:
        with (
            pq.ParquetWriter(tmp_records, RECORDS, compression="zstd") as records_out,
            pq.ParquetWriter(tmp_quarantine, QUARANTINE, compression="zstd") as quarantine_out,
        ):
            for index, path in enumerate(paths):
                file_report = FileReport(str(path))
                report.files.append(file_report)
                report.bytes_in += path.stat().st_size if path.is_file() else 0
                for chunk in read_chunks(path, mapping.source):
                    records, bad, nulled = map_chunk(flatten(chunk, plan), plan)
                    dup, first_seen = seen.duplicates(records["source_id"], records["line"].to_numpy(), index)
                    dups = records.filter(pl.Series(dup)).select(
                        "line",
                        "source_id",
                        pl.lit(mapping.source.id).alias("field"),
                        pl.format(
                            "duplicate id '{}' (first seen at {})",
                            "source_id",
                            pl.Series([_location(paths, w) for w in first_seen[dup]], dtype=pl.String),
                        ).alias("reason"),
                        pl.lit(None, pl.String).alias("raw"),
                    )
                    unparsed = pl.DataFrame(
                        {
                            "line": [b.line for b in chunk.bad],
                            "source_id": [None] * len(chunk.bad),
                            "field": [None] * len(chunk.bad),
                            "reason": [b.reason for b in chunk.bad],
                            "raw": [b.raw for b in chunk.bad],
                        },
                        schema={
                            "line": pl.Int64,
                            "source_id": pl.String,
                            "field": pl.String,
                            "reason": pl.String,
                            "raw": pl.String,
                        },
                    )
                    quarantined = pl.concat([unparsed, bad, dups]).sort("line")
                    if strict and quarantined.height:
                        first = quarantined.row(0, named=True)
                        raise IngestError(str(path), first["line"], first["field"], first["reason"])
                    kept = records.filter(~pl.Series(dup)).with_columns(pl.lit(source).alias("source"))
                    records_out.write_table(conform(kept.select([f.name for f in RECORDS]).to_arrow(), RECORDS))
                    if quarantined.height:
                        quarantine_out.write_table(_quarantine_frame(source, str(path), quarantined))
                    file_report.rows_in += chunk.rows_in
                    file_report.records += kept.height
                    file_report.quarantined += quarantined.height
                    file_report.blank_lines += chunk.blank
                    report.quarantined_by_field.update(
                        dict(quarantined["field"].fill_null("<row>").value_counts().iter_rows())
                    )
                    report.nulled_by_field.update(nulled)
                if file_report.rows_in != file_report.records + file_report.quarantined:
                    raise IngestError(str(path), None, None, "internal error: rows in and out do not reconcile")
        tmp_records.replace(report.records_path)
        tmp_quarantine.replace(report.quarantine_path)
    finally:
        tmp_records.unlink(missing_ok=True)
        tmp_quarantine.unlink(missing_ok=True)
    report.seconds = time.perf_counter() - started
    return report


def _location(paths: list[Path], where: int) -> str:
    return f"{paths[int(where) >> 40]}:{int(where) & ((1 << 40) - 1)}"
