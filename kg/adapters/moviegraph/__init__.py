"""The ScaDS MovieGraphBenchmark (IMDb, TMDb, TVDb) as three sources with mappings and ground truth.

The data is not shipped (IMDb's terms are non-commercial): callers pass the
folder that holds ``imdb.csv``, ``tmdb.csv``, ``tvdb.csv`` and the
``gt_<a>_<b>.csv`` match files, as published by pyJedAI (datasets D5-D7).
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import polars as pl

from kg.errors import KGError
from kg.ingest import IngestReport, ingest_source

SOURCES = ("imdb", "tmdb", "tvdb")
SOURCE_PAIRS = tuple(combinations(SOURCES, 2))


def mapping_path(source: str) -> Path:
    """The bundled mapping of one moviegraph source."""
    return Path(__file__).with_name(f"{source}.toml")


def _require(data_dir: Path, name: str) -> Path:
    path = data_dir / name
    if not path.is_file():
        raise KGError(f"{path}: not found; pass the folder of the moviegraph benchmark (imdb.csv, tmdb.csv, ...)")
    return path


def ingest_moviegraph(data_dir: str | Path, out_dir: str | Path, *, strict: bool = False) -> dict[str, IngestReport]:
    """Ingest the three sources into ``out_dir/records/{imdb,tmdb,tvdb}.parquet``."""
    data_dir = Path(data_dir)
    return {
        s: ingest_source(mapping_path(s), [_require(data_dir, f"{s}.csv")], out_dir, strict=strict) for s in SOURCES
    }


def truth_pairs(data_dir: str | Path) -> pl.DataFrame:
    """Every ground-truth match as (left_source, left_id, right_source, right_id)."""
    data_dir = Path(data_dir)
    frames = []
    for left, right in SOURCE_PAIRS:
        gt = pl.read_csv(_require(data_dir, f"gt_{left}_{right}.csv"), separator="|", schema_overrides=[pl.String] * 2)
        frames.append(
            gt.select(
                pl.lit(left).alias("left_source"),
                pl.col("D1").alias("left_id"),
                pl.lit(right).alias("right_source"),
                pl.col("D2").alias("right_id"),
            )
        )
    return pl.concat(frames)
