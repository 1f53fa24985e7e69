"""Pair features, computed on whole columns: each pair's records gathered by row, then vector scorers.

Every feature is a named entry in ``FEATURE_REGISTRY`` with a one-line meaning,
so a user can print what the model sees (like Splink's comparison library).
String similarities run in rapidfuzz's ``process.cpdist`` over entire columns
with all cores; everything else is a polars expression. No per-pair Python.

Missing stays missing: a feature is null when either side lacks the input
(LightGBM learns its own direction for missing), never a silent zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler

from kg.errors import KGError
from matching.normalize import (
    distinct_values,
    fold,
    fold_text,
    in_key_order,
    looked_up,
    normalize_role,
    normalize_term,
    on_all_cores,
    prepare,
)
from schemas.tables import CANDIDATE_PAIRS, FEATURES, RECORDS, conform, conform_frame

if TYPE_CHECKING:
    from matching.model import PairModel

_ABSTRACT_CHARS = 160  # enough to tell two synopses apart; longer strings only slow the scorer
_KEYS = ["left_source", "left_id", "right_source", "right_id"]
_SIDE = [
    "source", "source_id", "type", "is_person", "name_folded", "name_norm", "titles", "sequel", "year", "end_year",
    "runtime_min", "directors_norm", "cast_norm", "writers_norm", "countries_norm", "languages_norm",
    "genres_norm", "parent_norm", "season", "episode", "title_count", "professions_norm", "roles_norm", "abstract_head",
]  # fmt: skip


_WORD = r"[\p{L}\p{N}]"
_SCORES_ITSELF_FULLY = frozenset({
    fuzz.ratio, fuzz.token_set_ratio, fuzz.token_sort_ratio, fuzz.partial_ratio, JaroWinkler.normalized_similarity,
})
"""Scorers that give a string compared with itself their top score whenever it holds a letter or digit (without
one, ``token_set_ratio`` gives 0): identical pairs skip them."""


_SETS = [
    "directors_norm", "cast_norm", "writers_norm", "countries_norm", "languages_norm", "genres_norm",
    "professions_norm", "roles_norm",
]  # fmt: skip
_SET_SEED = 0x6B67
"""The set features' columns hold 64-bit hashes of the normalised names and terms, not the strings: intersecting
lists of integers takes half the time (1M records: 0.23 s against 0.48 s per partition of 348k pairs), and a
partition's inputs are smaller. Two names of one pair colliding is a 1e-19 chance."""


class PairFrame:
    """Each pair's two records, column by column (left plain, right suffixed ``_r``), gathered on first use.

    A column is gathered from the records by row only when a feature reads it,
    so a screen's cheap features never pay for gathering the lists and texts
    only the costly ones read (1M records, a partition of 350k pairs on one
    thread: 0.14 s to gather every column). Turning a string column into
    Python lists for rapidfuzz costs more than a scorer itself, so each column
    is converted once and shared by every feature, and each (column, scorer)
    result is computed once.
    """

    def __init__(self, records: pl.DataFrame, left: pl.Series, right: pl.Series) -> None:
        self._records, self._rows = records, {"": left, "_r": right}
        self.height = len(left)
        self._columns: dict[str, pl.Series] = {}
        self._strings: dict[str, tuple[list[str], list[str], np.ndarray, np.ndarray]] = {}
        self._scores: dict[tuple[str, Callable], np.ndarray] = {}

    @classmethod
    def joined(cls, df: pl.DataFrame) -> PairFrame:
        """A PairFrame over pairs already side by side: ``df`` holds each column and its ``_r`` twin."""
        rows = pl.int_range(df.height, dtype=pl.UInt32, eager=True)
        frame = cls(df, rows, rows)
        frame._columns.update({name: df[name] for name in df.columns})
        return frame

    def column(self, name: str) -> pl.Series:
        """``name`` of each pair's left record, or of its right one for ``name_r``; gathered once."""
        if name not in self._columns:
            side = "_r" if name.endswith("_r") and name[:-2] in self._records.columns else ""
            self._columns[name] = self._records[name[: len(name) - len(side)]].gather(self._rows[side]).alias(name)
        return self._columns[name]

    def frame(self, names: set[str]) -> pl.DataFrame:
        """The named columns side by side, one row per pair (an expression feature's input)."""
        return pl.DataFrame([self.column(name) for name in sorted(names)])

    def strings(self, column: str) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
        """Left and right values of the pairs that need a scorer, their row numbers, and the rows of identical words.

        Only present pairs are converted and scored: parent titles exist for
        episodes only, abstracts for some sources only, and a missing side is
        a missing feature anyway. Identical values that hold a letter or digit
        (a third of the titles of a 1M-record run's pairs) need no scorer of
        ``_SCORES_ITSELF_FULLY``.
        """
        if column not in self._strings:
            left, right = self.column(column), self.column(f"{column}_r")
            present = left.is_not_null() & right.is_not_null()
            same = present & (left == right) & left.str.contains(_WORD)
            rows, same_rows = np.flatnonzero((present & ~same).to_numpy()), np.flatnonzero(same.to_numpy())
            self._strings[column] = (left.gather(rows).to_list(), right.gather(rows).to_list(), rows, same_rows)
        return self._strings[column]

    def score(self, column: str, scorer: Callable) -> np.ndarray:
        """0..1 similarity per pair, NaN where either side is missing; read-only, cached."""
        key = (column, scorer)
        if key not in self._scores:
            left, right, rows, same = self.strings(column)
            result = np.full(self.height, np.nan, dtype=np.float32)
            if len(same):
                if scorer in _SCORES_ITSELF_FULLY:
                    result[same] = 1.0
                else:
                    values = self.column(column).gather(same).to_list()
                    result[same] = _similarity(values, values, scorer)
            if len(rows):
                result[rows] = _similarity(left, right, scorer)
            result.flags.writeable = False
            self._scores[key] = result
        return self._scores[key]


