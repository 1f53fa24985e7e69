"""Read the Ditto/DeepMatcher pair files: ``COL attr VAL value ...<TAB>COL attr VAL value ...<TAB>label``.

The files carry no record ids, so a record's id is a hash of its attribute
text: the same song text on many lines is one record, and the id is the same
on every machine and every run. Parsing is one regex per side over the whole
file (polars); only a line that fails is looked at again in Python, to name
the field at fault.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kg.errors import IngestError

ATTRIBUTES: tuple[str, ...] = (
    "Song_Name", "Artist_Name", "Album_Name", "Genre", "Price", "CopyRight", "Time", "Released",
)  # fmt: skip
"""The iTunes-Amazon attributes, in the order every line lists them."""

SOURCES: tuple[str, str] = ("itunes", "amazon")
"""Left side of every pair is iTunes, right side Amazon (DeepMatcher's tableA / tableB)."""

_SIDES = ("left", "right")
_ID_CHARS = 16  # 64 bits of sha1: no collision among any realistic number of songs


@dataclass(frozen=True)
class LabelledPairs:
    """One Ditto file: the distinct records of each side and the labelled pairs between them.

    ``attributes``: source, source_id, line (first line the record appears on),
    then one column per attribute holding the original text (null when empty).
    ``pairs``: left_source, left_id, right_source, right_id, label (0/1), line.
    """

    path: Path
    attributes: pl.DataFrame
    pairs: pl.DataFrame


def _side_pattern(attributes: tuple[str, ...]) -> str:
    """One regex for a whole side, a named group per attribute; the last value runs to the end."""
    groups = [f"COL {re.escape(a)} VAL(?P<{a}>.*?)" for a in attributes[:-1]]
    groups.append(f"COL {re.escape(attributes[-1])} VAL(?P<{attributes[-1]}>.*)")
    return "^" + " ".join(groups) + "$"


def _diagnose(side: str, attributes: tuple[str, ...]) -> tuple[str | None, str]:
    """(attribute, reason) for a side that does not parse: the first attribute missing or out of order."""
    at = 0
    for name in attributes:
        found = side.find(f"COL {name} VAL", at)
        if found < 0:
            where = "missing" if f"COL {name} VAL" not in side else "out of order"
            return name, f"attribute {name!r} {where}; expected 'COL <attribute> VAL <value>' for {list(attributes)}"
        if at == 0 and found > 0:
            return None, f"text before the first attribute: {side[:found]!r}"
        at = found + 1
    return None, f"unexpected text or attribute; expected exactly {list(attributes)}"


def _record_id(texts: list[str]) -> list[str]:
    """Stable content hash of a side's canonical attribute text (not polars' hash: that one is per-version)."""
    return [hashlib.sha1(t.encode()).hexdigest()[:_ID_CHARS] for t in texts]


def read_pairs(path: str | Path, attributes: tuple[str, ...] = ATTRIBUTES) -> LabelledPairs:
    """Parse one Ditto pair file; a malformed line raises ``IngestError`` naming file, line and field.

    Blank lines are skipped (they hold nothing); every other line must have
    three tab-separated fields, both records listing ``attributes`` in order,
    and a label of 0 or 1.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IngestError(str(path), None, None, "no such file (pass the folder with train.txt, valid.txt)") from None
    except UnicodeDecodeError as exc:
        raise IngestError(str(path), None, None, f"not UTF-8 text ({exc})") from None
    lines = (
        pl.DataFrame({"raw": text.split("\n")})
        .with_row_index("line", offset=1)
        .with_columns(pl.col("raw").str.strip_chars_end("\r"), pl.col("line").cast(pl.Int64))
        .filter(pl.col("raw").str.strip_chars() != "")
    )
    fields = pl.col("raw").str.split("\t")
    pattern = _side_pattern(attributes)
    parsed = lines.with_columns(
        n_fields=fields.list.len(),
        left=fields.list.get(0, null_on_oob=True).str.strip_chars(),
        right=fields.list.get(1, null_on_oob=True).str.strip_chars(),
        label=fields.list.get(2, null_on_oob=True).str.strip_chars(),
    ).with_columns(
        left_attrs=pl.col("left").str.extract_groups(pattern),
        right_attrs=pl.col("right").str.extract_groups(pattern),
    )
    _raise_on_bad_lines(path, parsed, attributes)
    sides = []
    for side, source in zip(_SIDES, SOURCES, strict=True):
        values = parsed.select(
            "line",
            pl.col(f"{side}_attrs").struct.unnest(),
        ).with_columns(pl.col(a).str.strip_chars() for a in attributes)
        canonical = values.select(
            pl.concat_str([pl.lit(f"{a}=") + pl.col(a) for a in attributes], separator="\x1f")
        ).to_series()
        values = values.with_columns(
            source=pl.lit(source),
            source_id=pl.Series(_record_id(canonical.to_list()), dtype=pl.String),
        ).with_columns(pl.when(pl.col(a) != "").then(pl.col(a)).alias(a) for a in attributes)
        sides.append(values)
    pairs = pl.DataFrame(
        {
            "left_source": SOURCES[0],
            "left_id": sides[0]["source_id"],
            "right_source": SOURCES[1],
            "right_id": sides[1]["source_id"],
            "label": parsed["label"].cast(pl.Int8),
            "line": parsed["line"],
        }
    )
    _raise_on_conflicting_labels(path, pairs)
    records = (
        pl.concat(sides)
        .unique(["source", "source_id"], keep="first", maintain_order=True)
        .select("source", "source_id", "line", *attributes)
    )
    return LabelledPairs(path, records, pairs)


def _raise_on_bad_lines(path: Path, parsed: pl.DataFrame, attributes: tuple[str, ...]) -> None:
    """Raise for the first malformed line (and count the rest); pass silently when all are well formed."""
    bad = parsed.filter(
        (pl.col("n_fields") != 3)
        | pl.col("left_attrs").struct.field(attributes[0]).is_null()
        | pl.col("right_attrs").struct.field(attributes[0]).is_null()
        | ~pl.col("label").is_in(["0", "1"])
    )
    if bad.is_empty():
        return
    row = bad.row(0, named=True)
    more = f" ({bad.height - 1} more malformed lines)" if bad.height > 1 else ""
    if row["n_fields"] != 3:
        reason = f"expected 3 tab-separated fields (left record, right record, label), found {row['n_fields']}"
        raise IngestError(str(path), row["line"], None, reason + more)
    for side in _SIDES:
        if row[f"{side}_attrs"][attributes[0]] is None:
            attribute, reason = _diagnose(row[side], attributes)
            field = side if attribute is None else f"{side}.{attribute}"
            raise IngestError(str(path), row["line"], field, reason + more)
    raise IngestError(str(path), row["line"], "label", f"expected 0 or 1, found {row['label']!r}" + more)


def _raise_on_conflicting_labels(path: Path, pairs: pl.DataFrame) -> None:
    """The same pair twice is fine (the files repeat some); with both labels it is an error naming both lines."""
    keys = ["left_source", "left_id", "right_source", "right_id"]
    clash = (
        pairs.group_by(keys)
        .agg(pl.col("label").n_unique().alias("labels"), pl.col("line").sort())
        .filter(pl.col("labels") > 1)
    )
    if not clash.is_empty():
        lines = clash["line"][0].to_list()
        reason = f"the pair on line {lines[0]} is repeated with the other label on line(s) {lines[1:]}"
        raise IngestError(str(path), lines[0], "label", reason)
