"""The moviegraph adapter against the real benchmark files (skipped when ../shared/data is absent)."""

import polars as pl
import pytest

from kg.adapters.moviegraph import SOURCES, ingest_moviegraph, truth_pairs

pytestmark = pytest.mark.data

ROWS = {"imdb": 5118, "tmdb": 6056, "tvdb": 7810}


def test_every_row_becomes_a_record(moviegraph_dir, tmp_path):
    reports = ingest_moviegraph(moviegraph_dir, tmp_path)
    for source in SOURCES:
        r = reports[source]
        assert (r.rows_in, r.records, r.quarantined) == (ROWS[source], ROWS[source], 0)
    imdb = pl.read_parquet(reports["imdb"].records_path)
    cumberbatch = imdb.filter(pl.col("name") == "Benedict Cumberbatch").row(0, named=True)
    assert cumberbatch["type"] == "person" and cumberbatch["year"] == 1976
    assert "actor" in cumberbatch["professions"]
    episodes = imdb.filter(pl.col("type") == "episode")
    assert episodes["season"].null_count() == 0 and episodes.height == 1082
    tmdb = pl.read_parquet(reports["tmdb"].records_path)
    homicide = tmdb.filter(pl.col("name") == "Homicide: Life on the Street").row(0, named=True)
    assert homicide["type"] == "series" and homicide["end_year"] == 1999 and homicide["countries"] == ["US"]
    assert tmdb.filter(pl.col("type") == "company").height > 100
    assert tmdb["abstract"].null_count() < tmdb.height


def test_truth_pairs_point_at_ingested_records(moviegraph_dir, tmp_path):
    reports = ingest_moviegraph(moviegraph_dir, tmp_path)
    records = pl.concat([pl.read_parquet(r.records_path).select("source", "source_id") for r in reports.values()])
    truth = truth_pairs(moviegraph_dir)
    assert truth.height == 1968 + 1072 + 1095
    for side in ("left", "right"):
        keys = truth.select(pl.col(f"{side}_source").alias("source"), pl.col(f"{side}_id").alias("source_id"))
        assert keys.join(records, on=["source", "source_id"], how="anti").height == 0