def _similarity(left: list[str], right: list[str], scorer: Callable) -> np.ndarray:
    """0..1 float32 scores of ``left[i]`` against ``right[i]``, on every core polars may use."""
    scored = process.cpdist(left, right, scorer=scorer, workers=pl.thread_pool_size(), dtype=np.float32)
    return scored if scorer is JaroWinkler.normalized_similarity else scored / np.float32(100.0)


Compute = Callable[[PairFrame], pl.Expr | np.ndarray]


@dataclass(frozen=True)
class Feature:
    """A named pair feature: ``compute`` maps a PairFrame to an expression or a float array.

    ``costly`` marks the features a model's screen (``matching.model.Screen``)
    goes without, so that the pairs it rejects never pay for them: those
    that cost more than they add to the screen's rejections.
    """

    name: str
    doc: str
    compute: Compute
    costly: bool = False


def _both(column: str) -> pl.Expr:
    return pl.col(column).is_not_null() & pl.col(f"{column}_r").is_not_null()


def _fuzz(column: str, scorer: Callable) -> Compute:
    """0..1 similarity of a string column on both sides; null where either is missing."""
    return lambda pf: pf.score(column, scorer)


def _alias_best(pf: PairFrame) -> np.ndarray:
    """Best token-sort ratio over all title forms; only pairs with aliases pay for the cross product.

    A record's first form is its name where it has one, and the names' ratio
    is ``title_token_sort``'s already: the cross product leaves that
    comparison out (half of it at 1M records).
    """
    named = pl.col("name_norm").is_not_null() & pl.col("name_norm_r").is_not_null()
    forms = pf.frame({"name_norm", "name_norm_r", "titles", "titles_r"}).select(
        row=pl.int_range(pl.len(), dtype=pl.UInt32), named=named, left="titles", right="titles_r"
    )
    forms = forms.filter((pl.col("left").list.len() > 1) | (pl.col("right").list.len() > 1))
    crossed = (
        forms.with_columns(at=pl.int_ranges(pl.col("left").list.len(), dtype=pl.UInt32))
        .explode("left", "at")
        .with_columns(at_r=pl.int_ranges(pl.col("right").list.len(), dtype=pl.UInt32))
        .explode("right", "at_r")
        .drop_nulls(["left", "right"])
    )
    # a pair that shares a form scores 1 without the scorer (a third of the crossed forms at 1M records)
    shared = crossed.filter((pl.col("left") == pl.col("right")) & pl.col("left").str.contains(_WORD))["row"].unique()
    names = pl.col("named") & (pl.col("at") == 0) & (pl.col("at_r") == 0)
    crossed = crossed.filter(~pl.col("row").is_in(shared.implode()) & ~names)
    score = _similarity(crossed["left"].to_list(), crossed["right"].to_list(), fuzz.token_sort_ratio)
    best = crossed.select("row", s=pl.Series(score)).group_by("row").agg(pl.max("s"))
    out = pf.score("name_norm", fuzz.token_sort_ratio).copy()
    rows = best["row"].to_numpy()
    out[rows] = np.fmax(out[rows], best["s"].to_numpy())
    out[shared.to_numpy()] = 1.0
    return out


