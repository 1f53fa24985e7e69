"""Title and person-name normalisation as polars expressions.

Everything here is an expression, not a Python function over strings, so it
runs inside a query plan on all cores and composes with blocking and feature
code. The transforms are symmetric (both sides of a pair go through the same
steps), so a lossy step such as "Malcolm V" -> "malcolm 5" never hurts a match;
it only has to make true variants ("Rocky IV" / "Rocky 4") collide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

# Roman numerals as standalone tokens. "i" and "x" are left alone: as words they
# are far more often a letter ("I, Robot", "Malcolm X") than a number; "part i"
# is handled by the part/volume rule below.
_ROMAN = {
    "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8", "ix": "9",
    "xi": "11", "xii": "12", "xiii": "13", "xiv": "14", "xv": "15", "xvi": "16", "xvii": "17",
    "xviii": "18", "xix": "19", "xx": "20",
}  # fmt: skip
_PART_WORDS = {"i": "1", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6"}
_PART = r"(?:part|chapter|vol|volume|episode|book)"
# Leading articles dropped from titles ("The Matrix" = "Matrix, The" = "Matrix").
_ARTICLES = r"^(?:the|a|an|le|la|les|der|die|das|el|los|las|il|lo|gli|de|het|den)\s+"
_STOPWORDS = ["the", "a", "an", "of", "and", "in", "on", "to", "for", "de", "la", "le", "der", "die", "das"]
# Sequel numbers above this are years or part of the name ("Blade Runner 2049").
MAX_SEQUEL = 99


def fold(expr: pl.Expr) -> pl.Expr:
    """Lowercase and strip accents (NFKD, drop combining marks): 'Amélie' -> 'amelie'."""
    return expr.str.normalize("NFKD").str.replace_all(r"\p{M}", "").str.to_lowercase()


def fold_text(text: pl.Series) -> pl.Series:
    """``fold`` of long text, decomposing only the values that are not ASCII (for ASCII it is a lowercase).

    Unicode decomposition costs several times a lowercase, and most synopses
    are plain ASCII: at a million records this is 1.5 s against 0.3 s.
    """
    lower = on_all_cores(text, lambda value: value.str.to_lowercase())
    # a character beyond ASCII takes more than one byte: 0.04 s against 0.3 s for a regex at 1M synopses
    wide = (text.str.len_bytes() != text.str.len_chars()).fill_null(False)
    if not wide.any():
        return lower
    return lower.scatter(wide.arg_true(), on_all_cores(text.filter(wide), fold))


def _squash(expr: pl.Expr) -> pl.Expr:
    """Punctuation to spaces, apostrophes dropped ("ocean's" = "oceans"), whitespace collapsed."""
    return (
        expr.str.replace_all(r"['’`´]", "")
        .str.replace_all(r"&", " and ")
        .str.replace_all(r"[^\p{L}\p{N}]+", " ")
        .str.strip_chars()
    )


def _empty_as_null(text: pl.Expr) -> pl.Expr:
    """'' -> null, naming ``text`` once: ``pl.when(text != '').then(text)`` runs the whole chain twice (the
    engines do not share it), half of ``normalize_title``'s time on a million records' titles."""
    return text.replace("", None)


def normalize_title(expr: pl.Expr) -> pl.Expr:
    """Title key for comparison: folded, no punctuation or leading article, numerals as digits.

    'The Godfather: Part II' -> 'godfather 2'; 'Rocky IV' -> 'rocky 4';
    "L'Amour" -> 'amour'. Empty results become null, so missing stays missing.
    """
    text = fold(expr).str.replace(r"^(?:l|d)['’]", "")
    text = _squash(text)
    tokens = text.str.split(" ").list.eval(pl.element().replace(_ROMAN)).list.join(" ")
    text = tokens
    for word, digit in _PART_WORDS.items():
        text = text.str.replace_all(rf"\b{_PART} {word}\b", digit)
    text = text.str.replace_all(rf"\b{_PART} (\d+)\b", "${1}").str.replace(_ARTICLES, "")
    return _empty_as_null(text)


def sequel_number(normalized: pl.Expr) -> pl.Expr:
    """Trailing number of a normalised title, 1..MAX_SEQUEL, else null.

    'rocky 4' -> 4, 'knives out' -> null, 'blade runner 2049' -> null. A missing
    number reads as "first instalment" in the sequel feature, not here.
    """
    number = normalized.str.extract(r"(?:^|\s)(\d{1,3})$", 1).cast(pl.Int32, strict=False)
    return pl.when(number.is_between(1, MAX_SEQUEL)).then(number)


def content_tokens(normalized: pl.Expr, min_chars: int = 2) -> pl.Expr:
    """Distinct content tokens of a normalised title (stopwords and 1-char tokens dropped)."""
    return (
        normalized.str.split(" ")
        .list.eval(
            pl.element().filter((pl.element().str.len_chars() >= min_chars) & ~pl.element().is_in(_STOPWORDS))
        )
        .list.unique(maintain_order=True)
    )


def normalize_person(expr: pl.Expr) -> pl.Expr:
    """Person name in 'first last' order, folded, punctuation dropped.

    'Craig, Daniel' -> 'daniel craig'; 'J.R.R. Tolkien' -> 'j r r tolkien'.
    Only a single comma flips the order, so 'Davis, Jr., Sammy' is left as is.
    """
    flipped = expr.str.strip_chars().str.replace(r"^([^,]+),\s*([^,]+)$", "${2} ${1}")
    text = _squash(fold(flipped))
    return _empty_as_null(text)


def person_key(normalized: pl.Expr) -> pl.Expr:
    """Order-free name key: tokens sorted, so 'daniel craig' and 'craig daniel' agree."""
    return normalized.str.split(" ").list.sort().list.join(" ")


def normalize_people(expr: pl.Expr) -> pl.Expr:
    """A list of person names normalised element-wise, nulls and empties dropped, distinct."""
    return expr.list.eval(normalize_person(pl.element()).drop_nulls()).list.unique(maintain_order=True)


def normalize_term(expr: pl.Expr) -> pl.Expr:
    """A code or label (country, language, genre, profession) folded for set comparison; null when nothing is left."""
    folded = _squash(fold(expr))
    return _empty_as_null(folded)


_ROLES = {
    "actress": "actor", "actors": "actor", "gueststars": "actor", "gueststar": "actor", "cast": "actor",
    "directors": "director", "writers": "writer", "screenplay": "writer", "producers": "producer",
    "executive producer": "producer", "composers": "composer", "music": "composer",
}
"""Credit vocabularies differ by source (TVDb 'guestStars', 'writers'; IMDb 'actress', 'writer')."""


def normalize_role(expr: pl.Expr) -> pl.Expr:
    """A profession or credit job mapped to one role vocabulary, for set comparison."""
    return normalize_term(expr).replace(_ROLES)


PERSON_TYPES: frozenset[str] = frozenset({"person"})


def distinct_values(
    values: Sequence[pl.Series], normalize: Callable[[pl.Expr], pl.Expr]
) -> tuple[pl.Series, pl.Series]:
    """(distinct strings of ``values``, ``normalize`` of each): the regex chain runs once per distinct string.

    A million records name ~120k distinct cast members across ~2M credits;
    normalising the distinct ones and looking the rest up is 3x faster.
    """
    flat = [v.explode() if isinstance(v.dtype, pl.List) else v for v in values]
    distinct = pl.concat([f.cast(pl.String) for f in flat]).drop_nulls().unique()
    return distinct, on_all_cores(distinct, normalize)


def on_all_cores(values: pl.Series, transform: Callable[[pl.Expr], pl.Expr]) -> pl.Series:
    """``transform`` of ``values``, in order: the streaming engine splits a column into morsels for every core,
    where an eager string expression runs on one (titles at 1M records: 1.4 -> 0.8 s on two cores)."""
    frame = pl.LazyFrame({"v": values}).select(transform(pl.col("v")).alias(values.name))
    return frame.collect(engine="streaming").to_series()


def looked_up(column: pl.Series, lookup: tuple[pl.Series, pl.Series], *, distinct: bool = False) -> pl.Series:
    """``column`` (strings, or lists of strings) mapped through ``lookup``; in lists, nulls dropped.

    Lists are mapped inside ``list.eval``: the cast of a million records in
    0.18 s (0.10 s without ``distinct``) where exploding, mapping the flat
    column and grouping it back took 0.25 s (0.22 s). A null list stays null
    (missing is not empty).
    """
    old, new = lookup
    mapped = lambda values: values.replace_strict(old, new, default=None, return_dtype=pl.String)  # noqa: E731
    if not isinstance(column.dtype, pl.List):
        return mapped(column)
    lists = column.list.eval(mapped(pl.element()).drop_nulls())
    return lists.list.unique(maintain_order=True) if distinct else lists


def in_key_order(records: pl.DataFrame) -> bool:
    """Whether rows are sorted by (source, source_id): a caller that sorted them saves ``prepare`` a second sort."""
    source, source_id = pl.col("source"), pl.col("source_id")
    after = (source < source.shift(-1)) | ((source == source.shift(-1)) & (source_id <= source_id.shift(-1)))
    return bool(records.select(after.all()).item())


def prepare(records: pl.DataFrame, person_types: frozenset[str] = PERSON_TYPES) -> pl.DataFrame:
    """RECORDS with normalised columns that blocking and features share, computed once.

    Rows are sorted by (source, source_id) and numbered ``rid``: a pair is kept
    in that order, so any subset of the records (one partition's) orders a pair
    the same way. ``name_norm`` is a title or a person name depending on type;
    ``titles`` holds every normalised form (name and aliases) for alias matching.
    Titles and names are normalised once per distinct string (``distinct_values``).
    """
    if records.select(pl.struct("source", "source_id").is_duplicated().any()).item():
        raise ValueError("records: (source, source_id) is not unique")
    base = records.drop("abstract", "line", strict=False)
    base = (base if in_key_order(base) else base.sort("source", "source_id")).with_row_index("rid")
    person = pl.col("type").is_in(list(person_types))
    people = base.select("name", "aliases").filter(base.select(person).to_series())
    works = base.select("name", "aliases").filter(base.select(~person).to_series())
    titles = distinct_values([works["name"], works["aliases"], base["parent"]], normalize_title)
    names = distinct_values(
        [people["name"], people["aliases"], base["directors"], base["cast"], base["writers"]], normalize_person
    )
    terms = distinct_values([base["countries"], base["languages"], base["genres"]], normalize_term)
    prepared = base.with_columns(
        src=pl.col("source").rank("dense").cast(pl.UInt16),
        is_person=person,
        name_norm=pl.when(person).then(looked_up(base["name"], names)).otherwise(looked_up(base["name"], titles)),
        aliases_norm=pl.when(person)
        .then(looked_up(base["aliases"], names))
        .otherwise(looked_up(base["aliases"], titles)),
        parent_norm=looked_up(base["parent"], titles),
        directors_norm=looked_up(base["directors"], names, distinct=True),
        cast_norm=looked_up(base["cast"], names, distinct=True),
        writers_norm=looked_up(base["writers"], names, distinct=True),
        countries_norm=looked_up(base["countries"], terms, distinct=True),
        languages_norm=looked_up(base["languages"], terms, distinct=True),
        genres_norm=looked_up(base["genres"], terms, distinct=True),
    )
    return prepared.with_columns(
        titles=title_forms(prepared["name_norm"], prepared["aliases_norm"]),
        sequel=pl.when(~pl.col("is_person")).then(sequel_number(pl.col("name_norm"))),
    )


def title_forms(names: pl.Series, aliases: pl.Series) -> pl.Series:
    """Per record, its name then its aliases, nulls and repeats dropped: every form it may be matched under.

    Built from a frame of (row, form) pairs: polars' ``concat_list`` of a
    column and a list column, and ``list.drop_nulls``, took 0.67 s at a
    million records, this 0.23 s.
    """
    row = pl.int_range(pl.len(), dtype=pl.UInt32).alias("row")
    forms = pl.concat([
        pl.DataFrame({"form": names}).select(row, "form"),
        pl.DataFrame({"form": aliases}).select(row, "form").explode("form"),
    ]).drop_nulls().sort("row", maintain_order=True)
    lists = forms.unique(maintain_order=True).group_by("row", maintain_order=True).agg("form")
    every = pl.DataFrame({"row": pl.int_range(len(names), dtype=pl.UInt32, eager=True)})
    found = every.join(lists, on="row", how="left", maintain_order="left")["form"]
    return found.fill_null([]).alias("titles")
