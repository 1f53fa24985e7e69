"""The true catalog: works and people as they really are, before any source sees them.

Entities come in blocks of ten: slots 0-2 are people, 3-7 movies, 8 a series
and 9 an episode of that series. Slots 3-5 carry the block's hard case: a
film and its two numbered sequels, a film and its remake, or unrelated works
that share a common title (the block's series too). One director is credited on a
large share of all movies. Every attribute is drawn by index (``rng``), so a
chunk is generated without the others and a sequel can read its original.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from kg.sample import words
from kg.sample.rng import Draws, key

BLOCK = 10
PERSON_SLOTS = 3
SERIES_SLOT, EPISODE_SLOT = 8, 9
PLAIN, SEQUEL, REMAKE, COMMON = 0, 1, 2, 3
# One period of block cases; blocks walk it with a stride coprime to its length,
# so every 20 consecutive blocks hold each case at least three times.
_CASE_CYCLE = np.array([
    PLAIN, SEQUEL, PLAIN, REMAKE, PLAIN, COMMON, PLAIN, PLAIN, SEQUEL, REMAKE,
    PLAIN, COMMON, PLAIN, SEQUEL, PLAIN, REMAKE, PLAIN, COMMON, PLAIN, PLAIN,
])
PROLIFIC_SHARE = 0.12
MIN_ENTITIES = 50
TYPES = ("movie", "series", "episode", "person")
ENTITY_CASES = ("sequel_base", "sequel", "remake", "common_title", "prolific_person")

_TITLE_RADIX = (len(words.PATTERNS["en"]), len(words.ADJECTIVES), len(words.NOUNS), len(words.SYLLABLES) ** 3)
_TITLE_CAP = int(np.prod(_TITLE_RADIX))
_NAME_CAP = len(words.FIRST_NAMES) * len(words.SYLLABLES) ** 2 * len(words.SURNAME_ENDINGS)
_PERMUTE = 2654435761  # prime, so coprime to both capacities: code = (a*i + b) mod cap is a bijection


@dataclass(frozen=True)
class Chunk:
    """The true entities of one chunk: works (movies, series, episodes) and people."""

    works: pl.DataFrame
    persons: pl.DataFrame


@dataclass(frozen=True)
class Pools:
    """People by main profession: person p directs if p % 10 == 0, writes if 1, acts otherwise."""

    persons: int

    @property
    def directors(self) -> int:
        return (self.persons + 9) // 10

    @property
    def writers(self) -> int:
        return (self.persons + 8) // 10

    @property
    def actors(self) -> int:
        return self.persons // 10 * 8 + max(0, self.persons % 10 - 2)

    @staticmethod
    def director(k: np.ndarray) -> np.ndarray:
        return 10 * k

    @staticmethod
    def writer(k: np.ndarray) -> np.ndarray:
        return 10 * k + 1

    @staticmethod
    def actor(k: np.ndarray) -> np.ndarray:
        return k // 8 * 10 + 2 + k % 8


def person_count(n_entities: int) -> int:
    return n_entities // BLOCK * PERSON_SLOTS + min(n_entities % BLOCK, PERSON_SLOTS)


def person_entity(p: np.ndarray) -> np.ndarray:
    """Entity index of person number p."""
    return p // PERSON_SLOTS * BLOCK + p % PERSON_SLOTS


def work_number(i: np.ndarray) -> np.ndarray:
    return i // BLOCK * (BLOCK - PERSON_SLOTS) + i % BLOCK - PERSON_SLOTS


def entity_ids(i: np.ndarray) -> pl.Series:
    return pl.Series("entity_id", i).cast(pl.String).str.pad_start(9, "0").str.replace(r"^", "E")


def _gather(values: tuple[str, ...], idx: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(pl.Series(idx, dtype=pl.Int64))


def _eval(expr: pl.Expr) -> pl.Series:
    return pl.select(expr).to_series()


def _fill(template: str, parts: dict[str, pl.Expr]) -> pl.Expr:
    """A ``{a} {n} of {p}`` template as one string expression."""
    pieces = [pl.lit(s) if k % 2 == 0 else parts[s] for k, s in enumerate(re.split(r"\{(\w)\}", template)) if s]
    return pl.concat_str(pieces)


def _digits(code: np.ndarray, radix: tuple[int, ...]) -> list[np.ndarray]:
    out = []
    for r in radix:
        out.append(code % r)
        code = code // r
    return out


def _place(idx: np.ndarray) -> pl.Series:
    """An invented place name, one of 32**3, from three syllables."""
    s0, s1, s2 = _digits(idx, (32, 32, 32))
    syl = words.SYLLABLES
    return _eval(pl.concat_str([_gather(syl, s0), _gather(syl, s1), _gather(syl, s2)]).str.to_titlecase())


def person_names(seed: int, p: np.ndarray) -> tuple[pl.Series, pl.Series]:
    """(first, surname) of person numbers p: distinct for fewer than ~2M people."""
    code = (_PERMUTE * p + key(seed, "names") % _NAME_CAP) % _NAME_CAP
    first, s0, s1, end = _digits(code, (len(words.FIRST_NAMES), 32, 32, len(words.SURNAME_ENDINGS)))
    surname = _eval(pl.concat_str(
        [_gather(words.SYLLABLES, s0), _gather(words.SYLLABLES, s1), _gather(words.SURNAME_ENDINGS, end)]
    ).str.to_titlecase())
    return _gather(words.FIRST_NAMES, first), surname


def _full_names(seed: int, p: np.ndarray) -> pl.Series:
    first, surname = person_names(seed, p)
    return _eval(pl.concat_str([first, surname], separator=" "))


def block_cases(seed: int, blk: np.ndarray) -> np.ndarray:
    return _CASE_CYCLE[(blk * 7 + key(seed, "case-offset") % len(_CASE_CYCLE)) % len(_CASE_CYCLE)]


def _titles(seed: int, src: np.ndarray, lang: np.ndarray) -> tuple[pl.Series, pl.Series]:
    """(English title, title in ``lang``) of the work numbers ``src``; distinct per work below ~126M."""
    code = (_PERMUTE * src + key(seed, "titles") % _TITLE_CAP) % _TITLE_CAP
    pat, adj, noun, place = _digits(code, _TITLE_RADIX)
    frame = pl.DataFrame({"pat": pat, "lang": lang, "p": _place(place)})
    by_lang = []
    for li, language in enumerate(words.LANGUAGES):
        frame = frame.with_columns(
            _gather(words.ADJ[language], adj).alias(f"a{li}"), _gather(words.NOUN[language], noun).alias(f"n{li}")
        )
        parts = {"a": pl.col(f"a{li}"), "n": pl.col(f"n{li}"), "p": pl.col("p")}
        by_pattern = pl.lit(None, pl.String)
        for pi, template in enumerate(words.PATTERNS[language]):
            by_pattern = pl.when(pl.col("pat") == pi).then(_fill(template, parts)).otherwise(by_pattern)
        by_lang.append(by_pattern.alias(language))
    out = frame.select(by_lang)
    original = pl.lit(None, pl.String)
    for li, language in enumerate(words.LANGUAGES):
        original = pl.when(pl.col("lang") == li).then(pl.col(language)).otherwise(original)
    return out["en"], out.with_columns(lang=lang).select(original)[:, 0]


@dataclass(frozen=True)
class _Core:
    """What a work shares with its relatives: computed for works and for episodes' parent series."""

    slot: np.ndarray
    case: np.ndarray
    country: np.ndarray
    country2: np.ndarray  # -1: no co-production
    lang: np.ndarray
    year: np.ndarray
    end_year: np.ndarray  # -1: none (movie, or series still running)
    genres: list[np.ndarray]  # three genre slots; n_genres says how many count
    n_genres: np.ndarray
    director: np.ndarray  # person numbers
    cast: list[np.ndarray]
    n_cast: np.ndarray
    writers: list[np.ndarray]
    n_writers: np.ndarray
    title: pl.Series
    original: pl.Series
    sequel_no: np.ndarray  # 0: not a numbered sequel