def _set_similarity(column: str, overlap: bool = False) -> Compute:
    """Jaccard (or overlap coefficient: shared / smaller set) of two lists; null if either is empty.

    The lists hold distinct values (``prepare`` keeps each name or term
    once), so the union's size is the two sizes less the shared ones: a
    second set operation would cost as much as the intersection (12 ms of a
    350k-pair partition's 30 ms per Jaccard feature).
    """
    left, right = pl.col(column), pl.col(f"{column}_r")
    shared = left.list.set_intersection(right).list.len()
    denom = (
        pl.min_horizontal(left.list.len(), right.list.len())
        if overlap
        else left.list.len() + right.list.len() - shared
    )
    present = (left.list.len() > 0) & (right.list.len() > 0)
    return lambda pf: pl.when(present).then(shared / denom)


def _diff(column: str, where: pl.Expr | None = None) -> Compute:
    """Absolute difference; null when either side is missing or ``where`` is false."""
    value = (pl.col(column) - pl.col(f"{column}_r")).abs()
    return lambda pf: value if where is None else pl.when(where).then(value)


_WORKS = ~pl.col("is_person") & ~pl.col("is_person_r")
_PEOPLE = pl.col("is_person") & pl.col("is_person_r")


def _rel_runtime(pf: PairFrame) -> pl.Expr:
    left, right = pl.col("runtime_min"), pl.col("runtime_min_r")
    return (left - right).abs() / pl.max_horizontal(left, right).clip(lower_bound=1.0)


def _sequel_mismatch(pf: PairFrame) -> pl.Expr:
    """'Knives Out' vs 'Knives Out 2' -> 1; no number reads as instalment 1."""
    differ = pl.col("sequel").fill_null(1) != pl.col("sequel_r").fill_null(1)
    return pl.when(_WORKS & _both("name_norm")).then(differ)


def _episode_match(pf: PairFrame) -> pl.Expr:
    same = (pl.col("season") == pl.col("season_r")) & (pl.col("episode") == pl.col("episode_r"))
    return pl.when(_both("season") & _both("episode")).then(same)


def _title_freq(pf: PairFrame) -> pl.Expr:
    """log2 of how many records carry the more common of the two titles: 'Mother' is weak evidence."""
    return pl.max_horizontal("title_count", "title_count_r").log(2)


