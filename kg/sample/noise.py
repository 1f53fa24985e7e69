"""Record-level noise shared by all sources: who carries what, titles, typos, missing fields, ids.

Each record carries the noise matching has to see through: a translated
title with or without the original as alias, a typo, missing fields,
differently numbered sequels. Every deviation is a flag column here and a tag
in the truth's ``cases``, so an evaluation can be broken down by it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from kg.sample import words
from kg.sample.catalog import tags
from kg.sample.rng import Draws

SOURCES = ("studio", "catalog", "guide")
RECORD_CASES = (
    "translated_title", "typo", "missing_fields", "last_first", "runtime_seconds", "runtime_hours",
)


@dataclass(frozen=True)
class Noise:
    """Per-source probabilities: of carrying an entity, and of each kind of record noise."""

    works: float
    episodes: float
    persons: float
    translated: float  # a foreign work is shown under its English title
    alias: float  # the title not shown is kept as an alias
    typo: float
    missing: float


NOISE = {
    "studio": Noise(works=0.8, episodes=0.8, persons=0.85, translated=0.8, alias=0.8, typo=0.06, missing=0.1),
    "catalog": Noise(works=0.7, episodes=0.0, persons=0.0, translated=0.6, alias=0.7, typo=0.1, missing=0.15),
    "guide": Noise(works=0.75, episodes=0.75, persons=0.7, translated=0.25, alias=0.9, typo=0.08, missing=0.12),
}


def present(seed: int, frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """Which sources carry each entity; one nobody drew goes to the studio, so none is lost."""
    d = Draws(seed, frame["idx"].to_numpy())
    kind = frame["type"].to_numpy()
    out = {}
    for source, noise in NOISE.items():
        p = np.where(kind == "person", noise.persons, np.where(kind == "episode", noise.episodes, noise.works))
        out[source] = d.chance(f"{source}:present", p)
    out["studio"] |= ~(out["catalog"] | out["guide"])
    return out


def draws(frame: pl.DataFrame, seed: int, source: str, streams: dict[str, int]) -> pl.DataFrame:
    """Add uniform (n=0) or integer-below-n draw columns named after their streams."""
    d = Draws(seed, frame["idx"].to_numpy())
    cols = [
        pl.Series(name, d.uniform(f"{source}:{name}") if n == 0 else d.below(f"{source}:{name}", n))
        for name, n in streams.items()
    ]
    return frame.with_columns(cols)


def typo(col: str) -> pl.Expr:
    """One deletion, adjacent swap or substitution in ``col``; never a no-op (falls back to deletion)."""
    s = pl.col(col)
    pos = (pl.col("u_pos") * (s.str.len_chars() - 1)).floor().cast(pl.Int64)
    head = s.str.slice(0, pos)
    deleted = head + s.str.slice(pos + 1)
    swapped = head + s.str.slice(pos + 1, 1) + s.str.slice(pos, 1) + s.str.slice(pos + 2)
    letter = pl.lit(pl.Series(list("aeiourstnlm"))).gather(pl.col("k_letter"))
    substituted = head + letter + s.str.slice(pos + 1)
    edited = pl.when(pl.col("k_op") == 0).then(deleted).when(pl.col("k_op") == 1).then(swapped).otherwise(substituted)
    return pl.when(edited == s).then(deleted).otherwise(edited)


_SEQUEL_STYLES = 3


def numbered(col: str) -> pl.Expr:
    """A sequel's title as this source numbers it: "X 2", "X II" or "X: Part II"."""
    n = pl.col("sequel_no")
    roman = pl.lit(pl.Series(words.ROMAN)).gather(n.fill_null(0))
    suffix = (
        pl.when(pl.col("k_style") == 0).then(pl.format(" {}", n))
        .when(pl.col("k_style") == 1).then(pl.format(" {}", roman))
        .otherwise(pl.format(": Part {}", roman))
    )
    return pl.when(n.is_not_null()).then(pl.col(col) + suffix).otherwise(pl.col(col))


def titles(frame: pl.DataFrame, seed: int, source: str) -> pl.DataFrame:
    """Display title, the other title (kept as alias or not), typos, and their flags."""
    noise = NOISE[source]
    frame = draws(frame, seed, source, {
        "u_translated": 0, "u_alias": 0, "u_typo": 0, "u_pos": 0, "k_op": 3, "k_letter": 11,
        "k_style": _SEQUEL_STYLES,
    })
    foreign = pl.col("title") != pl.col("original_title")
    translated = foreign & (pl.col("u_translated") < noise.translated)
    return frame.with_columns(
        pl.when(translated).then("title").otherwise("original_title").alias("shown"),
        pl.when(foreign & (pl.col("u_alias") < noise.alias))
        .then(pl.when(translated).then("original_title").otherwise("title")).alias("other"),
        translated.alias("translated_title"),
        (pl.col("u_typo") < noise.typo).alias("typo"),
    ).with_columns(numbered("shown").alias("shown"), numbered("other").alias("other")).with_columns(
        pl.when("typo").then(typo("shown")).otherwise("shown").alias("shown"),
    )