def _director_k(d: Draws, pools: Pools, movie: np.ndarray) -> np.ndarray:
    """Director pool index; 0 is the prolific one, credited on PROLIFIC_SHARE of movies."""
    others = 1 + d.below("director", max(pools.directors - 1, 1))
    return np.where(movie & d.chance("prolific", PROLIFIC_SHARE), 0, np.minimum(others, pools.directors - 1))


def _core(seed: int, i: np.ndarray, pools: Pools) -> _Core:
    blk, slot = i // BLOCK, i % BLOCK
    case = block_cases(seed, blk)
    base = blk * BLOCK + PERSON_SLOTS
    sequel = (case == SEQUEL) & (slot >= 4) & (slot <= 5)
    remake = (case == REMAKE) & (slot == 4)
    common = (case == COMMON) & (((slot >= 3) & (slot <= 5)) | (slot == SERIES_SLOT))
    movie = slot < SERIES_SLOT
    own, src = Draws(seed, i), Draws(seed, np.where(sequel | remake, base, i))
    fam = Draws(seed, np.where(sequel, base, i))  # what a sequel inherits but a remake does not

    country = fam.weighted("country", tuple(c[3] for c in words.COUNTRIES))
    country2 = fam.weighted("country2", tuple(c[3] for c in words.COUNTRIES))
    country2 = np.where(fam.chance("coproduction", 0.1) & (country2 != country), country2, -1)
    lang_of = np.array([words.LANGUAGES.index(c[1]) for c in words.COUNTRIES])
    lang = lang_of[country]

    old = (case == REMAKE) & ((slot == 3) | (slot == 4))
    y = src.uniform("year")
    year = np.where(old, 1950 + (y * 35).astype(np.int64), 1950 + (np.sqrt(y) * 66).astype(np.int64))
    sequel_no = np.where(sequel, slot - 2, 0)
    year = year + np.where(sequel, 3 * (sequel_no - 1) + own.below("sequel-gap", 2), 0)
    year = year + np.where(remake, 20 + own.below("remake-gap", 18), 0)
    series_start = 1960 + (np.sqrt(own.uniform("year")) * 60).astype(np.int64)
    year = np.where(movie, year, series_start)
    ends = ~movie & ~own.chance("running", 0.35)
    end_year = np.where(ends, np.minimum(year + 1 + own.below("span", 10), 2024), -1)

    g0 = fam.below("genre0", len(words.GENRES))
    genres = [g0, (g0 + 1 + fam.below("genre1", 5)) % 12, (g0 + 6 + fam.below("genre2", 6)) % 12]
    n_genres = 1 + fam.below("n_genres", 3)

    director = Pools.director(np.where(sequel, _director_k(src, pools, movie), _director_k(own, pools, movie)))
    if pools.directors > 1:  # a remake never keeps the original's director
        clash = remake & (director == Pools.director(_director_k(src, pools, movie)))
        director = np.where(clash, Pools.director((director // 10) % (pools.directors - 1) + 1), director)
    cast = [Pools.actor((fam if s < 2 else own).below(f"cast{s}", pools.actors)) for s in range(4)]
    n_cast = 2 + own.below("n_cast", 3)
    writers = [Pools.writer(fam.below("writer0", pools.writers)), Pools.writer(own.below("writer1", pools.writers))]
    n_writers = 1 + own.chance("cowriter", 0.3)

    title, original = _titles(seed, work_number(np.where(sequel | remake, base, i)), lang)
    shared = _gather(words.COMMON_TITLES, Draws(seed, blk).below("common", len(words.COMMON_TITLES)))
    shared = _eval(pl.when(pl.Series(slot == 4)).then(shared + "!").otherwise(shared))
    is_common = pl.Series(common)
    title = _eval(pl.when(is_common).then(shared).otherwise(title))
    original = _eval(pl.when(is_common).then(shared).otherwise(original))
    return _Core(
        slot, case, country, country2, lang, year, end_year, genres, n_genres, director, cast, n_cast,
        writers, n_writers, title, original, sequel_no,
    )


def _lists(items: list[pl.Series], count: np.ndarray) -> pl.Series:
    """Per row, the first ``count`` of the parallel ``items`` columns, as a list."""
    return _eval(pl.concat_list(items).list.head(pl.lit(pl.Series(count))))


def tags(flags: dict[str, np.ndarray | pl.Expr]) -> pl.Expr:
    """Per row, the names whose flag is true, in the dict's order (``cases``, ``professions``)."""
    items = [
        pl.when(pl.lit(pl.Series(f)) if isinstance(f, np.ndarray) else f).then(pl.lit(name))
        for name, f in flags.items()
    ]
    return pl.concat_list(items).list.drop_nulls()


def _choose(mask: np.ndarray, yes: pl.Series | pl.Expr, no: pl.Series | pl.Expr | None = None) -> pl.Series:
    expr = pl.when(pl.Series(mask)).then(yes)
    return _eval(expr if no is None else expr.otherwise(no))


def _by_index(choice: np.ndarray, options: list[pl.Expr]) -> pl.Series:
    """Per row, ``options[choice]``."""
    out = pl.lit(None, pl.String)
    for k, option in enumerate(options):
        out = pl.when(pl.Series(choice == k)).then(option).otherwise(out)
    return _eval(out)


def _episode_titles(own: Draws, lang: np.ndarray) -> tuple[pl.Series, pl.Series]:
    """(English, original-language) titles of episodes: short, and shared by many episodes."""
    adj, noun = own.below("ep-adj", len(words.ADJECTIVES)), own.below("ep-noun", len(words.NOUNS))
    per_lang = [
        pl.concat_str([_gather(words.ADJ[lg], adj), _gather(words.NOUN[lg], noun)], separator=" ")
        for lg in words.LANGUAGES
    ]
    english = pl.lit("The ") + per_lang[0]
    return _eval(english), _by_index(lang, [english, *per_lang[1:]])


def _plots(own: Draws) -> pl.Series:
    parts = {
        "a": _gather(words.ADJ["en"], own.below("plot-adj", len(words.ADJECTIVES))).str.to_lowercase(),
        "n": _gather(words.NOUN["en"], own.below("plot-noun", len(words.NOUNS))).str.to_lowercase(),
        "p": _place(own.below("plot-place", 32**3)),
    }
    templates = [_fill(t, {k: pl.lit(v) for k, v in parts.items()}) for t in words.PLOTS]
    return _by_index(own.below("plot", len(words.PLOTS)), templates)


_KIND = (
    pl.when(pl.col("type") == "movie").then(pl.lit("film"))
    .when(pl.col("type") == "series").then(pl.lit("television series"))
    .otherwise(pl.concat_str([pl.lit("episode of "), pl.col("parent")]))
)
_WORK_ABSTRACT = pl.concat_str([
    pl.col("title"), pl.lit(" is a "), pl.col("year").cast(pl.String), pl.lit(" "), pl.col("country_adj"),
    pl.lit(" "), pl.col("genres").list.first().str.to_lowercase(), pl.lit(" "), _KIND,
    pl.lit(" directed by "), pl.col("directors").list.first(), pl.lit(", starring "),
    pl.col("cast").list.get(0), pl.lit(" and "), pl.col("cast").list.get(1), pl.lit(". "), pl.col("plot"),
])


def _works(seed: int, i: np.ndarray, pools: Pools) -> pl.DataFrame:
    """True works at entity indices i (slots 3-9)."""
    episode = i % BLOCK == EPISODE_SLOT
    core = _core(seed, i, pools)
    parent = _core(seed, np.where(episode, i - 1, i), pools)  # an episode takes its series' attributes
    own = Draws(seed, i)
    movie = core.slot < SERIES_SLOT

    def pick(of_parent: np.ndarray, of_own: np.ndarray) -> np.ndarray:
        return np.where(episode, of_parent, of_own)

    span = np.where(parent.end_year >= 0, parent.end_year, 2024) - parent.year + 1
    season = 1 + own.below("season", np.clip(span, 1, 10))
    country, country2 = pick(parent.country, core.country), pick(parent.country2, core.country2)
    lang = pick(parent.lang, core.lang)
    ep_title, ep_original = _episode_titles(own, lang)
    codes = tuple(c[0] for c in words.COUNTRIES)
    frame = pl.DataFrame({
        "idx": i,
        "entity_id": entity_ids(i),
        "type": _gather(TYPES, np.where(movie, 0, np.where(episode, 2, 1))),
        "title": _choose(episode, ep_title, core.title),
        "original_title": _choose(episode, ep_original, core.original),
        "sequel_no": _choose(core.sequel_no > 0, pl.Series(core.sequel_no, dtype=pl.Int32)),
        "language": _gather(words.LANGUAGES, lang),
        "countries": _lists([_gather(codes, country), _gather(codes, np.maximum(country2, 0))],
                            1 + (country2 >= 0)),
        "country_adj": _gather(tuple(c[2] for c in words.COUNTRIES), country),
        "year": pick(np.minimum(parent.year + season - 1, 2024), core.year).astype(np.int32),
        "end_year": _choose(~episode & (core.end_year >= 0), pl.Series(core.end_year, dtype=pl.Int32)),
        "runtime": np.where(movie, 80 + own.below("rt0", 41) + own.below("rt1", 41), 22 + own.below("rt0", 39)),
        "genres": _lists([_gather(words.GENRES, pick(p, c)) for p, c in zip(parent.genres, core.genres, strict=True)],
                         pick(parent.n_genres, core.n_genres)),
        "directors": _lists([_full_names(seed, core.director)], np.ones_like(i)),
        "cast": _lists([_full_names(seed, pick(p, c)) for p, c in zip(parent.cast, core.cast, strict=True)],
                       pick(parent.n_cast, core.n_cast)),
        "writers": _lists([_full_names(seed, w) for w in core.writers], core.n_writers),
        "parent": _choose(episode, parent.title),
        "parent_original": _choose(episode, parent.original),
        "season": _choose(episode, pl.Series(season, dtype=pl.Int32)),
        "episode": _choose(episode, pl.Series(1 + own.below("episode", 12), dtype=pl.Int32)),
        "plot": _plots(own),
        "cases": _eval(tags({
            "sequel_base": (core.case == SEQUEL) & (core.slot == 3),
            "sequel": core.sequel_no > 0,
            "remake": (core.case == REMAKE) & ((core.slot == 3) | (core.slot == 4)),
            "common_title": (core.case == COMMON) & (((core.slot >= 3) & (core.slot <= 5)) | (core.slot == 8)),
            "prolific_person": movie & (core.director == 0),
        })),
    })
    return frame.with_columns(_WORK_ABSTRACT.alias("abstract")).drop("plot", "country_adj")


_PROFESSIONS = ("director", "writer", "actor", "producer")


def _persons(seed: int, i: np.ndarray) -> pl.DataFrame:
    """True people at entity indices i (slots 0-2); person number p's pool follows ``Pools``."""
    p = i // BLOCK * PERSON_SLOTS + i % BLOCK
    own = Draws(seed, i)
    first, surname = person_names(seed, p)
    main = np.where(p % 10 == 0, 0, np.where(p % 10 == 1, 1, 2))
    second = np.where(main == 0, own.chance("also-writes", 0.5), 0) * 1
    producer = own.chance("produces", 0.15)
    birth = 1920 + own.below("born", 65)
    death = birth + 45 + own.below("age", 50)
    dead = (birth < 1965) & own.chance("dead", 0.4) & (death <= 2024)
    country = own.weighted("country", tuple(c[3] for c in words.COUNTRIES))
    frame = pl.DataFrame({
        "idx": i,
        "entity_id": entity_ids(i),
        "type": pl.Series(["person"] * len(i), dtype=pl.String),
        "first": first,
        "surname": surname,
        "name": _eval(pl.concat_str([first, surname], separator=" ")),
        "year": birth.astype(np.int32),
        "end_year": _choose(dead, pl.Series(death, dtype=pl.Int32)),
        "countries": _lists([_gather(tuple(c[0] for c in words.COUNTRIES), country)], np.ones_like(i)),
        "nationality": _gather(tuple(c[2] for c in words.COUNTRIES), country),
        "professions": _eval(tags({
            "director": main == 0, "writer": (main == 1) | (second == 1), "actor": main == 2, "producer": producer,
        })),
        "cases": _eval(tags({"prolific_person": p == 0})),
    })
    life = (pl.when(pl.col("end_year").is_null())
            .then(pl.format("(born {}) is a", pl.col("year")))
            .otherwise(pl.format("({}–{}) was a", pl.col("year"), pl.col("end_year"))))
    abstract = pl.concat_str([
        pl.col("name"), pl.lit(" "), life, pl.when(pl.col("nationality").str.contains("^[AEIOU]")).then(pl.lit("n "))
        .otherwise(pl.lit(" ")), pl.col("nationality"), pl.lit(" "),
        pl.col("professions").list.join(" and "), pl.lit("."),
    ])
    return frame.with_columns(abstract.alias("abstract")).drop("nationality")


def entities(seed: int, n_entities: int, start: int, stop: int) -> Chunk:
    """The true entities with indices in [start, stop) of a catalog of ``n_entities``."""
    if n_entities < MIN_ENTITIES:
        raise ValueError(f"a sample needs at least {MIN_ENTITIES} entities, got {n_entities}")
    i = np.arange(start, min(stop, n_entities), dtype=np.int64)
    person = i % BLOCK < PERSON_SLOTS
    pools = Pools(person_count(n_entities))
    return Chunk(works=_works(seed, i[~person], pools), persons=_persons(seed, i[person]))
