"""The held-out moviegraph evaluation on the real benchmark (skips without ../shared/data)."""

import polars as pl
import pytest

from kg.adapters.moviegraph import SOURCES, ingest_moviegraph, truth_pairs
from matching.holdout import holdout_eval


@pytest.mark.data
@pytest.mark.slow
def test_moviegraph_holdout(moviegraph_dir, tmp_path) -> None:
    reports = ingest_moviegraph(moviegraph_dir, tmp_path)
    records = pl.concat([pl.read_parquet(r.records_path) for r in reports.values()])
    result = holdout_eval(records, truth_pairs(moviegraph_dir), clean_sources=SOURCES)
    pairs = result["source_pairs"]
    assert set(pairs) == {"imdb-tmdb", "imdb-tvdb", "tmdb-tvdb"}
    for figures in pairs.values():
        assert figures["pair_completeness"] > 0.97 and figures["candidates"] < 5
        assert figures["clustered"]["f1_labelled"] > 0.88
    assert pairs["imdb-tmdb"]["clustered"]["f1_labelled"] > 0.97
    assert result["clustering"]["bcubed"]["f1"] > 0.95
