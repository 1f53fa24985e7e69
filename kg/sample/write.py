"""Streamed writers: each chunk's rows are appended and dropped, so memory stays bounded by one chunk.

JSON rows arrive already encoded, one object per row (``render``), so JSON
Lines is those joined by newlines and a JSON array is ``[``, the objects joined
by ``,`` (one per line), then ``]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

TRUTH = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("entity_type", pa.string(), nullable=False),
        pa.field("cases", pa.list_(pa.string()), nullable=False),
    ],
    metadata={"doc": "Ground truth of a generated sample: the true entity of every raw record, "
                     "and the hard-case kinds that apply to it."},
)


class RawWriter:
    """Appends rows to one raw file in its source's format (jsonl, csv with ``;``, or json array)."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt
        self._fh: BinaryIO = path.open("wb")
        self._first = True
        if fmt == "json":
            self._fh.write(b"[\n")

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        if self.fmt == "csv":
            frame.write_csv(self._fh, separator=";", include_header=self._first)
        else:
            sep = "\n" if self.fmt == "jsonl" else ",\n"
            text = frame.select(pl.col("json").str.join(sep)).item()
            lead = "" if self._first or self.fmt == "jsonl" else sep
            self._fh.write((lead + text + ("\n" if self.fmt == "jsonl" else "")).encode())
        self._first = False

    def close(self) -> None:
        if self.fmt == "json":
            self._fh.write(b"\n]\n" if not self._first else b"]\n")
        self._fh.close()


class TruthWriter:
    """Appends truth rows to one Parquet file, one row group per chunk."""

    def __init__(self, path: Path):
        self.path = path
        self._writer = pq.ParquetWriter(path, TRUTH)

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height:
            self._writer.write_table(frame.to_arrow().cast(TRUTH))

    def close(self) -> None:
        self._writer.close()
