"""Song text as polars expressions: title variants, durations, prices and release dates.

Both stores tokenise like DeepMatcher ("I 'm a Machine ( feat . X ) [ Explicit ]")
but disagree on the details: iTunes writes "18-May-15", Amazon "May 18 , 2015";
Amazon adds "[ Explicit ]" and "( C )"; iTunes lists "Music" as a genre of
everything. Each helper here turns one of those into something comparable,
and returns null, never a made-up value, when the text holds nothing to parse.
"""

from __future__ import annotations

import polars as pl

from matching.normalize import fold

_NESTING = 3  # bracket groups nest ("( Album Version ( Edited ) )"): peel one level per pass

# Tags that say how a store lists a recording, not which recording it is.
_BOILERPLATE = (
    r"(?:feat|ft|featuring|with)\b.*"
    r"|explicit(?: version)?|clean(?: version)?|edited(?: version)?|amended.*"
    r"|(?:\d{4} )?(?:digital(?:ly)? )?remaster(?:ed)?(?: version)?(?: \d{4})?"
    r"|(?:album|single|lp|original) version|bonus track|explicit content"
)
# Words inside a title that do change the recording: a remix is another track than the original.
VERSION_WORDS = (
    "remix", "mix", "live", "acoustic", "instrumental", "radio", "edit", "extended", "demo", "karaoke",
    "club", "dub", "unplugged", "reprise", "interlude", "intro", "outro", "mono", "stereo", "cover", "vip",
)  # fmt: skip
_ALBUM_BOILERPLATE = (
    r"explicit(?: version)?|clean(?: version)?|edited(?: version)?|amended.*|deluxe.*|.*edition"
    r"|(?:\d{4} )?remaster(?:ed)?.*|bonus.*|\+ .*|.*exclusive|.*version"
)
_COPYRIGHT_NOISE = r"\(\s*[cp]\s*\)|[©℗]|\ball rights reserved\b|\bunder exclusive licen[cs]e to\b"
_NOT_GENRES = ["music", "and"]  # iTunes tags everything "Music"; "&" reads as "and"

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_SHORT_DATE = r"\b(\d{1,2}-[A-Za-z]{3}-\d{2})\b"  # iTunes: 18-May-15
_LONG_DATE = rf"(?i)\b((?:{_MONTHS}) \d{{1,2}} , \d{{4}})\b"  # Amazon: May 18 , 2015
_DURATION = r"(?:^|\s)(\d{1,2}:\d{2}(?::\d{2})?)(?:\s|$)"
_PRICE = r"\$\s*(\d+(?:\.\d+)?)"


def squash(expr: pl.Expr) -> pl.Expr:
    """Folded, apostrophes dropped ("I 'm" = "Im"), other punctuation to spaces, spaces collapsed; '' -> null.

    A title made of symbols only (Ed Sheeran's album "+") keeps its symbols rather than becoming missing.
    """
    folded = fold(expr).str.replace_all(r"\s+", " ").str.strip_chars()
    text = (
        folded.str.replace_all(r"\s*['’`´]\s*", "")
        .str.replace_all("&", " and ")
        .str.replace_all(r"[^\p{L}\p{N}$]+", " ")
        .str.strip_chars()
    )
    return pl.coalesce(text.replace("", None), folded.replace("", None))  # each chain once, not twice


def strip_values(expr: pl.Expr) -> pl.Expr:
    """Text without durations, prices and dates: those are compared as numbers, and in Dirty they land in titles."""
    text = expr
    for pattern in (_DURATION, _PRICE, _SHORT_DATE, _LONG_DATE):
        text = text.str.replace_all(pattern, " ")
    return text


def _drop_groups(expr: pl.Expr, inner: str) -> pl.Expr:
    """Remove bracket groups whose whole content matches ``inner`` (any case), innermost first."""
    text = expr
    for _ in range(_NESTING):
        text = text.str.replace_all(rf"(?i)[\(\[]\s*(?:{inner})\s*[\)\]]", " ")
    return text


def strip_boilerplate(expr: pl.Expr) -> pl.Expr:
    """The title as written, minus store boilerplate groups: 'Song ( feat . X ) [ Explicit ]' -> 'Song'."""
    return _drop_groups(expr, _BOILERPLATE).str.replace_all(r"\s+", " ").str.strip_chars()


