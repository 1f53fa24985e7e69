"""iTunes/Amazon song rows as RECORDS, the toolkit's common record table.

RECORDS was drawn for films and people; a song maps onto it as:
name = Song_Name, aliases = the title without store boilerplate (when it
differs), parent = Album_Name (the work the song belongs to, as an episode's
series), cast = the performing artist then the featured artists, year and
runtime from Released and Time, genres from Genre. Price and CopyRight have no
RECORDS field; they stay in the attribute table that the features read.

The type is ``song`` (a work in the ontology).
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from kg.adapters.itunes_amazon.text import featured, release_year, seconds, strip_boilerplate
from schemas.tables import RECORDS, conform

SONG_TYPE = "song"


def song_records(attributes: pl.DataFrame) -> pa.Table:
    """RECORDS for the ``attributes`` of ``read_pairs``: one row per distinct song text and source.

    Dirty files move values into the wrong attribute; the records keep what
    the source says (a Dirty Song_Name may carry the artist and the time), and
    only the features look across attributes.
    """
    genres = pl.col("Genre").str.split(" , ").list.eval(pl.element().str.strip_chars().filter(pl.element() != ""))
    stripped = strip_boilerplate(pl.col("Song_Name"))
    table = attributes.select(
        "source",
        "source_id",
        type=pl.lit(SONG_TYPE),
        name="Song_Name",
        aliases=pl.when(stripped != pl.col("Song_Name")).then(pl.concat_list(stripped)),
        year=release_year(pl.col("Released")),
        runtime_min=(seconds(pl.col("Time")) / 60.0).cast(pl.Float32),
        genres=genres,
        cast=pl.concat_list("Artist_Name", featured(pl.col("Song_Name"))).list.drop_nulls(),
        parent="Album_Name",
        line="line",
    ).to_arrow()
    for field in RECORDS:
        if field.name not in table.column_names:
            table = table.append_column(field.name, pa.nulls(table.num_rows, field.type))
    return conform(table, RECORDS)
