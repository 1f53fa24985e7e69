"""Song pair features in the registry style of ``matching.features``, robust to values in the wrong attribute.

Two kinds of evidence. Per attribute: the title in three forms (as written,
store boilerplate stripped, every bracket stripped), artist, album, genre
words, price, duration, release date and copyright, each null when either side
lacks it. Across attributes, for the Dirty variant where a value may sit in
the song name instead of its own slot: similarities of the whole record's text,
how much of one side's title/artist/album is found anywhere in the other
record, the leading words both titles share (a Dirty title's own words come
first), the titles' words once every artist/album/genre/copyright word is
removed, and price, duration and date read from the attribute or, failing
that, from anywhere in the record (their formats are unambiguous).

The computation is ``matching.features.pair_features`` (a gather by row,
rapidfuzz ``cpdist`` over whole columns, polars expressions) fed with the
song columns prepared here.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pyarrow as pa
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler

from kg.adapters.itunes_amazon.parse import ATTRIBUTES, LabelledPairs
from kg.adapters.itunes_amazon.text import (
    album_norm,
    copyright_norm,
    first_year,
    genre_tokens,
    price,
    release_date,
    release_year,
    seconds,
    song_core,
    song_norm,
    squash,
    strip_values,
    tokens,
    version_tags,
)
from matching.features import Compute, Feature, PairFrame, pair_features
from schemas.tables import CANDIDATE_PAIRS, conform

_SLOTS = [pl.col(a) for a in ("Artist_Name", "Album_Name", "Genre", "CopyRight")]


def prepare_songs(attributes: pl.DataFrame) -> pl.DataFrame:
    """Comparable columns per record, from ``LabelledPairs.attributes``; compute once, reuse for every pair."""
    everything = pl.concat_str([pl.col(a) for a in ATTRIBUTES], separator=" ", ignore_nulls=True)
    return (
        attributes.with_columns(everything=everything)
        .select(
            "source",
            "source_id",
            song_raw=pl.col("Song_Name").str.to_lowercase().str.replace_all(r"\s+", " "),
            song_norm=song_norm(pl.col("Song_Name")),
            song_core=song_core(pl.col("Song_Name")),
            song_versions=version_tags(pl.col("Song_Name")),
            artist=squash(pl.col("Artist_Name")),
            album=album_norm(pl.col("Album_Name")),
            genre_tokens=genre_tokens(pl.col("Genre")),
            price=pl.coalesce(price(pl.col("Price")), price(pl.col("everything"))),
            seconds=pl.coalesce(seconds(pl.col("Time")), seconds(pl.col("everything"))),
            released=pl.coalesce(release_date(pl.col("Released")), release_date(pl.col("everything"))),
            year=pl.coalesce(release_year(pl.col("Released")), release_year(pl.col("everything"))),
            copyright=copyright_norm(pl.col("CopyRight")),
            copyright_year=first_year(pl.col("CopyRight")),
            slots=squash(pl.concat_str(_SLOTS, separator=" ", ignore_nulls=True)),
            record=squash(strip_values(pl.col("everything"))),
        )
        .with_columns(
            song_tokens=tokens(pl.col("song_core")),
            song_words=pl.col("song_core").str.split(" ").fill_null([]),
            slot_tokens=tokens(pl.col("slots")),
            artist_tokens=tokens(pl.col("artist")),
            album_tokens=tokens(pl.col("album")),
            record_tokens=tokens(pl.col("record")),
        )
    )


def _fuzz(column: str, scorer: Callable) -> Compute:
    return lambda pf: pf.score(column, scorer)


def _share(part: str, whole: str) -> pl.Expr:
    """Share of the tokens of ``part`` found among ``whole``'s; null when ``part`` has none."""
    size = pl.col(part).list.len()
    return pl.when(size > 0).then(pl.col(part).list.set_intersection(pl.col(whole)).list.len() / size)


def _found_in_other(column: str) -> Compute:
    """Worse of both directions: this side's ``column`` tokens found anywhere in the other record, and back.

    A side whose attribute is empty (moved away in Dirty) gives no direction,
    and the other direction alone decides; null when both are empty.
    """
    both = pl.min_horizontal(_share(column, "record_tokens_r"), _share(f"{column}_r", "record_tokens"))
    return lambda pf: both


