import polars as pl
import pytest

from schemas.tables import RECORDS, SchemaMismatch, conform_frame
from tests.matching.builders import movie, records


def test_conform_frame_passes_a_conforming_frame_through_uncopied() -> None:
    frame = pl.from_arrow(records([movie("a", "1", "Heat", 1995)]))
    assert conform_frame(frame, RECORDS) is frame


def test_conform_frame_casts_or_refuses_like_conform() -> None:
    frame = pl.from_arrow(records([movie("a", "1", "Heat", 1995)]))
    cast = conform_frame(frame.with_columns(pl.col("year").cast(pl.Int64)), RECORDS)
    assert cast.schema == frame.schema and cast.equals(frame)
    with pytest.raises(SchemaMismatch, match="'source_id' has 1 nulls"):
        conform_frame(frame.with_columns(source_id=pl.lit(None, pl.String)), RECORDS)
    with pytest.raises(SchemaMismatch, match="missing column 'name'"):
        conform_frame(frame.drop("name"), RECORDS)
