"""Blocking rules, a partition plan, and candidate pairs for one partition at a time.

A rule maps each record to zero or more keys; records sharing a key form a
block. Every block becomes one *unit* of work (an oversized block becomes
several overlapping windows), and every unit lives in exactly one partition,
together with all of its member records. So a partition is processed alone:
nothing is shuffled between partitions or gathered afterwards.

Exactly once: a pair is *owned* by the first unit the two records share, in
rule order, then by unit hash. A partition emits a pair only from the unit that
owns it. Each record's full unit list is a function of the record and the plan,
so every partition reaches the same verdict without seeing the others.

Precision: within a unit each record keeps only its ``top_k`` most similar
partners per other source (a cheap normalised-title ratio, minus a year gap
penalty, plus a bonus for the same first director or cast member), so a large
block costs ``n * k`` pairs downstream, not ``n^2``. The bonus matters for
common titles: a block of two hundred "Mother"s from the same decade is
decided by who made them, not by the identical titles.
"""

from __future__ import annotations

import functools
import heapq
import importlib
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from matching.normalize import PERSON_TYPES, content_tokens, person_key, prepare
from schemas.tables import CANDIDATE_PAIRS, RECORDS, conform, conform_frame

_SEED = 0x6B67  # fixed: unit ids must agree on every machine running the same polars version
_PRIO = 2**56  # unit id = rule priority * 2^56 + (hash >> 8): ids sort by rule first
_MAX_RULES = 255
_SLICE_PAIRS = 3_000_000  # in-block pairs enumerated at once (names joined, scored, ranked): bounds memory

WORK_TYPES = frozenset({"movie", "series", "episode", "season", "tv_movie", "short", "video", "book"})
NAMED_TYPES = WORK_TYPES | {"company", "character", "place", "award", "concept", "country", "language", "genre"}
"""Everything matched by its name or title rather than as a person: studios and networks block like titles."""

KeyFn = Callable[[pl.LazyFrame], pl.LazyFrame]

_MAKERS = {"director_sig": "directors_norm", "cast_sig": "cast_norm", "writer_sig": "writers_norm"}
MAKER_SIGS = tuple(_MAKERS)
"""Who made a record, one number per role (the smallest hash of its normalised names): what places an undated
record among its title's namesakes and ranks partners of the same title and year."""


@dataclass(frozen=True)
class BlockingRule:
    """A named key function over prepared records: ``keys(lf) -> (rid, key)`` rows.

    ``types`` limits the rule to some entity types (None: all). Keys are
    namespaced by the rule name and the record's type group, so two rules or
    two incompatible types never share a block by accident.
    """

    name: str
    keys: KeyFn = field(repr=False)
    types: frozenset[str] | None = None
    top_k: int | None = None  # partners kept per record and unit; None: the plan's top_k
    purge: bool = False  # oversized blocks of this rule are dropped, not windowed
    max_block: int | None = None  # block size above which this rule's blocks are windowed; None: the plan's
    spread_undated: bool = False  # records without a year join every window of this rule's oversized blocks
    name_given: bool = False  # every pair of a block shares a name form: in-block ranking ignores the names
    spec: tuple | None = field(default=None, repr=False, compare=False)  # (module, factory, args, kwargs)

    def __str__(self) -> str:
        return self.name

    def __reduce__(self):
        """Pickle as the factory call that built the rule: key functions are closures pickle cannot carry."""
        if self.spec is None:
            raise TypeError(f"blocking rule {self.name!r} was not made by a @blocking_rule factory; cannot ship it")
        return _rebuild, (self.spec, self.types, self.top_k, self.purge, self.max_block, self.spread_undated)

    def only(self, types: Iterable[str]) -> BlockingRule:
        """The same rule applied to these entity types only."""
        return replace(self, types=frozenset(types))

    def keep(self, top_k: int) -> BlockingRule:
        """The same rule keeping only ``top_k`` partners per record in each of its blocks."""
        return replace(self, top_k=top_k)

    def window(self, max_block: int) -> BlockingRule:
        """The same rule with its own block size limit: blocks above it are cut into windows of that size."""
        return replace(self, max_block=max_block)

    def undated_everywhere(self) -> BlockingRule:
        """The same rule with records that lack a year joining every window of its oversized blocks.

        Windows follow (year, title) order, where an undated record has no
        place: it would meet only the oldest titles. For exact-title keys the
        partner is somewhere in the block, so it is compared with all of it
        (top-k still keeps its best). Not a default: on generated records it
        gains 0.0013 pair completeness at 200k, but at 1M the undated members
        of big common-title blocks cost 20% more end-to-end time for +0.0007 F1.
        """
        return replace(self, spread_undated=True)

    def purged(self) -> BlockingRule:
        """The same rule with oversized blocks dropped (block purging) instead of windowed.

        For wide keys (any shared word): a word shared by more than
        ``max_block`` records says little, and the close-year pairs its
        windows would find are already another rule's.
        """
        return replace(self, purge=True)


def blocking_rule(factory: Callable[..., BlockingRule]) -> Callable[..., BlockingRule]:
    """Mark a module-level rule factory so its rules can be pickled to workers and saved with a plan."""

    @functools.wraps(factory)
    def make(*args, **kwargs) -> BlockingRule:
        rule = factory(*args, **kwargs)
        return replace(rule, spec=(factory.__module__, factory.__qualname__, args, kwargs))

    return make


def _rebuild(
    spec: tuple, types: frozenset[str] | None, top_k: int | None, purge: bool, max_block: int | None = None,
    spread_undated: bool = False,
) -> BlockingRule:
    module, name, args, kwargs = spec
    rule = getattr(importlib.import_module(module), name)(*args, **kwargs)
    return replace(rule, types=types, top_k=top_k, purge=purge, max_block=max_block, spread_undated=spread_undated)


def _explode(column: str | pl.Expr) -> KeyFn:
    """Keys from a list column or expression: one (rid, key) row per element."""
    expr = pl.col(column) if isinstance(column, str) else column
    return lambda lf: lf.select("rid", expr.alias("key")).explode("key")


def _single(expr: pl.Expr) -> KeyFn:
    """Keys from a scalar expression: at most one key per record."""
    return lambda lf: lf.select("rid", expr.alias("key"))


@blocking_rule
def title_exact() -> BlockingRule:
    """Identical normalised title or alias: 'Rocky IV' = 'Rocky 4'."""
    return BlockingRule("title_exact", _explode("titles"), name_given=True)


@blocking_rule
def title_tokens() -> BlockingRule:
    """Any shared title token (stopwords dropped). Wide; rely on windows and top-k."""
    return BlockingRule("title_tokens", _explode(content_tokens(pl.col("titles").list.join(" "))))


@blocking_rule
def title_prefix(n: int = 6) -> BlockingRule:
    """First ``n`` characters of a normalised title or alias, spaces removed."""
    prefix = pl.col("titles").list.eval(pl.element().str.replace_all(" ", "").str.slice(0, n))
    return BlockingRule(f"title_prefix({n})", _explode(prefix))