def song_norm(expr: pl.Expr) -> pl.Expr:
    """Title without store boilerplate: '(feat. X)', '[Explicit]', '(Remastered 2011)', '(Album Version)'.

    Version tags that make another recording ('(Radio Edit)', '(X Remix)', '(Live)') stay.
    """
    return squash(strip_values(_drop_groups(expr, _BOILERPLATE)))


def song_core(expr: pl.Expr) -> pl.Expr:
    """Title with every bracketed group removed: the bare song name."""
    return squash(strip_values(_drop_groups(expr, r"[^\(\)\[\]]*")))


def version_tags(expr: pl.Expr) -> pl.Expr:
    """Sorted distinct version words ('remix', 'live', ...) in a title: empty list when there are none."""
    words = "|".join(VERSION_WORDS)
    return fold(expr).str.extract_all(rf"\b(?:{words})\b").list.unique().list.sort()


def album_norm(expr: pl.Expr) -> pl.Expr:
    """Album title without '[Explicit]', '(Deluxe Version)', ' - EP', ' - Single' and the like."""
    text = _drop_groups(expr, _ALBUM_BOILERPLATE).str.replace(r"(?i)\s+-\s+(?:ep|single)\s*$", "")
    return squash(text)


def copyright_norm(expr: pl.Expr) -> pl.Expr:
    """Copyright line without '( C )', '℗', 'All rights reserved' and licence boilerplate."""
    return squash(fold(expr).str.replace_all(_COPYRIGHT_NOISE, " "))


def first_year(expr: pl.Expr) -> pl.Expr:
    """First plausible year (1900-2099) in a text, as Int32."""
    return expr.str.extract(r"\b((?:19|20)\d{2})\b", 1).cast(pl.Int32, strict=False)


def tokens(expr: pl.Expr) -> pl.Expr:
    """Distinct tokens of a squashed text; an empty list for null."""
    return expr.str.split(" ").list.unique().fill_null([])


def genre_tokens(expr: pl.Expr) -> pl.Expr:
    """Genre words, store vocabulary aside: 'Hip-Hop/Rap , Music' and 'Rap & Hip-Hop' both give {hip, hop, rap}."""
    return tokens(squash(expr)).list.set_difference(pl.lit(_NOT_GENRES))


def seconds(expr: pl.Expr) -> pl.Expr:
    """'3:45' -> 225.0, '1:02:33' -> 3753.0; anything else ('--') -> null. Searches the whole text."""
    parts = expr.str.extract(_DURATION, 1).str.split(":").list.eval(pl.element().cast(pl.Float64))
    hms = parts.list.len() == 3
    value = pl.when(hms).then(parts.list.get(0, null_on_oob=True) * 3600).otherwise(0.0)
    value = value + parts.list.get(-2, null_on_oob=True) * 60 + parts.list.get(-1, null_on_oob=True)
    return pl.when(parts.list.len() >= 2).then(value)


def price(expr: pl.Expr) -> pl.Expr:
    """'$ 1.29' -> 1.29; 'Album Only' and anything without an amount -> null."""
    return expr.str.extract(_PRICE, 1).cast(pl.Float64, strict=False)


def release_date(expr: pl.Expr) -> pl.Expr:
    """First date in either store's format ('18-May-15', 'May 18 , 2015') found in a text."""
    short = expr.str.extract(_SHORT_DATE, 1).str.to_date("%d-%b-%y", strict=False)
    long = expr.str.extract(_LONG_DATE, 1).str.to_date("%B %d , %Y", strict=False)
    return pl.coalesce(short, long)


def release_year(expr: pl.Expr) -> pl.Expr:
    """Year of the release date, or the value itself when it is a bare year ('2003')."""
    bare = expr.str.strip_chars().str.extract(r"^((?:19|20)\d{2})$", 1).cast(pl.Int32, strict=False)
    return pl.coalesce(release_date(expr).dt.year().cast(pl.Int32), bare)


def featured(expr: pl.Expr) -> pl.Expr:
    """Featured artists of a title ('( feat . A , B & C )' -> ['A', 'B', 'C']), as written; empty list if none."""
    inside = expr.str.extract(r"(?i)[\(\[]\s*(?:feat|ft|featuring)\b\s*\.?\s*([^\)\]]*)", 1)
    names = inside.str.replace_all(r"\s+(?:&|,|and)\s+", "\x1f").str.split("\x1f")
    return names.list.eval(pl.element().str.strip_chars().filter(pl.element() != "")).fill_null([])