def _overlap(column: str) -> Compute:
    """Shared / smaller set; null when either set is empty."""
    left, right = pl.col(column), pl.col(f"{column}_r")
    shared = left.list.set_intersection(right).list.len()
    present = (left.list.len() > 0) & (right.list.len() > 0)
    return lambda pf: pl.when(present).then(shared / pl.min_horizontal(left.list.len(), right.list.len()))


def _diff(column: str) -> Compute:
    """Absolute difference; null when either side is missing."""
    return lambda pf: (pl.col(column) - pl.col(f"{column}_r")).abs()


def _days_diff(pf: PairFrame) -> pl.Expr:
    """Absolute release date difference in days; null when either date is missing."""
    return (pl.col("released") - pl.col("released_r")).dt.total_days().abs()


def _equal(column: str) -> Compute:
    return lambda pf: pl.col(column) == pl.col(f"{column}_r")


def _same_versions(pf: PairFrame) -> pl.Expr:
    """1 when both titles carry the same version words (remix, live, ...; none = none), 0 otherwise."""
    present = pl.col("song_raw").is_not_null() & pl.col("song_raw_r").is_not_null()
    same = pl.col("song_versions").list.join(" ") == pl.col("song_versions_r").list.join(" ")
    return pl.when(present).then(same)


def _jaccard(column: str) -> Compute:
    """Shared / all distinct tokens; null when both lists are empty."""
    left, right = pl.col(column), pl.col(f"{column}_r")
    union = left.list.set_union(right).list.len()
    return lambda pf: pl.when(union > 0).then(left.list.set_intersection(right).list.len() / union)


def _title_tokens() -> tuple[pl.Expr, pl.Expr]:
    """Each side's bare-title words minus every word of either record's artist, album, genre and copyright.

    A Dirty title carries values moved out of their slots; when the other
    record kept them in place (or this one kept the rest), removing slot words
    leaves the title itself. Symmetric: a title word that also names the album
    goes from both sides.
    """
    slots = pl.col("slot_tokens").list.set_union(pl.col("slot_tokens_r"))
    return pl.col("song_tokens").list.set_difference(slots), pl.col("song_tokens_r").list.set_difference(slots)


def _title_jaccard(pf: PairFrame) -> pl.Expr:
    left, right = _title_tokens()
    union = left.list.set_union(right).list.len()
    return pl.when(union > 0).then(left.list.set_intersection(right).list.len() / union)


def _title_unshared(pf: PairFrame) -> pl.Expr:
    left, right = _title_tokens()
    return left.list.set_symmetric_difference(right).list.len()


_PREFIX_WORDS = 4


def _leading_words(pf: PairFrame) -> pl.Expr:
    """How many leading words (up to 4) the bare titles share: a Dirty title's own words come first."""
    left, right = pl.col("song_words"), pl.col("song_words_r")
    shorter = pl.min_horizontal(left.list.len(), right.list.len())
    same = [(left.list.head(k) == right.list.head(k)) & (shorter >= k) for k in range(1, _PREFIX_WORDS + 1)]
    count = pl.sum_horizontal([s.cast(pl.Int32) for s in same])
    return pl.when(shorter > 0).then(count)


def _unshared(pf: PairFrame) -> pl.Expr:
    """Tokens of either record missing from the other: what a different song (or version) adds."""
    left, right = pl.col("record_tokens"), pl.col("record_tokens_r")
    return left.list.set_symmetric_difference(right).list.len()