def names(frame: pl.DataFrame, seed: int, source: str) -> pl.DataFrame:
    """A person's display name (with a possible typo) and an initialled alias ("D. Craig")."""
    frame = draws(frame, seed, source, {"u_alias": 0, "u_typo": 0, "u_pos": 0, "k_op": 3, "k_letter": 11})
    return frame.with_columns(
        (pl.col("u_typo") < NOISE[source].typo).alias("typo"),
        pl.when(pl.col("u_alias") < 0.3)
        .then(pl.format("{}. {}", pl.col("first").str.slice(0, 1), pl.col("surname"))).alias("other"),
        translated_title=pl.lit(False),
    ).with_columns(pl.when("typo").then(typo("name")).otherwise("name").alias("shown"))


def missing(frame: pl.DataFrame, seed: int, source: str, fields: tuple[str, ...], shared: int) -> pl.DataFrame:
    """Null some of ``fields`` in a share of records: at least one, each other with chance 0.3.

    The one that is sure to go is among the first ``shared`` fields, those every
    entity type renders (an episode shows no countries), so a record tagged
    ``missing_fields`` always visibly lacks something.
    """
    frame = draws(frame, seed, source, {"u_missing": 0, "k_missing": shared})
    hit = pl.col("u_missing") < NOISE[source].missing
    d = Draws(seed, frame["idx"].to_numpy())
    drops = [
        hit & ((pl.col("k_missing") == k) | pl.lit(pl.Series(d.chance(f"{source}:drop-{f}", 0.3))))
        for k, f in enumerate(fields)
    ]
    return frame.with_columns(
        [pl.when(~drop).then(pl.col(f)).alias(f) for drop, f in zip(drops, fields, strict=True)]
    ).with_columns(hit.alias("missing_fields"))


def truth(frame: pl.DataFrame, source: str, id_col: str, extra: dict[str, pl.Expr]) -> pl.DataFrame:
    """Truth rows: the entity behind each record, its entity cases, then this record's noise tags."""
    record = tags({"translated_title": pl.col("translated_title"), "typo": pl.col("typo"),
                   "missing_fields": pl.col("missing_fields"), **extra})
    return frame.select(
        pl.lit(source).alias("source"),
        pl.col(id_col).alias("source_id"),
        "entity_id",
        pl.col("type").alias("entity_type"),
        pl.concat_list("cases", record).alias("cases"),
    )


def _permute(x: np.ndarray, bits: int, salt: int) -> np.ndarray:
    """A bijection of [0, 2**bits): add, xor-shift, multiply by an odd constant, xor-shift (all invertible)."""
    mask, half = np.uint64((1 << bits) - 1), np.uint64(bits // 2)
    x = (x.astype(np.uint64) + np.uint64(salt & ((1 << bits) - 1))) & mask
    x = ((x ^ (x >> half)) * np.uint64(0x9E3779B97F4A7C15)) & mask
    return x ^ (x >> half)


def ids(idx: pl.Series, salt: int, alphabet: str, width: int, prefix: str) -> pl.Series:
    """Opaque per-source ids: a bijection of the entity index, spelled in ``width`` letters of ``alphabet``."""
    base = len(alphabet)
    code = _permute(idx.to_numpy(), (base**width).bit_length() - 1, salt)
    chars = pl.Series(list(alphabet))
    digits = []
    for _ in range(width):
        digits.append(chars.gather(pl.Series((code % np.uint64(base)).astype(np.int64))))
        code = code // np.uint64(base)
    return pl.select(pl.concat_str([pl.lit(prefix), *reversed(digits)])).to_series()


def date(year: str, month: str, day: str) -> pl.Expr:
    """YYYY-MM-DD from a year column and month/day draw columns (days stop at 28: always valid)."""
    return pl.format(
        "{}-{}-{}",
        pl.col(year),
        (pl.col(month) + 1).cast(pl.String).str.pad_start(2, "0"),
        (pl.col(day) + 1).cast(pl.String).str.pad_start(2, "0"),
    )


# Fields missing-noise may null; the first five are rendered for every work type, people's for every person.
WORK_FIELDS = ("year", "runtime", "directors", "cast", "abstract", "countries", "genres")
PERSON_FIELDS = ("year", "countries", "professions", "abstract")
