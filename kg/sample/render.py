"""Each fictional source's shape: field names, nesting, units and id scheme.

The three differ the way real sources do: ``studio`` is a nested API dump
(JSON Lines, credits as objects, dates, runtime in minutes, English titles
with localized ones beside them), ``catalog`` a flat retailer export (CSV with
``;``, "Last, First" names joined by ``|``, runtime in seconds, movies and
series only), ``guide`` a TV-guide JSON array (original titles with "aka",
years as strings, runtime in hours, people grouped by role, a category
field). Each entity type keeps only its own keys; records stay in entity
order across types, so the files do not depend on the chunk size.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from kg.sample import noise, words
from kg.sample.catalog import Chunk
from kg.sample.rng import key

_HEX = "0123456789abcdef"
_BASE32 = "0123456789abcdefghjkmnpqrstvwxyz"
_JOBS = {"director": "Directing", "writer": "Writing", "actor": "Acting", "producer": "Production"}
_GENRE_IDS = {g: 10 + 7 * k for k, g in enumerate(words.GENRES)}
_LAST_FIRST = r"^(\S+) (.+)$"


@dataclass(frozen=True)
class Rendered:
    """One source's view of a chunk: raw rows (CSV columns, or one ``json`` column) and their truth rows."""

    rows: pl.DataFrame
    truth: pl.DataFrame


def _objects(col: str, **extra: pl.Expr) -> pl.Expr:
    """A list of names as a list of ``{"name": ...}`` objects."""
    return pl.col(col).list.eval(pl.struct(name=pl.element(), **extra))


def _encode(
    source: str, id_col: str, frame: pl.DataFrame, shape: dict[str, list[pl.Expr]], truth: dict[str, pl.Expr]
) -> Rendered:
    """Encode each entity type's rows as JSON in its own shape, then put all back in entity order."""
    rows, truths = [], []
    for kind, columns in shape.items():
        part = frame.filter(pl.col("type") == kind)
        rows.append(part.select("idx", pl.struct(columns).struct.json_encode().alias("json")))
        truths.append(noise.truth(part, source, id_col, truth).with_columns(part["idx"]))
    order = pl.concat(rows)["idx"].arg_sort()
    return Rendered(
        pl.concat(rows).select("json")[order], pl.concat(truths)[order].drop("idx"),
    )


def studio(seed: int, works: pl.DataFrame, persons: pl.DataFrame) -> Rendered:
    """Nested objects with TMDB-like keys; each type has its own date keys ("release_date", "birthday")."""
    frame = pl.concat([works, persons], how="diagonal_relaxed")
    frame = noise.draws(frame, seed, "studio", {"k_month": 12, "k_day": 28, "k_end_month": 12, "k_end_day": 28})
    frame = frame.with_columns(noise.ids(frame["idx"], key(seed, "studio-ids"), _HEX, 10, "st-").alias("id"))
    other_lang = pl.when("translated_title").then("language").otherwise(pl.lit("en"))
    start, end = noise.date("year", "k_month", "k_day"), noise.date("end_year", "k_end_month", "k_end_day")
    parent = pl.when("translated_title").then("parent").otherwise("parent_original")
    title = pl.col("shown").alias("title")
    localized = pl.when(pl.col("other").is_not_null()).then(
        pl.concat_list(pl.struct(iso_639_1=other_lang, title=pl.col("other")))
    ).alias("localized_titles")
    genres = pl.col("genres").list.eval(
        pl.struct(id=pl.element().replace_strict(_GENRE_IDS, return_dtype=pl.Int32), name=pl.element())
    ).alias("genres")
    credits = pl.struct(
        directors=_objects("directors", job=pl.lit("Director")),
        cast=_objects("cast"),
        writers=_objects("writers", job=pl.lit("Screenplay")),
    ).alias("credits")
    where = [pl.col("countries").alias("production_countries"), pl.concat_list("language").alias("spoken_languages")]
    shape = {
        "movie": [pl.col("id"), pl.lit("movie").alias("media_type"), title, localized, start.alias("release_date"),
                  pl.col("runtime"), genres, *where, credits, pl.col("abstract").alias("overview")],
        "series": [pl.col("id"), pl.lit("tv").alias("media_type"), pl.col("shown").alias("name"), localized,
                   start.alias("first_air_date"), end.alias("last_air_date"), pl.col("runtime"), genres, *where,
                   credits, pl.col("abstract").alias("overview")],
        "episode": [pl.col("id"), pl.lit("episode").alias("media_type"), pl.col("shown").alias("name"), localized,
                    pl.struct(parent.alias("title")).alias("series"), pl.col("season").alias("season_number"),
                    pl.col("episode").alias("episode_number"), start.alias("air_date"), pl.col("runtime"),
                    credits, pl.col("abstract").alias("overview")],
        "person": [pl.col("id"), pl.lit("person").alias("media_type"), pl.col("shown").alias("name"),
                   pl.when(pl.col("other").is_not_null()).then(pl.concat_list("other")).alias("also_known_as"),
                   start.alias("birthday"), end.alias("deathday"), pl.col("countries").alias("nationality"),
                   pl.col("professions").list.eval(pl.element().replace_strict(_JOBS)).alias("jobs"),
                   pl.col("abstract").alias("biography")],
    }
    return _encode("studio", "id", frame, shape, {})