SONG_FEATURES: tuple[Feature, ...] = (
    Feature("song_ratio_raw", "edit ratio of the song names as written (lowercased)", _fuzz("song_raw", fuzz.ratio)),
    Feature("song_token_set_raw", "token-set ratio of the song names as written",
            _fuzz("song_raw", fuzz.token_set_ratio)),
    Feature("song_ratio", "edit ratio of song names without '(feat. ...)', '[Explicit]', '(Remastered)', ...",
            _fuzz("song_norm", fuzz.ratio)),
    Feature("song_token_sort", "token-sort ratio of song names without store boilerplate",
            _fuzz("song_norm", fuzz.token_sort_ratio)),
    Feature("song_jaro_winkler", "Jaro-Winkler of song names without boilerplate: prefix-weighted, so a Dirty "
            "name with other values appended still scores on its title",
            _fuzz("song_norm", JaroWinkler.normalized_similarity)),
    Feature("song_core_ratio", "edit ratio of song names with every bracketed group removed",
            _fuzz("song_core", fuzz.ratio)),
    Feature("song_core_token_set", "token-set ratio of song names with every bracketed group removed",
            _fuzz("song_core", fuzz.token_set_ratio)),
    Feature("song_core_partial", "best partial ratio of the shorter bare song name inside the longer",
            _fuzz("song_core", fuzz.partial_ratio)),
    Feature("song_versions_match", "1 if both titles name the same versions (remix, live, acoustic, edit, ...)",
            _same_versions),
    Feature("song_in_other", "share of each bare title's words found anywhere in the other record (worse side)",
            _found_in_other("song_tokens")),
    Feature("song_leading_words", "number of leading words (up to 4) the bare titles share", _leading_words),
    Feature("title_jaccard", "Jaccard of the bare titles' words once every artist/album/genre/copyright word of "
            "either record is removed: the title left when Dirty moved those values into it", _title_jaccard),
    Feature("title_unshared", "number of such title words in one record and not the other", _title_unshared),
    Feature("artist_token_set", "token-set ratio of the artists", _fuzz("artist", fuzz.token_set_ratio)),
    Feature("artist_in_other", "share of each artist's words found anywhere in the other record",
            _found_in_other("artist_tokens")),
    Feature("album_ratio", "edit ratio of album titles without '[Explicit]', '(Deluxe ...)', '- EP', ...",
            _fuzz("album", fuzz.ratio)),
    Feature("album_token_set", "token-set ratio of album titles without boilerplate",
            _fuzz("album", fuzz.token_set_ratio)),
    Feature("album_in_other", "share of each album title's words found anywhere in the other record",
            _found_in_other("album_tokens")),
    Feature("genre_overlap", "shared / fewer genre words ('Music' and '&' dropped)", _overlap("genre_tokens")),
    Feature("price_equal", "1 if the prices are equal (attribute, else a '$ x.xx' anywhere)", _equal("price")),
    Feature("price_diff", "absolute price difference in dollars", _diff("price")),
    Feature("time_diff", "absolute duration difference in seconds (attribute, else an 'm:ss' anywhere)",
            _diff("seconds")),
    Feature("released_days_diff", "absolute release date difference in days (either store's date format)",
            _days_diff),
    Feature("released_year_diff", "absolute release year difference (dates or bare years)", _diff("year")),
    Feature("copyright_token_set", "token-set ratio of copyright lines without '( C )', '℗', boilerplate",
            _fuzz("copyright", fuzz.token_set_ratio)),
    Feature("copyright_year_diff", "absolute difference of the copyright years", _diff("copyright_year")),
    Feature("record_token_set", "token-set ratio of all attribute values together: blind to which slot holds what",
            _fuzz("record", fuzz.token_set_ratio)),
    Feature("record_token_sort", "token-sort ratio of all attribute values together",
            _fuzz("record", fuzz.token_sort_ratio)),
    Feature("record_ratio", "edit ratio of all attribute values together, in attribute order",
            _fuzz("record", fuzz.ratio)),
    Feature("record_jaccard", "Jaccard of the two records' word sets", _jaccard("record_tokens")),
    Feature("record_unshared", "number of words in one record and not the other", _unshared),
)  # fmt: skip


def describe_song_features(features: tuple[Feature, ...] = SONG_FEATURES) -> pl.DataFrame:
    """The song registry as a table: name and meaning of every feature column."""
    return pl.DataFrame({"feature": [f.name for f in features], "doc": [f.doc for f in features]})


def labelled_candidates(pairs: pl.DataFrame) -> pa.Table:
    """CANDIDATE_PAIRS for the distinct labelled pairs (files repeat some): partition 0, rule 'labelled'."""
    table = pairs.select(
        "left_source", "left_id", "right_source", "right_id", partition=pl.lit(0, pl.Int32), rule=pl.lit("labelled")
    ).unique(maintain_order=True)
    return conform(table.to_arrow(), CANDIDATE_PAIRS)


def song_pair_features(
    data: LabelledPairs, features: tuple[Feature, ...] = SONG_FEATURES, *, prepared: pl.DataFrame | None = None
) -> pa.Table:
    """FEATURES (pair keys, partition, one float32 column per feature) for each distinct pair of a Ditto file."""
    prepared = prepare_songs(data.attributes) if prepared is None else prepared
    return pair_features(labelled_candidates(data.pairs), prepared=prepared, features=features)