def _year_bands(lf: pl.LazyFrame, value: str, width: int) -> pl.LazyFrame:
    """Two offset bands per year, so any two years less than ``width`` apart share one."""
    year = pl.col("year")
    band_a = pl.format("a{}|{}", year // width, pl.col(value))
    band_b = pl.format("b{}|{}", (year + width // 2) // width, pl.col(value))
    return lf.filter(year.is_not_null()).select("rid", pl.concat_list(band_a, band_b).alias("key"))


@blocking_rule
def title_year_band(width: int = 2) -> BlockingRule:
    """Normalised title (or alias) and release year within about ``width // 2`` years."""

    def keys(lf: pl.LazyFrame) -> pl.LazyFrame:
        exploded = lf.select("rid", "year", pl.col("titles").alias("value")).explode("value")
        return _year_bands(exploded.drop_nulls("value"), "value", width).explode("key")

    return BlockingRule(f"title_year_band({width})", keys)


@blocking_rule
def token_year_band(width: int = 2) -> BlockingRule:
    """Any shared title token and a close year: catches reworded and translated titles."""

    def keys(lf: pl.LazyFrame) -> pl.LazyFrame:
        tokens = content_tokens(pl.col("titles").list.join(" ")).alias("value")
        exploded = lf.select("rid", "year", tokens).explode("value").drop_nulls("value")
        return _year_bands(exploded, "value", width).explode("key")

    return BlockingRule(f"token_year_band({width})", keys)


@blocking_rule
def person_name_key() -> BlockingRule:
    """Same name tokens in any order, over name and aliases: 'Craig, Daniel' = 'Daniel Craig'."""
    key = pl.col("titles").list.eval(person_key(pl.element()))
    return BlockingRule("person_name_key", _explode(key), PERSON_TYPES, name_given=True)


@blocking_rule
def person_last_initial() -> BlockingRule:
    """Last name token plus first initial: 'Dan Craig' = 'Daniel Craig'."""
    name = pl.col("name_norm").str.split(" ")
    key = pl.when(name.list.len() > 1).then(name.list.last() + " " + name.list.first().str.slice(0, 1))
    return BlockingRule("person_last_initial", _single(key), PERSON_TYPES)


@blocking_rule
def person_compact() -> BlockingRule:
    """Name or alias with its spaces removed: 'CarlB rikuelli' = 'Carl Brikuelli' (a typo moved the space)."""
    key = pl.col("titles").list.eval(pl.element().str.replace_all(" ", "", literal=True))
    return BlockingRule("person_compact", _explode(key), PERSON_TYPES)


@blocking_rule
def person_skeleton(min_chars: int = 4) -> BlockingRule:
    """The name's consonants in order, vowels and spaces dropped: 'Aiko Nkaman' = 'Aiko Nekaman', 'Sofia nAhaov'
    = 'Sofia Anhaov', 'PabloaPeyao' = 'Pablo Peyao'.

    One key per record for the typos that touch a vowel or the space (about
    half of those in a surname), where the pair would otherwise share only a
    first name: a block of thousands that windows and top-k cut down to the
    closest years. ``person_one_typo`` finds every single-character typo for
    13x the keys. Not a default: it also keys look-alike people together
    ('Luca Laosier' / 'Lucia Laosier'); add it where sources are clean
    (one-to-one clustering keeps the look-alikes apart) or small.
    """
    key = pl.col("name_norm").str.replace_all("[aeiouy ]", "")
    return BlockingRule("person_skeleton", _single(pl.when(key.str.len_chars() >= min_chars).then(key)), PERSON_TYPES)


@blocking_rule
def person_one_typo(min_chars: int = 6) -> BlockingRule:
    """The name with its spaces removed, and every form of it with one character deleted: names one typo apart
    share a key ('Eva Guisberg' / 'Eva Guisbeog', 'Aiko Nkaman' / 'Aiko Nekaman').

    A character added, dropped, replaced or swapped with its neighbour leaves
    two strings one deletion each from a common one (SymSpell's symmetric
    deletes), so a typo in the surname needs no shared token. Names shorter
    than ``min_chars`` (spaces removed) make no keys: their deletions are too
    common to block on. Not a default: a name of 12 letters makes 13 keys, and
    each record travels to the partitions of all its blocks (see
    ``default_rules`` for what it costs and gains).
    """

    def keys(lf: pl.LazyFrame) -> pl.LazyFrame:
        compact = pl.col("name_norm").str.replace_all(" ", "", literal=True).alias("c")
        names = lf.select("rid", compact).filter(pl.col("c").str.len_chars() >= min_chars)
        cut = names.with_columns(i=pl.int_ranges(-1, pl.col("c").str.len_chars(), dtype=pl.Int64)).explode("i")
        c, i = pl.col("c"), pl.col("i")
        return cut.select("rid", key=pl.when(i < 0).then(c).otherwise(c.str.slice(0, i) + c.str.slice(i + 1)))

    return BlockingRule("person_one_typo", keys, PERSON_TYPES)


@blocking_rule
def name_anagram(min_chars: int = 4) -> BlockingRule:
    """The letters of the name (title or person) in sorted order, spaces dropped: a swap of two characters or a
    moved space keeps the key ('oCntact' = 'Contact'; 'Hna Birkais' = 'Han Brikais', a swap in each word).

    One key per record for the commonest typo that leaves no shared word
    when the name is a single word ('Fuyr' / 'Fury'), or none that
    ``title_prefix`` sees. Names shorter than ``min_chars`` letters make no
    key.
    """
    def key(letters: pl.Series) -> pl.Series:  # one pass of the space-stripping chain, not one per use
        long = letters.str.len_chars() >= min_chars
        return pl.select(pl.when(long).then(_letter_signature(letters)).cast(pl.String)).to_series()

    letters = pl.col("name_norm").str.replace_all(" ", "", literal=True)
    return BlockingRule("name_anagram", _single(letters.map_batches(key, return_dtype=pl.String)))


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """Each value's splitmix64 finaliser: close values map to unrelated 64-bit numbers, so their sums rarely meet."""
    mixed = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        mixed = (mixed ^ (mixed >> np.uint64(shift))) * np.uint64(factor)
    return mixed ^ (mixed >> np.uint64(31))


_BYTE_MIX = _splitmix64(np.arange(256))  # a look-up per byte: a third of the time of mixing every byte


def _letter_signature(text: pl.Series) -> pl.Series:
    """An order-free signature of each string's letters: the sum of a 64-bit mix (splitmix64) of its bytes.

    The same letters in any order are the same bytes in some order, so the
    same sum; two different sets of letters share a sum by a 2^-64 chance
    (or, beyond ASCII, where their bytes happen to be the same multiset).
    Sorting each name's letters took 0.58 s for the 543k distinct names of a
    million records, this about 0.1 s, with the same blocks.
    """
    data, offsets = _utf8_bytes(text)
    running = np.concatenate((np.zeros(1, np.uint64), np.cumsum(_BYTE_MIX[data], dtype=np.uint64)))  # sums mod 2^64
    sums = pl.Series(text.name, running[offsets[1:]] - running[offsets[:-1]])
    return pl.select(pl.when(text.is_not_null()).then(sums)).to_series()


def _utf8_bytes(text: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The strings' UTF-8 bytes end to end and their n + 1 offsets (a null is empty): Arrow's own buffers, read
    after a cast to ``large_string``, so whichever string type polars exports does not matter."""
    strings = text.rechunk().to_arrow().cast(pa.large_string())
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64)[strings.offset : strings.offset + len(strings) + 1]
    data = strings.buffers()[2]
    return (np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)), offsets


_BIGRAM_MIX = _splitmix64(np.arange(256 * 256 + 2 * 256))  # byte pairs (a * 256 + b), then first and last bytes


def _bigram_sketch(text: pl.Series) -> np.ndarray:
    """Each string as a set of 64 bits: its byte bigrams, first byte and last byte, each hashed to one bit (0 for
    a null or empty string).

    Blocking ranks a record's partners in a block by how alike their names
    are, tens of millions of pairs a run. Dice of two sketches (2 shared bits
    / bits of both) ranks them about as an edit ratio would, from two gathered
    integers and a popcount: a partition of 1M records ranks its 6.6M
    in-block pairs in ~0.5 s where rapidfuzz's Indel ratio took ~1.4 s with
    the lists it reads. The first and last bytes weigh the ends of a name, as
    a padded bigram would.
    """
    data, offsets = _utf8_bytes(text)
    data = data[: offsets[-1]].astype(np.int64)
    sketch = np.zeros(len(offsets) - 1, dtype=np.uint64)
    named = np.flatnonzero(offsets[1:] > offsets[:-1])
    if not len(named):
        return sketch
    starts, ends = offsets[named], offsets[named + 1]
    one, low = np.uint64(1), np.uint64(63)
    bits = np.zeros(len(data), dtype=np.uint64)
    bits[:-1] = one << (_BIGRAM_MIX[data[:-1] * 256 + data[1:]] & low)  # the pair starting at each byte
    bits[ends - 1] = 0  # a string's last byte starts no pair of its own
    ends_of = one << (_BIGRAM_MIX[65536 + data[starts]] & low) | one << (_BIGRAM_MIX[65792 + data[ends - 1]] & low)
    sketch[named] = np.bitwise_or.reduceat(bits, starts) | ends_of
    return sketch


@blocking_rule
def person_tokens(min_chars: int = 3) -> BlockingRule:
    """Any shared name token: survives transliteration and lost characters ('Kato' / 'Katou')."""
    tokens = pl.col("titles").list.join(" ").str.split(" ")
    tokens = tokens.list.eval(pl.element().filter(pl.element().str.len_chars() >= min_chars)).list.unique()
    return BlockingRule("person_tokens", _explode(tokens), PERSON_TYPES)


@blocking_rule
def person_stems(chars: int = 4) -> BlockingRule:
    """Name tokens cut to their first ``chars`` characters, sorted: 'Gummaluri Sastri' = 'Gummuluri Sastry'.

    Transliterations differ mostly in their vowels and endings ('Vijayshanti' /
    'Vijayashanti'), which no whole-token key survives. Not a default (see
    ``default_rules``): add it where sources transliterate names and people
    carry more than a name to tell look-alikes apart.
    """
    stems = pl.col("titles").list.eval(
        pl.element().str.split(" ").list.eval(pl.element().str.slice(0, chars)).list.sort().list.join(" ")
    )
    return BlockingRule(f"person_stems({chars})", _explode(stems), PERSON_TYPES)


@blocking_rule
def year_runtime() -> BlockingRule:
    """Same release year and running time to the minute: a translated title with nothing else in common."""
    key = pl.when(pl.col("runtime_min") > 0).then(pl.format("{}|{}", "year", pl.col("runtime_min").round(0)))
    return BlockingRule("year_runtime", _single(key))


@blocking_rule
def shared_people(column: str) -> BlockingRule:
    """Any shared normalised person in ``column`` (directors, cast, writers)."""
    return BlockingRule(f"shared_people({column})", _explode(f"{column}_norm"))


@blocking_rule
def episode_number() -> BlockingRule:
    """Same parent series title, season and episode number."""
    key = pl.format("{}|{}|{}", "parent_norm", "season", "episode")
    return BlockingRule("episode_number", _single(key), frozenset({"episode"}))


@blocking_rule
def episode_credits() -> BlockingRule:
    """Same director or writer, season and episode number: an episode whose own title and whose series' title
    are both translated ('Doux Pont' of 'Le Jeu Étrange de Havedor' = 'The Sweet Bridge' of 'The Strange Game of
    Havedor', both S7E9 written by the same person).

    ``episode_number`` needs the series' title; a person who made the series
    and the episode's place in it name the same episode without it. One key
    per credited person, in blocks of a few records.
    """

    def keys(lf: pl.LazyFrame) -> pl.LazyFrame:
        credits = [lf.select("rid", "season", "episode", person=column).explode("person")
                   for column in ("directors_norm", "writers_norm")]  # one list may be missing: not concat_list
        credited = pl.concat(credits).drop_nulls()
        return credited.select("rid", key=pl.format("{}|{}|{}", "person", "season", "episode"))

    return BlockingRule("episode_credits", keys, frozenset({"episode"}))


def default_rules() -> list[BlockingRule]:
    """Most specific first: the first shared rule owns a pair and judges its top-k there.

    Wide rules (shared token, prefix, director) keep one partner per record and
    block: on the generated catalogue they cut candidates threefold for a 0.001
    loss of pair completeness. ``title_tokens`` blocks over ``max_block`` are
    purged: half the blocking time, no loss of completeness there or on
    moviegraph (purging ``person_tokens`` would cost 0.008). ``title_prefix``
    uses windows of 30: 28% fewer in-block pairs at 200k records for 0.0003 of
    pair completeness, none on moviegraph (narrower ``person_tokens`` windows
    cost moviegraph's IMDb-TMDb pairs 0.0005). Left out:
    ``title_year_band`` (every pair it finds is already owned by
    ``title_exact``) and ``token_year_band`` (two thirds of all in-block pairs
    at 200k records for 0.0006 of pair completeness, none on moviegraph).
    ``person_compact`` finds people whose name shares no token and no order
    (a moved space): 892 of the 2,096 person pairs blocking missed at 1M.
    Left out: ``person_skeleton`` (a vowel typo in a name) finds 629 of the
    1,191 person pairs still missed at 1M for no measurable time (F1 0.9966
    -> 0.9971), but at 10M its look-alike names cost 0.0056 of F1 with
    connected components (+0.0006 with one-to-one clustering between clean
    sources); ``person_one_typo`` would find 1,067 but makes the partitions'
    unit lists 1.8x as long (docs/matching.md).
    ``name_anagram`` (the sorted letters of the name: two swapped characters
    or a moved space, 'oCntact' / 'Contact', where a one-word title shares
    nothing else) at 1M: recall 0.9933 -> 0.9943, F1 0.9966 -> 0.9971 at no
    measurable time (56.4 s against 57.6 s, two A/B runs each); at 10M:
    recall 0.9818 -> 0.9841, F1 0.9907 -> 0.9919, with connected components
    0.9883 -> 0.9896, precision unchanged, 2% more candidates.
    ``episode_credits`` (a director or writer with the season and episode
    number, for an episode whose title and series title are both
    translated): 10M recall 0.9879 -> 0.9881, F1 with connected components
    0.9915 -> 0.9924, 0.09% more candidates.
    ``year_runtime`` (translated titles with nothing else in common, in
    blocks of at most 20, where a year and a running time are rare enough to
    mean something) and the alphabetical window order lift moviegraph's
    IMDb-TMDb pair completeness from 0.9897 / 0.9919 / 0.9906 to 0.9928 /
    0.9919 / 0.9938 (seeds 1 / 2 / 7). Left out: ``person_stems``
    (transliterated names): +0.002 there, but among a million generated
    records its look-alike names doubled the false accepts (563 -> 1,301)
    and, at ten million, cost 0.018 of precision; with a model trained on
    100k entities and one-to-one clustering it gains 0.0002 of F1 there for
    12% more wall time.
    """
    return [
        title_exact().only(NAMED_TYPES),
        episode_number(),
        episode_credits(),
        person_name_key(),
        person_compact(),
        person_last_initial(),
        title_prefix(6).only(NAMED_TYPES).keep(1).window(30),
        name_anagram().keep(1),
        shared_people("directors").only(WORK_TYPES).keep(1),
        title_tokens().only(WORK_TYPES).keep(1).purged(),
        person_tokens().keep(1),
        year_runtime().only(WORK_TYPES).keep(1).window(20).purged(),
    ]


DEFAULT_GROUPS: dict[str, str] = {}
"""Type -> compatibility group; types not listed are their own group (movie pairs only with movie).
Map e.g. ``{"movie": "work", "series": "work"}`` where sources disagree on what a title is."""


@dataclass(frozen=True)
class PartitionPlan:
    """Which unit goes to which partition, and how oversized blocks are windowed.

    Small enough to ship to every worker: one row per heavy unit and one per
    window boundary, never one per record. Unit ids come from polars' hash,
    stable for a fixed seed within one polars version; run the plan and its
    partitions on the same version.
    """

    rules: tuple[BlockingRule, ...]
    n_partitions: int
    heavy: pl.DataFrame  # unit (u64) -> partition (i32), assigned by estimated cost
    windows: pl.DataFrame  # key (u64), bound (u64 sort key), bucket (i32), n_buckets (i32)
    costs: np.ndarray  # estimated pairs to enumerate, per partition
    top_k: int = 3
    within_source: bool = False
    groups: dict[str, str] = field(default_factory=dict)
    purged: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema={"key": pl.UInt64}))  # dropped blocks


def prepare_for_groups(records: pa.Table | pl.DataFrame, groups: dict[str, str]) -> pl.DataFrame:
    """Records normalised for blocking before there is a plan (then ``plan_partitions(prepared=...)``)."""
    return blocking_columns(records, groups).with_columns(sort_key())


def blocking_columns(records: pa.Table | pl.DataFrame, groups: dict[str, str]) -> pl.DataFrame:
    """``prepare_for_groups`` without the sort key, which needs all records at once: for a slice of them."""
    prep = prepare(conform_frame(records, RECORDS))
    group = pl.col("type").replace(groups) if groups else pl.col("type")
    return prep.with_columns(
        group=group,
        **{sig: pl.col(names).list.eval(pl.element().hash(_SEED)).list.min() for sig, names in _MAKERS.items()},
    )


def sort_key() -> pl.Expr:
    """Neighbourhood order inside an oversized block: year, then title in alphabetical order, then who made it.

    Alphabetical, not hashed: a typo past the first letters ('Secret Kingdom
    in Nenejo' / 'in eNnejo') keeps a title beside its original in a big
    'secret' prefix block of one year (at 1M generated records pair
    completeness 0.9894 -> 0.9911, with 3% fewer candidates, measured with
    ``person_stems`` among the rules).

    A record without a year takes the year of a dated record with its title
    and its first director (or first cast member, or first writer), most
    likely its own entity in another source; sorted first, as year 0, it
    would sit in the oldest window, far from its partner. The writer places
    records that name neither director nor cast: of the 924 true pairs among
    1M generated records that shared a ``title_exact`` block but no window of
    it, 663 share one with it. Needs ``year``, ``name_norm``, ``director_sig``,
    ``cast_sig``, ``writer_sig``, ``source``, ``source_id`` of all records at
    once (a partner is often in another chunk of a large catalogue).

    Records of one title and year are ordered by their writers, else cast,
    else directors (the record itself when it names none), so a common
    title's namesakes of one year line up entity by entity, not at random:
    at 10M, 11,749 true pairs with the same title and year shared no window
    of their ``title_exact`` block, and every one had the same writers on
    both sides (6,702 the same cast, 76 the same directors: a source often
    leaves the directors out).
    """
    made_by = lambda sig: pl.when(pl.col(sig).is_not_null()).then(  # noqa: E731
        pl.col("year").max().over("name_norm", sig)
    )
    year = pl.coalesce("year", *(made_by(sig) for sig in MAKER_SIGS))
    sort_year = year.fill_null(0).clip(0, 65535).cast(pl.UInt64)
    return (
        sort_year * 2**48
        + pl.col("name_norm").rank("dense").fill_null(0).cast(pl.UInt64) * 2**16
        + pl.coalesce("writer_sig", "cast_sig", "director_sig", pl.struct("source", "source_id").hash(_SEED)) % 2**16
    ).alias("sort_key")


def record_keys(prep: pl.DataFrame, rules: Sequence[BlockingRule]) -> pl.DataFrame:
    """(rid, prio, key) for every rule; key is a u64 hash of the record's type group, the rule's priority and the
    value.

    The hash is of a struct (the group's own hash, priority, value), not of
    the three joined into one string; each record's group is gathered by rid,
    not joined; repeats are dropped rule by rule, as no two rules share a
    priority. At 1M records: 1.21 s against 1.58 s.
    """
    if len(rules) > _MAX_RULES:
        raise ValueError(f"at most {_MAX_RULES} blocking rules")
    lf = prep.lazy()
    group = _by_rid(prep["rid"], prep["group"].hash(_SEED))
    parts = []
    for prio, rule in enumerate(rules):
        scoped = lf if rule.types is None else lf.filter(pl.col("type").is_in(list(rule.types)))
        keys = rule.keys(scoped).filter(pl.col("key").str.len_chars() > 0)
        priority = pl.lit(prio, pl.UInt8)
        hashed = pl.struct(group, priority, "key").hash(_SEED)
        parts.append(keys.select("rid", priority.alias("prio"), key=hashed).unique())
    empty = pl.LazyFrame(schema={"rid": pl.UInt32, "prio": pl.UInt8, "key": pl.UInt64})
    return pl.concat([empty, *parts]).collect()


def _by_rid(rid: pl.Series, values: pl.Series) -> pl.Expr:
    """``values`` of the records numbered ``rid``, looked up by the ``rid`` column of any frame of these records:
    a gather, not a join.

    A plan chunk numbers its records from its first one's rid, in order (``matching.normalize.prepare``), so a
    rid less the first is a row; other numberings are placed by rid first.
    """
    low = int(rid.min() or 0)
    if not rid.equals(pl.int_range(low, low + len(rid), dtype=rid.dtype, eager=True), check_names=False):
        values = pl.repeat(None, int(rid.max()) - low + 1, dtype=values.dtype, eager=True).scatter(rid - low, values)
    return pl.lit(values).gather(pl.col("rid") - low).alias(values.name)


def unit_rule(unit: pl.Expr, plan: PartitionPlan) -> pl.Expr:
    """The name of the rule a unit id belongs to (its high bits are the rule's priority)."""
    names = {prio: rule.name for prio, rule in enumerate(plan.rules)}
    return (unit // _PRIO).replace_strict(names, return_dtype=pl.String)


def _unit_id(prio: pl.Expr, hashed: pl.Expr) -> pl.Expr:
    return prio.cast(pl.UInt64) * _PRIO + hashed // 256


def record_units(prep: pl.DataFrame, plan: PartitionPlan, *, keys: pl.DataFrame | None = None) -> pl.DataFrame:
    """(rid, unit, partition): a record's blocks, with oversized ones replaced by windows (or purged).

    ``keys``: ``record_keys(prep, plan.rules)`` when the caller has them already.
    One lazy query on the streaming engine: at 10M records 9.3 s where the
    eager steps took 13.0 s and 1.8 GiB more (1M: 0.74 s against 1.03 s).
    """
    keys = keys if keys is not None else record_keys(prep, plan.rules)
    kept = keys.lazy().join(plan.purged.lazy(), on="key", how="anti")
    windowed_keys = plan.windows.select("key").unique().lazy()
    plain = kept.join(windowed_keys, on="key", how="anti").select("rid", unit=_unit_id(pl.col("prio"), pl.col("key")))
    windowed = (
        kept.join(windowed_keys, on="key", how="semi")
        .with_columns(_by_rid(prep["rid"], prep["sort_key"]), _by_rid(prep["rid"], prep["year"]))
        .sort("sort_key")
        .join_asof(
            plan.windows.lazy().sort("bound"), left_on="sort_key", right_on="bound", by="key", check_sortedness=False
        )
        .with_columns(w=_windows_of(plan.rules))
        .explode("w")
        .filter(pl.col("w").is_between(0, pl.col("n_buckets") - 2))
        .select("rid", unit=_unit_id(pl.col("prio"), pl.struct("key", "w").hash(_SEED)))
    )
    units = pl.concat([plain, windowed])
    anchors = units.group_by("unit").agg(anchor=pl.col("rid").min())
    light = _light_partition(pl.col("anchor"), plan.n_partitions)
    return (
        units.join(anchors, on="unit")
        .join(plan.heavy.lazy(), on="unit", how="left")
        .select("rid", "unit", partition=pl.col("partition").fill_null(light))
        .collect(engine="streaming")
    )


def _light_partition(anchor: pl.Expr, n_partitions: int) -> pl.Expr:
    """A light unit's partition: where its smallest member rid (``anchor``) hashes.

    One entity's blocks (its exact title, its anagram, its makers' names)
    mostly share their smallest member, so they land in one partition and
    the entity's records are written to fewer partitions' inputs: at 1M
    generated records a record sat in 4.3 of 8 partitions when units went
    where their own id hashed, 3.2 this way.
    """
    return (anchor.hash(_SEED) % n_partitions).cast(pl.Int32)


def pairing_units(units: pl.DataFrame, prep: pl.DataFrame, within_source: bool) -> pl.DataFrame:
    """The units that can yield a pair: two or more records (from two or more sources, across sources only).

    Most title and name keys are held by one record; a pair's owner is a unit
    both records share, so dropping the others changes no pair and keeps
    records that pair with no one out of every partition's inputs. A unit
    spans two sources where its smallest and largest source differ: a
    group-by and a semi-join on the streaming engine, 2.5 s at 10M records
    where a window's distinct count took 5.2 s (rows in any order).
    """
    if within_source:
        can_pair = units.lazy().group_by("unit").len().filter(pl.col("len") > 1)
    else:
        spans = units.lazy().with_columns(_by_rid(prep["rid"], prep["src"]))
        spans = spans.group_by("unit").agg(lo=pl.min("src"), hi=pl.max("src"))
        can_pair = spans.filter(pl.col("lo") != pl.col("hi"))
    return units.lazy().join(can_pair.select("unit"), on="unit", how="semi").collect(engine="streaming")


def partition_members(units: pl.DataFrame, n_partitions: int) -> Iterator[tuple[int, np.ndarray, pl.DataFrame]]:
    """Per partition: its member rids (sorted) and every unit of those members, rids renumbered 0..m-1.

    A member's units outside the partition come along because ownership (the
    smallest unit two records share) is decided on all of them; with them, a
    partition's records and units are all a task needs.
    """
    units = units.sort("rid", "unit")  # the same files whatever order the units came in
    rids = units["rid"].to_numpy()
    by_rid = np.searchsorted(rids, np.arange(int(rids[-1]) + 2 if len(rids) else 1))
    by_partition = np.argsort(units["partition"].to_numpy(), kind="stable")  # rids stay sorted within a partition
    bounds = np.searchsorted(units["partition"].to_numpy()[by_partition], np.arange(n_partitions + 1))
    for partition in range(n_partitions):
        mine = rids[by_partition[bounds[partition] : bounds[partition + 1]]]
        members = mine[np.concatenate(([True], mine[1:] != mine[:-1]))] if len(mine) else mine
        starts, lengths = by_rid[members], by_rid[members + 1] - by_rid[members]
        ends = np.cumsum(lengths)
        rows = np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - lengths - starts, lengths)
        local = np.repeat(np.arange(len(members), dtype=np.uint32), lengths)
        yield partition, members, units[rows].with_columns(rid=pl.Series(local))


def _windows_of(rules: Sequence[BlockingRule]) -> pl.Expr:
    """The windows a member of an oversized block joins (from its ``bucket``, ``n_buckets``, ``prio``, ``year``).

    A record in bucket b belongs to windows b-1 and b (window w spans buckets
    w and w+1); an undated record of an ``undated_everywhere`` rule to all.
    """
    spread = [prio for prio, rule in enumerate(rules) if rule.spread_undated]
    near = pl.concat_list(pl.col("bucket") - 1, pl.col("bucket"))
    every = pl.int_ranges(0, pl.col("n_buckets") - 1, dtype=pl.Int32)
    return pl.when(pl.col("year").is_null() & pl.col("prio").is_in(spread)).then(every).otherwise(near)


def _per_source() -> list[pl.Expr]:
    """A block's records from one source: how many (``c``), and the smallest rid (``anchor``)."""
    return [pl.len().alias("c"), pl.min("rid").alias("anchor")]


def _block_sizes() -> list[pl.Expr]:
    """From ``_per_source`` rows: records ``n``, the sum of their per-source counts squared ``sq``, ``anchor``."""
    count = pl.col("c").cast(pl.Float64)
    return [count.sum().alias("n"), (count**2).sum().alias("sq"), pl.min("anchor")]


def _pair_cost(n: pl.Expr, sq: pl.Expr, within_source: bool) -> pl.Expr:
    """Pairs a block enumerates: all pairs, or only those across sources (sq = sum of n_s^2)."""
    return ((n * n - n) / 2) if within_source else ((n * n - sq) / 2)


def plan_partitions(
    records: pa.Table | pl.DataFrame,
    rules: Sequence[BlockingRule] | None = None,
    n_partitions: int = 8,
    *,
    max_block: int = 100,
    top_k: int = 3,
    within_source: bool = False,
    groups: dict[str, str] | None = None,
    prepared: pl.DataFrame | None = None,
    keys: pl.DataFrame | None = None,
) -> PartitionPlan:
    """Plan units and their partitions from key counts (one cheap pass over all records).

    ``prepared`` (``prepare_for`` with the same ``groups``) and ``keys``
    (``record_keys`` of it with the same rules) skip recomputing what the
    caller already holds.

    Skew guard: a block with more than ``max_block`` records is cut, in
    (year, title) order, into buckets of ``max_block // 2`` and paired only
    within windows of two adjacent buckets (sorted neighbourhood), so no unit
    enumerates more than ~``max_block^2 / 2`` pairs; an oversized block of a
    rule marked ``purged()`` is dropped instead. Balance: units costing more
    than 1/8 of a partition's fair share are placed largest first on the least
    loaded partition; the many small ones are spread by hash.
    """
    rules = tuple(rules or default_rules())
    groups = dict(groups or DEFAULT_GROUPS)
    prep = prepared if prepared is not None else prepare_for_groups(records, groups)
    keys = keys if keys is not None else record_keys(prep, rules)
    limits = {prio: rule.max_block or max_block for prio, rule in enumerate(rules)}
    limit = pl.col("prio").replace_strict(limits, return_dtype=pl.Int64)
    src = _by_rid(prep["rid"], prep["src"])
    # the streaming engine: at 10M records (86M keys) 3.4 s and 3 GiB for the per-source counts, where the eager
    # group-by took 8.4 s and 7.5 GiB
    per_source = keys.lazy().with_columns(src).group_by("prio", "key", "src").agg(*_per_source())
    blocks = per_source.group_by("prio", "key").agg(*_block_sizes()).collect(engine="streaming")
    purging = [prio for prio, rule in enumerate(rules) if rule.purge]
    oversized = blocks.filter(pl.col("n") > limit)
    purged = oversized.filter(pl.col("prio").is_in(purging)).select("key")
    blocks = blocks.join(purged, on="key", how="anti")
    big = oversized.join(purged, on="key", how="anti").select("key")
    members = (
        keys.join(big, on="key", how="semi")  # no purged key is big: the keys need no purging first (a copy of all)
        .with_columns(src, _by_rid(prep["rid"], prep["sort_key"]), _by_rid(prep["rid"], prep["year"]))
        .sort("key", "sort_key", "rid")  # rid breaks ties: the same costs on every run
        .with_columns(pos=pl.int_range(pl.len()).over("key"))
        .with_columns(step=(limit // 2).clip(1, None))
        .with_columns(bucket=(pl.col("pos") // pl.col("step")).cast(pl.Int32))
    )
    windows = (
        members.filter(pl.col("pos") % pl.col("step") == 0)
        .select(
            "key",
            bound=pl.when(pl.col("pos") == 0).then(0).otherwise("sort_key").cast(pl.UInt64),
            bucket="bucket",
        )
        .with_columns(n_buckets=(pl.col("bucket").max() + 1).over("key"))
    )
    window_cost = (
        members.with_columns(n_buckets=(pl.col("bucket").max() + 1).over("key"))
        .lazy()
        .with_columns(w=_windows_of(rules))
        .explode("w")
        .filter(pl.col("w").is_between(0, pl.col("n_buckets") - 2))
        .group_by("prio", "key", "w", "src")
        .agg(*_per_source())
        .group_by("prio", "key", "w")
        .agg(*_block_sizes())
        .select(unit=_unit_id(pl.col("prio"), pl.struct("key", "w").hash(_SEED)), n="n", sq="sq", anchor="anchor")
        .collect(engine="streaming")
    )
    plain_cost = blocks.join(big, on="key", how="anti").select(
        unit=_unit_id(pl.col("prio"), pl.col("key")), n="n", sq="sq", anchor="anchor"
    )
    units = (
        pl.concat([plain_cost, window_cost])
        .select("unit", "anchor", cost=_pair_cost(pl.col("n"), pl.col("sq"), within_source))
        .filter(pl.col("cost") > 0)
    )
    heavy, costs = _balance(units, n_partitions)
    return PartitionPlan(rules, n_partitions, heavy, windows, costs, top_k, within_source, groups, purged)


def _balance(units: pl.DataFrame, n_partitions: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Longest-processing-time placement of heavy units over the hash-spread light load."""
    fair = units["cost"].sum() / n_partitions
    is_heavy = pl.col("cost") > fair / 8
    light = (
        units.filter(~is_heavy)
        .group_by(part=_light_partition(pl.col("anchor"), n_partitions))
        .agg(pl.col("cost").sum())
    )
    costs = np.zeros(n_partitions)
    costs[light["part"].to_numpy()] = light["cost"].to_numpy()
    heavy = units.filter(is_heavy).sort("cost", "unit", descending=True)
    loads = [(float(c), p) for p, c in enumerate(costs)]
    heapq.heapify(loads)
    assigned = []
    for cost in heavy["cost"].to_list():  # at most 8 * n_partitions heavy units by construction
        load, part = heapq.heappop(loads)
        assigned.append(part)
        costs[part] += cost
        heapq.heappush(loads, (load + cost, part))
    table = heavy.select("unit").with_columns(partition=pl.Series(assigned, dtype=pl.Int32))
    return table, costs


def candidate_pairs(
    records: pa.Table | pl.DataFrame | None,
    plan: PartitionPlan,
    partition: int,
    *,
    prepared: pl.DataFrame | None = None,
    units: pl.DataFrame | None = None,
) -> pa.Table:
    """CANDIDATE_PAIRS owned by one partition, computed from records alone.

    ``records``: those the plan was made from (sort keys, which place records
    in the windows of oversized blocks, are ranks over all of them; a task
    elsewhere reads its own inputs written by ``matching.pipeline.plan_run``);
    ``prepared`` (from ``prepare_for(plan, records)``) and ``units`` (from
    ``record_units(prepared, plan)``) skip re-normalising and re-keying when
    one process runs many partitions (``records`` may then be None).
    """
    if prepared is None and records is None:
        raise ValueError("candidate_pairs needs records or prepared")
    prep = prepared if prepared is not None else prepare_for(plan, records)
    units = units if units is not None else record_units(prep, plan)
    return pairs_table(_partition_rows(prep, units, _CheapSide.of(prep), plan, partition), prep, plan, partition)


def candidate_rows(prepared: pl.DataFrame, units: pl.DataFrame, plan: PartitionPlan, partition: int) -> pl.DataFrame:
    """The pairs ``candidate_pairs`` names by key, as rids of ``prepared`` (``rid`` < ``rid_r``, sorted) with the
    unit that owns each; ``pairs_table`` names them.

    A partition task keeps the rids so that features gather each pair's
    records by row (``pair_features(rows=...)``) instead of joining the keys
    back: 0.15 s against 0.35 s for a partition's 344k pairs (1M records).
    """
    return _partition_rows(prepared, units, _CheapSide.of(prepared), plan, partition)


def _partition_rows(
    prep: pl.DataFrame, units: pl.DataFrame, side: _CheapSide, plan: PartitionPlan, partition: int
) -> pl.DataFrame:
    mine = units.filter(pl.col("partition") == partition).select("rid", "unit")
    # a membership's row number names its (unit, rid) in one integer: top-k groups by it, not by two columns
    mine = mine.with_columns(_by_rid(prep["rid"], prep["src"])).with_row_index("member")
    across = not plan.within_source and prep["src"].is_sorted()  # rids follow sources (matching.normalize.prepare)
    k_by_prio = {prio: rule.top_k or plan.top_k for prio, rule in enumerate(plan.rules)}
    name_given = [prio for prio, rule in enumerate(plan.rules) if rule.name_given]
    # top-k is judged per unit, so units can be enumerated a slice at a time: memory stays bounded
    n_slices = int(plan.costs[partition] // _SLICE_PAIRS) + 1
    kept = []
    for piece in range(n_slices):
        sub = mine if n_slices == 1 else mine.filter(pl.col("unit") % n_slices == piece)
        pairs = _pairs_across_sources(sub) if across else _pairs_in_units(sub, plan.within_source)
        given = (pairs["unit"] // _PRIO).is_in(name_given).to_numpy()
        kept.append(_top_k(pairs, side.score(pairs, given), k_by_prio))
    return _owned(pl.concat(kept), units, prep.height).sort("rid", "rid_r")


def _pairs_in_units(members: pl.DataFrame, within_source: bool) -> pl.DataFrame:
    """Every pair of members sharing a unit, once (rid < rid_r), across sources only unless ``within_source``."""
    keep = pl.col("rid") < pl.col("rid_r")
    if not within_source:
        keep &= pl.col("src") != pl.col("src_r")
    return members.join(members, on="unit", suffix="_r").filter(keep)


def _pairs_across_sources(members: pl.DataFrame) -> pl.DataFrame:
    """``_pairs_in_units`` across sources, one join per pair of sources: same-source pairs are never made.

    Where rids are numbered in source order, a lower source means a lower
    rid, so the pairs come out as rid < rid_r. Most in-block pairs are
    same-source or mirrored: the one self-join and its filter took 3x as long.
    """
    by_source = members.partition_by("src", as_dict=True, maintain_order=True)
    sources = sorted(by_source)
    joins = [
        by_source[a].join(by_source[b], on="unit", suffix="_r") for i, a in enumerate(sources) for b in sources[i + 1:]
    ]
    return pl.concat(joins) if joins else members.clear().join(members.clear(), on="unit", suffix="_r")


def prepare_for(plan: PartitionPlan, records: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """Records normalised once, for running several partitions in one process."""
    return prepare_for_groups(records, plan.groups)



@dataclass(frozen=True)
class _CheapSide:
    """Per-record arrays indexed by rid, so scoring millions of in-block pairs needs no joins."""

    sketch: np.ndarray  # u64 bigram sketch of the normalised name (_bigram_sketch)
    name_id: np.ndarray  # u64 hash of the name: identical titles need no sketch
    year: np.ndarray  # float, NaN when unknown
    runtime: np.ndarray  # float minutes, NaN when unknown
    director: np.ndarray  # u64 signature, 0 when none
    cast: np.ndarray
    writer: np.ndarray

    @classmethod
    def of(cls, prep: pl.DataFrame) -> _CheapSide:
        if not prep["rid"].equals(pl.Series("rid", np.arange(prep.height, dtype=np.uint32))):
            raise ValueError("prepared records must be numbered 0..n-1 in order (matching.normalize.prepare)")
        names = prep["name_norm"].fill_null("")
        return cls(
            _bigram_sketch(names),
            names.hash(_SEED).to_numpy(),  # a 64-bit collision is ~1e-8 at a million names; a rank costs 20x
            prep["year"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
            prep["runtime_min"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
            prep["director_sig"].fill_null(0).to_numpy(),
            prep["cast_sig"].fill_null(0).to_numpy(),
            prep["writer_sig"].fill_null(0).to_numpy(),
        )

    def score(self, pairs: pl.DataFrame, name_given: np.ndarray) -> np.ndarray:
        """Name likeness (Dice of the bigram sketches, 1 for the same name), minus 0.03 per year apart (up to 10)
        and 0.01 per minute of running time apart (up to 10), plus 0.2 for the same director, 0.1 same cast,
        0.1 same writer; a missing year or runtime costs nothing.

        The runtime breaks ties that title and year leave: in a block of 1,600
        "Sisters", a record's partner and two others of the same year all score 1.

        Where ``name_given`` (the pair's block is one shared name form) the
        likeness counts as 1: a record that is in the block through its alias
        ('Dore Fenetre', also known as 'Golden Window') would otherwise lose
        its partner to every other record that bears the block's title as its
        name, whatever their years and makers.

        The sketch replaced rapidfuzz's Indel ratio here (1M records, A/B):
        blocking 21.1 -> 13.7 worker-seconds, 1% more pairs, recall 0.99608 ->
        0.99598, F1 0.99801 -> 0.99796; moviegraph's pair completeness the
        same or higher for every source pair and seed.
        """
        left, right = pairs["rid"].to_numpy(), pairs["rid_r"].to_numpy()
        mine, theirs = self.sketch[left], self.sketch[right]
        both = np.bitwise_count(mine).astype(np.float32) + np.bitwise_count(theirs)
        likeness = 2 * np.bitwise_count(mine & theirs) / np.maximum(both, 1)
        likeness[(self.name_id[left] == self.name_id[right]) | name_given] = 1.0
        gap, minutes = _apart(self.year, left, right), _apart(self.runtime, left, right)
        makers = 0.2 * _same(self.director, left, right) + 0.1 * _same(self.cast, left, right)
        makers += 0.1 * _same(self.writer, left, right)
        return likeness - 0.03 * gap - 0.01 * minutes + makers


def _apart(values: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """|left - right| capped at 10, 0 where either is unknown (NaN). Gathers are the cost: each side once."""
    gap = np.abs(values[left] - values[right])
    gap[np.isnan(gap)] = 0.0
    return np.minimum(gap, 10.0, out=gap)


def _same(signature: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Both sides carry the same signature (0 is none)."""
    mine = signature[left]
    return (mine == signature[right]) & (mine != 0)


def _top_k(pairs: pl.DataFrame, score: np.ndarray, k_by_prio: dict[int, int]) -> pl.DataFrame:
    """Keep a pair if it is among the k best of either record, per unit and other source.

    Ties are broken by the partner's rid inside one integer key (score in the
    high bits), so the values within a group are distinct and the ranking is
    the same on every run without sorting millions of pairs first. A group
    (unit, record, other source) is one dense integer, the membership's row
    number and the source, so its best values are numpy's ``maximum.at`` into
    an array: 0.38 s against 1.03 s for polars' window maxima and ranks (6.8M
    in-block pairs of one partition, one thread).
    """
    if pairs.is_empty():
        return pairs.select("rid", "rid_r", "unit")
    quantised = ((np.clip(score, -1.0, 2.0) + 1.0) * 1_000_000).astype(np.int64) * 2**32
    k_of = np.zeros(max(k_by_prio) + 1, dtype=np.int64)
    k_of[list(k_by_prio)] = list(k_by_prio.values())
    k = k_of[pairs["unit"].to_numpy() // _PRIO]
    width = int(max(pairs["src"].max(), pairs["src_r"].max())) + 1  # source codes are small: 1..n_sources
    n_groups = (int(max(pairs["member"].max(), pairs["member_r"].max())) + 1) * width
    keep = np.zeros(pairs.height, dtype=bool)
    for member, other_source, partner in (("member", "src_r", "rid_r"), ("member_r", "src", "rid")):
        group = pairs[member].to_numpy().astype(np.int64) * width + pairs[other_source].to_numpy()
        value = quantised - pairs[partner].to_numpy()
        keep |= value >= _kth_best(group, value, k, n_groups)
    return pairs.filter(pl.Series(keep)).select("rid", "rid_r", "unit")


def _kth_best(group: np.ndarray, value: np.ndarray, k: np.ndarray, n_groups: int) -> np.ndarray:
    """Per row, the k-th largest value of its group (k is the same for a whole group); below any value when
    the group holds fewer than k. Round r takes the best of the values below round r-1's, on the rows that
    want an r-th."""
    lowest = np.iinfo(np.int64).min
    best = np.full(n_groups, lowest)
    np.maximum.at(best, group, value)
    threshold = best[group]
    deeper = np.flatnonzero(k > 1)
    for r in range(2, int(k.max()) + 1):
        rows = deeper[k[deeper] >= r]
        below = np.where(value[rows] < threshold[rows], value[rows], lowest)
        best = np.full(n_groups, lowest)
        np.maximum.at(best, group[rows], below)
        threshold[rows] = best[group[rows]]
    return threshold


def _owned(pairs: pl.DataFrame, units: pl.DataFrame, n_records: int) -> pl.DataFrame:
    """Pairs whose unit is the smallest unit both records share (one owner per pair).

    Each record's unit list is gathered by rid (records are numbered
    0..n-1), not joined: nearly every record of a partition is in some kept
    pair, and a partition's units come sorted by rid, so the lists are one
    pass over them. 0.36 s against 0.79 s for the joins (348k owned pairs).
    """
    members = units.select("rid", "unit")
    members = members.set_sorted("rid") if members["rid"].is_sorted() else members.sort("rid")
    lists = members.group_by("rid", maintain_order=True).agg(units="unit")
    rids = pl.DataFrame({"rid": pl.arange(n_records, dtype=pl.UInt32, eager=True)})
    by_rid = rids.join(lists, on="rid", how="left", maintain_order="left")["units"]
    with_lists = pairs.with_columns(units=by_rid.gather(pairs["rid"]), units_r=by_rid.gather(pairs["rid_r"]))
    owner = pl.col("units").list.set_intersection(pl.col("units_r")).list.min()
    return with_lists.filter(owner == pl.col("unit")).select("rid", "rid_r", "unit")


def pairs_table(rows: pl.DataFrame, prepared: pl.DataFrame, plan: PartitionPlan, partition: int) -> pa.Table:
    """CANDIDATE_PAIRS of ``candidate_rows``: each rid's (source, source_id) gathered, in the rows' order."""
    source, source_id = prepared["source"], prepared["source_id"]
    left, right = rows["rid"], rows["rid_r"]
    out = rows.select(
        left_source=source.gather(left), left_id=source_id.gather(left),
        right_source=source.gather(right), right_id=source_id.gather(right),
        partition=pl.lit(partition, pl.Int32), rule=unit_rule(pl.col("unit"), plan),
    )
    return conform(out.to_arrow(), CANDIDATE_PAIRS)


def all_candidate_pairs(records: pa.Table | pl.DataFrame, plan: PartitionPlan) -> pa.Table:
    """Every partition in turn in this process: for tests, analysis and small data."""
    prep = prepare_for(plan, records)
    units = record_units(prep, plan)
    side = _CheapSide.of(prep)  # built once for all partitions
    parts = [pairs_table(_partition_rows(prep, units, side, plan, p), prep, plan, p) for p in range(plan.n_partitions)]
    return pa.concat_tables(parts)


# 2: partition inputs carry writer_sig, and blocks of a shared name rank partners without the names; a task
# of a format-1 run would miss a column or pair differently from its siblings.
# 3: windows order a title's namesakes of one year by their makers: an older plan's bucket bounds cut other keys
# 4: partition inputs are Arrow IPC files (prepared.arrow, units.arrow), not Parquet
# 5: a light unit goes where its smallest member rid hashes, not its own id: an older plan's costs place it elsewhere
# 6: name_anagram's key is a letter signature, not the sorted letters: an older plan's windows name other keys
# 7: keys hash a struct of (group, priority, value), not the joined string: an older plan's windows name other keys
_PLAN_FORMAT = 7


def save_plan(plan: PartitionPlan, path: str | Path) -> Path:
    """Write a plan for other machines and later re-runs, stamped with the polars version its hashes need."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(pickle.dumps({"format": _PLAN_FORMAT, "polars": pl.__version__, "plan": plan}))
    tmp.replace(path)
    return path


def load_plan(path: str | Path) -> PartitionPlan:
    """Read a saved plan; refuses one made with another polars version (unit ids would not agree)."""
    from kg.errors import KGError

    path = Path(path)
    try:
        doc = pickle.loads(path.read_bytes())
    except FileNotFoundError:
        raise KGError(f"{path}: no such partition plan") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise KGError(f"{path}: not a partition plan ({exc})") from None
    if not isinstance(doc, dict) or "format" not in doc:
        raise KGError(f"{path}: not a partition plan")
    if doc["format"] != _PLAN_FORMAT:
        raise KGError(
            f"{path}: a plan of format {doc['format']}, this toolkit reads format {_PLAN_FORMAT}; re-plan the run"
        )
    if doc["polars"] != pl.__version__:
        raise KGError(
            f"{path}: plan made with polars {doc['polars']}, this is {pl.__version__}; block ids would differ, re-plan"
        )
    return doc["plan"]