# ``costly``: a 1M-record run's partition of 350k pairs (one thread) spends 0.2 s on each of token set,
# alias_best and the abstract ratio, 0.14 s on token sort and 0.1 s on the raw-title ratio (its own column
# to convert), against ~0.03 s for a set feature and ~5 ms for a difference. Jaro-Winkler (0.03 s: the titles
# are converted for the ratio already) and the set features of countries, languages, genres, professions
# and roles (0.015-0.037 s each, 0.12 s together) add next to nothing to the screen: without them it still
# rejects 77.2% of the 1M bench's pairs against 77.7%, and predicts faster (15 features, 33 trees against
# 21 and 34).
FEATURE_REGISTRY: tuple[Feature, ...] = (
    Feature("title_ratio", "edit-distance ratio of normalised titles/names", _fuzz("name_norm", fuzz.ratio)),
    Feature("title_token_set", "token-set ratio of normalised titles: subtitle-tolerant",
            _fuzz("name_norm", fuzz.token_set_ratio), costly=True),
    Feature("title_token_sort", "token-sort ratio of normalised titles: word-order-tolerant",
            _fuzz("name_norm", fuzz.token_sort_ratio), costly=True),
    Feature("title_jaro_winkler", "Jaro-Winkler of normalised titles: prefix-weighted",
            _fuzz("name_norm", JaroWinkler.normalized_similarity), costly=True),
    Feature("title_ratio_raw", "ratio of original titles, only case and accents folded",
            _fuzz("name_folded", fuzz.ratio), costly=True),
    Feature("alias_best", "best token-sort ratio over all title forms (name and aliases)", _alias_best, costly=True),
    Feature("title_freq", "log2 count of records sharing the commoner normalised title", _title_freq),
    Feature("sequel_mismatch", "1 if the sequel numbers differ ('Rocky IV' = 'Rocky 4')", _sequel_mismatch),
    Feature("year_diff", "absolute release/start year difference (works)", _diff("year", _WORKS)),
    Feature("end_year_diff", "absolute end year difference (series)", _diff("end_year", _WORKS)),
    Feature("birth_year_diff", "absolute birth year difference (people)", _diff("year", _PEOPLE)),
    Feature("death_year_diff", "absolute death year difference (people)", _diff("end_year", _PEOPLE)),
    Feature("runtime_diff", "absolute runtime difference in minutes", _diff("runtime_min")),
    Feature("runtime_rel_diff", "runtime difference relative to the longer runtime", _rel_runtime),
    Feature("directors_jaccard", "Jaccard of normalised director names", _set_similarity("directors_norm")),
    Feature("cast_overlap", "shared cast / smaller cast list", _set_similarity("cast_norm", overlap=True)),
    Feature("writers_jaccard", "Jaccard of normalised writer names", _set_similarity("writers_norm")),
    Feature("country_jaccard", "Jaccard of countries", _set_similarity("countries_norm"), costly=True),
    Feature("language_jaccard", "Jaccard of original languages", _set_similarity("languages_norm"), costly=True),
    Feature("genre_jaccard", "Jaccard of genres (source vocabularies differ: weak)", _set_similarity("genres_norm"),
            costly=True),
    Feature("profession_jaccard", "Jaccard of professions/credit jobs as the sources spell them (people)",
            _set_similarity("professions_norm"), costly=True),
    Feature("role_jaccard", "Jaccard of professions mapped to one role vocabulary ('guestStars' = 'actor')",
            _set_similarity("roles_norm"), costly=True),
    Feature("abstract_ratio", "edit-distance ratio of the first 160 folded characters of the abstracts",
            _fuzz("abstract_head", fuzz.ratio), costly=True),
    Feature("type_match", "1 if both records have the same entity type",
            lambda pf: pl.col("type") == pl.col("type_r")),
    Feature("episode_match", "1 if season and episode numbers agree", _episode_match),
    Feature("parent_ratio", "ratio of the parent series titles (episodes)", _fuzz("parent_norm", fuzz.ratio)),
)  # fmt: skip


def model_features(model: PairModel) -> tuple[Feature, ...]:
    """The registry features a model was trained on, in its order; a name this toolkit does not compute is an error."""
    return _registered(model.features, model.model_id)


def screen_features(model: PairModel) -> tuple[Feature, ...]:
    """The registry features of the model's screen (none without one), in the screen's order."""
    return _registered(model.screen.features, model.model_id) if model.screen is not None else ()


def cheap_feature_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Of ``names``, the registry's features that are not ``costly``: what a screen may use."""
    costly = {f.name for f in FEATURE_REGISTRY if f.costly}
    known = {f.name for f in FEATURE_REGISTRY}
    return tuple(name for name in names if name in known and name not in costly)


def _registered(names: tuple[str, ...], model_id: str) -> tuple[Feature, ...]:
    known = {f.name: f for f in FEATURE_REGISTRY}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise KGError(f"model {model_id} uses features this toolkit does not compute: {unknown}; retrain")
    return tuple(known[name] for name in names)


def describe_features() -> pl.DataFrame:
    """The registry as a table: name and meaning of every feature column, and whether it is costly (left to the
    pairs a model's screen keeps)."""
    return pl.DataFrame({
        "feature": [f.name for f in FEATURE_REGISTRY],
        "doc": [f.doc for f in FEATURE_REGISTRY],
        "costly": [f.costly for f in FEATURE_REGISTRY],
    })


