"""Word tokens with character offsets, name n-grams and a cheap capitalised-span detector, all columnar.

Many texts are tokenised in one pass: they are joined with a NUL separator,
turned into a numpy array of code points (``utf-32``, so an array index *is*
a Python string offset), and word boundaries are edges of a boolean mask.
Character classes are decided once per distinct code point, not per
character. Token strings come out of the same array by a 2-D gather, so
offsets and strings cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

# Inside a word when between two letters/digits: "Ocean's", "Spider-Man", "J.R.R", "Joon-ho".
_JOINERS = "'’-."
MAX_TOKEN_CHARS = 64  # longer "words" (URLs, base64) are never name parts



def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Lower-case words that may sit inside a capitalised name: "Lord of the Rings", "Ludwig van Beethoven".
# Not "and": "starring A and B" (two names) is far more common in plots than "Romeo and Juliet" (one).
CONNECTORS = _words("of the de da del della di du van von der den la le y on in at for a an")
# Capitalised function words that start sentences, not names.
FUNCTION_WORDS = _words(
    """the a an in on at after before when while as but and or for with from by of to is was are were be it
    its he she his her him they them their there here then this that these those we you i my our your also
    one two during following later since until upon despite meanwhile however although though because if so
    what who whom which where why how not no yes all both each every some many most"""
)


def _classes(cp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alnum, upper, digit) per code point, computed once per distinct code point."""
    uniq, inverse = np.unique(cp, return_inverse=True)
    chars = [chr(c) for c in uniq.tolist()]
    alnum = np.fromiter((c.isalnum() for c in chars), bool, len(chars))[inverse]
    upper = np.fromiter((c.isupper() for c in chars), bool, len(chars))[inverse]
    digit = np.fromiter((c.isdigit() for c in chars), bool, len(chars))[inverse]
    return alnum, upper, digit


def tokenize(texts: Sequence[str], sentences: Sequence[Sequence[tuple[int, int]]] | None = None) -> pl.DataFrame:
    """Word tokens of ``texts``: one row each, in text order.

    Columns: ``text`` (index into ``texts``), ``start``/``end`` (offsets in
    that text), ``raw`` (the token), ``upper`` (starts with a capital),
    ``digit`` (starts with a digit), ``space_after`` (only one space before
    the next token of the same text), ``sentence`` (index of the sentence in
    ``sentences[text]`` that holds it, or -1 when no sentences were given).
    """
    schema = {
        "text": pl.UInt32, "start": pl.Int64, "end": pl.Int64, "raw": pl.String, "upper": pl.Boolean,
        "digit": pl.Boolean, "space_after": pl.Boolean, "sentence": pl.Int64,
    }  # fmt: skip
    if not texts:
        return pl.DataFrame(schema=schema)
    joined = "\x00".join(texts)
    cp = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    alnum, upper, digit = _classes(cp)
    joiner = np.isin(cp, np.array([ord(c) for c in _JOINERS], dtype=np.uint32))
    word = alnum | (joiner & np.r_[False, alnum[:-1]] & np.r_[alnum[1:], False])
    edges = np.diff(np.r_[np.int8(0), word.astype(np.int8), np.int8(0)])
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    if starts.size == 0:
        return pl.DataFrame(schema=schema)
    bases = np.cumsum([0] + [len(t) + 1 for t in texts[:-1]])
    text_idx = np.searchsorted(bases, starts, side="right") - 1
    nxt_start = np.r_[starts[1:], -1]
    space_after = (nxt_start - ends == 1) & (cp[np.minimum(ends, cp.size - 1)] == 32)
    space_after &= np.r_[text_idx[1:] == text_idx[:-1], False]
    sentence = np.full(starts.size, -1, dtype=np.int64)
    if sentences is not None:
        sent_starts = np.array([bases[i] + s for i, spans in enumerate(sentences) for s, _ in spans], dtype=np.int64)
        sent_text = np.array([i for i, spans in enumerate(sentences) for _ in spans], dtype=np.int64)
        if sent_starts.size:
            first_of_text = np.searchsorted(sent_text, np.arange(len(texts)), side="left")
            sentence = np.searchsorted(sent_starts, starts, side="right") - 1 - first_of_text[text_idx]
            sentence = np.maximum(sentence, 0)
    return pl.DataFrame(
        {
            "text": text_idx.astype(np.uint32),
            "start": (starts - bases[text_idx]).astype(np.int64),
            "end": (ends - bases[text_idx]).astype(np.int64),
            "raw": _gather_strings(cp, starts, ends),
            "upper": upper[starts],
            "digit": digit[starts],
            "space_after": space_after,
            "sentence": sentence,
        },
        schema=schema,
    )