def catalog(seed: int, works: pl.DataFrame, persons: pl.DataFrame) -> Rendered:
    """Flat rows, movies and series only (the retailer sells no people and no single episodes)."""
    frame = noise.draws(works.filter(pl.col("type") != "episode"), seed, "catalog", {"k_seconds": 60})
    frame = frame.with_columns(
        noise.ids(frame["idx"], key(seed, "catalog-ids"), "0123456789", 10, "C").alias("cat_id"),
    )

    def people(col: str) -> pl.Expr:
        return pl.col(col).list.eval(pl.element().str.replace(_LAST_FIRST, "${2}, ${1}")).list.join("|").alias(col)

    rows = frame.select(
        "cat_id",
        pl.when(pl.col("type") == "series").then(pl.lit("TV")).otherwise(pl.lit("Film")).alias("format"),
        pl.col("shown").alias("title"),
        pl.col("other").alias("alt_title"),
        "year",
        "end_year",
        (pl.col("runtime") * 60 + pl.col("k_seconds")).alias("runtime_sec"),
        pl.col("countries").list.join("|").alias("country"),
        pl.col("language"),
        pl.col("genres").list.join("/").alias("genre"),
        people("directors").alias("director"),
        people("cast"),
        people("writers").alias("writer"),
        pl.col("abstract").alias("synopsis"),
    )
    named = pl.any_horizontal([pl.col(c).list.len() > 0 for c in ("directors", "cast", "writers")]).fill_null(False)
    truth = noise.truth(frame, "catalog", "cat_id", {
        "last_first": named, "runtime_seconds": pl.col("runtime").is_not_null(),
    })
    return Rendered(rows, truth)


def guide(seed: int, works: pl.DataFrame, persons: pl.DataFrame) -> Rendered:
    """Flat-ish objects with a ``category``; numbers as strings, people by role, runtime in hours."""
    frame = pl.concat([works, persons], how="diagonal_relaxed")
    frame = frame.with_columns(noise.ids(frame["idx"], key(seed, "guide-ids"), _BASE32, 8, "gd").alias("gid"))
    aka = pl.when(pl.col("other").is_not_null()).then(pl.concat_list("other")).alias("aka")
    year = pl.col("year").cast(pl.String).alias("year")
    hours = (pl.col("runtime") / 60).round(2).alias("duration_h")
    people = pl.struct(
        directed_by=pl.col("directors"), starring=pl.col("cast"), written_by=pl.col("writers"),
    ).alias("people")
    about = [pl.col("countries").list.join(", ").alias("origin"), pl.concat_list("language").alias("lang"),
             pl.col("genres").list.eval(pl.element().str.to_lowercase()).alias("tags")]
    parent = pl.when("translated_title").then("parent").otherwise("parent_original")

    def head(category: str) -> list[pl.Expr]:
        return [pl.col("gid"), pl.lit(category).alias("category"), pl.col("shown").alias("primary_title"), aka]

    shape = {
        "movie": [*head("film"), year, hours, *about, people, pl.col("abstract").alias("plot")],
        "series": [*head("show"), year, pl.col("end_year").cast(pl.String).alias("end"), hours, *about, people,
                   pl.col("abstract").alias("plot")],
        "episode": [*head("episode"), pl.struct(parent.alias("title")).alias("show"),
                    pl.col("season").cast(pl.String).alias("season"),
                    pl.col("episode").cast(pl.String).alias("number"), year, hours, people,
                    pl.col("abstract").alias("plot")],
        "person": [pl.col("gid"), pl.lit("person").alias("category"), pl.col("shown").alias("name"),
                   pl.col("year").cast(pl.String).alias("born"), pl.col("end_year").cast(pl.String).alias("died"),
                   pl.col("countries").list.join(", ").alias("nationality"),
                   pl.col("professions").list.join(", ").alias("occupation"), pl.col("abstract").alias("bio")],
    }
    return _encode("guide", "gid", frame, shape, {"runtime_hours": pl.col("runtime").is_not_null()})


def render(seed: int, chunk: Chunk) -> dict[str, Rendered]:
    """Every source's records of one chunk of true entities, after record-level noise."""
    works_in, persons_in = noise.present(seed, chunk.works), noise.present(seed, chunk.persons)
    out = {}
    for source, shape in (("studio", studio), ("catalog", catalog), ("guide", guide)):
        works = noise.titles(chunk.works.filter(works_in[source]), seed, source)
        persons = noise.names(chunk.persons.filter(persons_in[source]), seed, source)
        out[source] = shape(
            seed,
            noise.missing(works, seed, source, noise.WORK_FIELDS, shared=5),
            noise.missing(persons, seed, source, noise.PERSON_FIELDS, shared=4),
        )
    return out