def prepare_features(records: pa.Table | pl.DataFrame, *, prepared: pl.DataFrame | None = None) -> pl.DataFrame:
    """Normalised records with the global title count; compute once, reuse for every partition.

    The title count must come from all records, not one partition's pairs,
    or a common title looks rare wherever it is split. ``prepared``
    (``matching.normalize.prepare`` of the same records, e.g. blocking's
    view) saves normalising them a second time; rows keep its order.
    """
    base = conform_frame(records, RECORDS)
    if prepared is None:
        prep = prepare(base.with_columns(_abstract_head(base["abstract"])))
    else:
        ordered = base if in_key_order(base) else base.sort("source", "source_id")
        if not ordered["source_id"].equals(prepared["source_id"]) or not ordered["source"].equals(prepared["source"]):
            raise ValueError("prepared is not matching.normalize.prepare of these records")
        prep = prepared.with_columns(_abstract_head(ordered["abstract"]))
    professions = distinct_values([prep["professions"]], normalize_term)
    roles = distinct_values([prep["professions"]], normalize_role)
    return prep.with_columns(
        professions_norm=looked_up(prep["professions"], professions, distinct=True),
        roles_norm=looked_up(prep["professions"], roles, distinct=True),
        name_folded=on_all_cores(prep["name"], fold), title_count=pl.len().over("name_norm").cast(pl.Float32)
    ).with_columns(pl.col(_SETS).list.eval(pl.element().hash(_SET_SEED))).select(_SIDE)


def _abstract_head(abstract: pl.Series) -> pl.Series:
    # folding never shortens text below one character per input character, so fold a prefix, not the whole text
    return fold_text(abstract.str.slice(0, 2 * _ABSTRACT_CHARS)).str.slice(0, _ABSTRACT_CHARS).alias("abstract_head")


def pair_features(
    pairs: pa.Table,
    records: pa.Table | pl.DataFrame | None = None,
    *,
    prepared: pl.DataFrame | None = None,
    features: tuple[Feature, ...] = FEATURE_REGISTRY,
    rows: pl.DataFrame | None = None,
) -> pa.Table:
    """FEATURES for CANDIDATE_PAIRS: pair keys, partition, one float32 column per feature.

    ``rows`` (``rid``, ``rid_r``: each pair's row numbers in ``prepared``, in
    the pairs' order, as ``matching.blocking.candidate_rows`` gives them) saves
    finding the records by key.
    """
    if prepared is None:
        if records is None:
            raise ValueError("pair_features needs records or prepared")
        prepared = prepare_features(records)
    pairs_df = pl.from_arrow(conform(pairs, CANDIDATE_PAIRS))
    rows = rows if rows is not None else _rows_of(pairs_df, prepared)
    computed = pairs_df.select(*_KEYS, "partition").hstack(feature_frame(prepared, rows, features))
    return conform(computed.to_arrow(), FEATURES, extra=pa.float32())


def feature_frame(prepared: pl.DataFrame, rows: pl.DataFrame, features: tuple[Feature, ...]) -> pl.DataFrame:
    """The feature columns alone of ``pair_features``, in polars: a partition computes its features in two steps
    (the screen's, then the rest for the pairs it keeps) and takes the pairs' keys from its CANDIDATE_PAIRS."""
    # row order is the contract: callers align labels and scores with the input pairs
    frame = PairFrame(prepared.drop("source", "source_id").rechunk(), rows["rid"], rows["rid_r"])
    exprs, arrays = {}, {}
    for feature in features:
        value = feature.compute(frame)
        if isinstance(value, pl.Expr):
            exprs[feature.name] = value.cast(pl.Float32)
        else:
            arrays[feature.name] = pl.Series(feature.name, value, dtype=pl.Float32).fill_nan(None)
    # only the columns the expressions read are gathered; lazily, so an expression two features share (a set
    # intersection) is computed once
    inputs = {name for expr in exprs.values() for name in expr.meta.root_names()}
    computed = [frame.frame(inputs).lazy().select(**exprs).collect()] if exprs else []
    return pl.concat([*computed, pl.DataFrame(list(arrays.values()))], how="horizontal").select(
        f.name for f in features
    )


def _rows_of(pairs: pl.DataFrame, prepared: pl.DataFrame) -> pl.DataFrame:
    """Each pair's left and right row number in ``prepared``; a pair naming a record that is not there is an
    error, not a row of missing features."""
    ids = prepared.select("source", "source_id").with_row_index("row")
    rows = []
    for side in ("left", "right"):
        keys = [f"{side}_source", f"{side}_id"]
        found = pairs.join(ids, left_on=keys, right_on=["source", "source_id"], how="left", maintain_order="left")
        if found["row"].null_count():
            unknown = found.filter(pl.col("row").is_null()).select(keys)
            raise KGError(
                f"pair_features: {unknown.height} pair(s) name a {side} record that is not among the records, "
                f"first {':'.join(unknown.row(0))}"
            )
        rows.append(found["row"])
    return pl.DataFrame({"rid": rows[0], "rid_r": rows[1]})