def _gather_strings(cp: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Token strings by a 2-D gather of code points viewed as fixed-width unicode (NULs pad, then drop)."""
    lengths = np.minimum(ends - starts, MAX_TOKEN_CHARS)
    width = int(lengths.max())
    out = np.empty(starts.size, dtype=f"<U{width}")
    step = max(1, 2_000_000 // width)  # bound the gather to ~8 MB at a time
    cols = np.arange(width)
    for lo in range(0, starts.size, step):
        s, n = starts[lo : lo + step], lengths[lo : lo + step]
        idx = s[:, None] + cols
        grid = np.where(cols < n[:, None], cp[np.minimum(idx, cp.size - 1)], 0).astype(np.uint32)
        out[lo : lo + step] = np.ascontiguousarray(grid).view(f"<U{width}").ravel()
    return out


def ngrams(tokens: pl.DataFrame, max_tokens: int) -> pl.DataFrame:
    """Every run of 1..``max_tokens`` consecutive tokens within one sentence of one text, starting capitalised.

    Columns: ``text``, ``sentence``, ``start``, ``end``, ``n`` (tokens), ``raw`` (the
    tokens joined by single spaces: punctuation between them is dropped, as
    name normalisation drops it anyway), ``first`` (first token, lower case). An n-gram ending in a
    possessive ('s) also comes without it.
    """
    frames = []
    base = tokens.with_row_index("tok")
    for n in range(1, max_tokens + 1):
        last = [pl.col(c).shift(-(n - 1)) for c in ("text", "sentence", "end", "upper", "digit")]
        parts = [pl.col("raw").shift(-k) for k in range(n)]
        frames.append(
            base.select(
                pl.col("text"),
                pl.col("sentence"),
                pl.col("start"),
                last[2].alias("end"),
                pl.lit(n, pl.Int32).alias("n"),
                pl.concat_str(parts, separator=" ").alias("raw"),
                pl.col("raw").str.to_lowercase().alias("first"),
                ((last[0] == pl.col("text")) & (last[1] == pl.col("sentence")) & pl.col("upper")).alias("ok"),
                (last[3] | last[4]).alias("last_ok"),
            )
            .filter(pl.col("ok") & pl.col("last_ok"))
            .drop("ok", "last_ok")
        )
    out = pl.concat(frames)
    # "Bong Joon-ho's film": the name without its possessive is a candidate too.
    possessive = pl.col("raw").str.contains(r"['’]s$")
    stripped = out.filter(possessive).with_columns(
        pl.col("raw").str.slice(0, pl.col("raw").str.len_chars() - 2), pl.col("end") - 2
    )
    out = pl.concat([out, stripped])
    single_function_word = (pl.col("n") == 1) & pl.col("first").is_in(list(FUNCTION_WORDS))
    return out.filter(~single_function_word)


def capitalised_spans(tokens: pl.DataFrame) -> pl.DataFrame:
    """Candidate names: runs of capitalised tokens (with connectors and numbers inside) in one sentence.

    The cheap mention detector of guided mode: it over-proposes on purpose
    (sentence-initial words, headings); the LLM's type question may answer
    "none". A run's leading function word ("In Paris") is dropped; a run
    of one function word is no candidate. Columns: text, sentence, start, end, raw.
    """
    schema = {"text": pl.UInt32, "sentence": pl.Int64, "start": pl.Int64, "end": pl.Int64, "raw": pl.String}
    if tokens.height == 0:
        return pl.DataFrame(schema=schema)
    lower = pl.col("raw").str.to_lowercase()
    frame = tokens.with_columns(
        conn=~pl.col("upper") & ~pl.col("digit") & lower.is_in(list(CONNECTORS)),
        func=lower.is_in(list(FUNCTION_WORDS)),
    )
    member = pl.col("upper") | pl.col("digit") | pl.col("conn")
    nxt_same = (pl.col("text").shift(-1) == pl.col("text")) & (pl.col("sentence").shift(-1) == pl.col("sentence"))
    link = member & member.shift(-1) & nxt_same & pl.col("space_after")
    frame = frame.with_columns(link=link.fill_null(False))
    frame = frame.with_columns(run=(~pl.col("link").shift(1, fill_value=False)).cum_sum())
    # A run may not start with a digit or connector, nor end with a connector.
    members = frame.filter(member)
    runs = (
        members.group_by("run", maintain_order=True)
        .agg(
            pl.col("text").first(),
            pl.col("sentence").first(),
            pl.col("start"),
            pl.col("end"),
            pl.col("raw"),
            pl.col("upper"),
            pl.col("digit"),
            pl.col("conn"),
            pl.col("func"),
        )
        .explode("start", "end", "raw", "upper", "digit", "conn", "func")
        .with_columns(pos=pl.int_range(pl.len()).over("run"))
    )
    # Drop leading tokens until the first capitalised non-function word (keep "The" before a name: titles).
    lead_ok = pl.col("upper") & (~pl.col("func") | (pl.col("raw") == "The"))
    runs = runs.with_columns(keep_from=pl.when(lead_ok).then(pl.col("pos")).min().over("run"))
    runs = runs.filter(pl.col("keep_from").is_not_null() & (pl.col("pos") >= pl.col("keep_from")))
    # Drop trailing connectors; a run of function words alone ("The") is no candidate.
    closing = (pl.col("upper") | pl.col("digit")) & ~pl.col("conn")
    runs = runs.with_columns(last_ok=pl.when(closing).then(pl.col("pos")).max().over("run"))
    runs = runs.filter(pl.col("pos") <= pl.col("last_ok"))
    spans = runs.group_by("run", maintain_order=True).agg(
        pl.col("text").first(),
        pl.col("sentence").first(),
        pl.col("start").first(),
        pl.col("end").last(),
        pl.col("raw").str.join(" "),
        pl.col("func").all().alias("all_func"),
    )
    return spans.filter(~pl.col("all_func")).select(list(schema)).cast(schema)
