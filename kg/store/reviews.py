"""Review labels: an analyst's verdict on two records, two entities, an edge or a claim, kept with who and when.

Labels are the feedback loop of the toolkit: record and entity pair labels
become training and evaluation pairs for the matching model
(``export_match_labels`` writes them in the PAIR_LABELS shape that
``matching.labels.read_review_labels`` reads), edge and claim labels audit
and calibrate extraction.

The ``reviews`` table holds one row per (target, reviewer): labelling the
same target again replaces that reviewer's label, the same label twice
changes nothing. Pairs are stored in canonical order (smaller key left), so
(a, b) and (b, a) are one target. Every target must exist in the store when
it is labelled; a batch is written in one transaction, all rows or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from kg.store.db import Store, first
from kg.store.errors import StoreError
from kg.store.query import frame
from kg.store.runs import current_user
from schemas.tables import PAIR_LABELS, REVIEW_LABELS, SchemaMismatch, conform

# Labels each kind of target takes. "unsure" is kept (a reviewer looked) but never exported as a pair.
LABELS: dict[str, tuple[str, ...]] = {
    "records": ("match", "non_match", "unsure"),
    "entities": ("match", "non_match", "unsure"),
    "edge": ("correct", "wrong", "unsure"),
    "claim": ("correct", "wrong", "unsure"),
}


def add_review(
    store: Store,
    kind: str,
    left: str | tuple[str, str],
    right: str | tuple[str, str] | None = None,
    *,
    label: str,
    reviewer: str | None = None,
    note: str | None = None,
) -> int:
    """Store one label; returns 1 if it changed the reviewer's label on that target, else 0.

    ``kind`` 'records': ``left`` and ``right`` are (source, source_id);
    'entities': two entity ids; 'edge' / 'claim': ``left`` is the id and
    ``right`` stays None.
    """
    if kind == "records":
        if not (isinstance(left, tuple) and isinstance(right, tuple)):
            raise StoreError("a records review needs left and right as (source, source_id) tuples")
        row = {"left_source": left[0], "left_id": left[1], "right_source": right[0], "right_id": right[1]}
    else:
        if isinstance(left, tuple) or isinstance(right, tuple):
            raise StoreError(f"a {kind} review takes ids, not (source, source_id) tuples")
        row = {"left_source": None, "left_id": left, "right_source": None, "right_id": right}
    row.update(target_kind=kind, label=label, reviewer=reviewer or current_user(), note=note)
    table = pa.table({f.name: [row[f.name]] for f in REVIEW_LABELS}, schema=REVIEW_LABELS)
    return add_reviews(store, table)


def add_reviews(store: Store, labels: pa.Table) -> int:
    """Store a batch of labels (REVIEW_LABELS schema) in one transaction; returns how many changed.

    Refused, with the first offending row named and nothing stored: an
    unknown kind or label, a pair of a target with itself, a missing right
    side for a pair or a right side for an edge or claim, a target the store
    does not hold, two rows for the same target and reviewer.
    """
    try:
        labels = conform(labels, REVIEW_LABELS)
    except SchemaMismatch as exc:
        raise StoreError(f"review labels table has the wrong schema: {exc}") from exc
    _check_labels(labels)
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.transaction("review") as con:
        con.register("_kg_in_reviews", labels)
        try:
            con.execute(_CANONICAL)
            _check_targets(con)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _kg_review_changes AS SELECT i.* FROM _kg_rev i "
                "WHERE NOT EXISTS (SELECT 1 FROM reviews r WHERE " + _SAME_TARGET +
                " AND r.label = i.label AND r.note IS NOT DISTINCT FROM i.note)"
            )
            con.execute("DELETE FROM reviews r USING _kg_review_changes i WHERE " + _SAME_TARGET)
            return int(con.execute(
                "INSERT INTO reviews SELECT target_kind, left_source, left_id, right_source, right_id, label, "
                "reviewer, note, ? FROM _kg_review_changes",
                [now],
            ).fetchall()[0][0])
        finally:
            con.unregister("_kg_in_reviews")


def _check_labels(labels: pa.Table) -> None:
    """Checks on the values alone; a handful of distinct (kind, label) pairs, not one per row."""
    rows = pl.from_arrow(labels).with_row_index("row", offset=1)
    bad = rows.filter(~pl.col("target_kind").is_in(list(LABELS)))
    if bad.height:
        raise StoreError(f"review labels: row {bad['row'][0]}: unknown target_kind {bad['target_kind'][0]!r}; "
                         f"expected one of {list(LABELS)}")
    for kind, allowed in LABELS.items():
        bad = rows.filter((pl.col("target_kind") == kind) & ~pl.col("label").is_in(list(allowed)))
        if bad.height:
            raise StoreError(f"review labels: row {bad['row'][0]}: label {bad['label'][0]!r} for {kind}; "
                             f"expected one of {list(allowed)}")
    pair = pl.col("target_kind").is_in(["records", "entities"])
    checks = [
        (pair & pl.col("right_id").is_null(), "a pair needs right_id"),
        ((pl.col("target_kind") == "records") & (pl.col("left_source").is_null() | pl.col("right_source").is_null()),
         "a records pair needs left_source and right_source"),
        (~pair & pl.col("right_id").is_not_null(), "an edge or claim label takes no right side"),
        (pair & (pl.col("left_id") == pl.col("right_id"))
         & (pl.col("left_source").eq_missing(pl.col("right_source"))), "a pair of a target with itself"),
        (pl.col("reviewer").str.strip_chars() == "", "an empty reviewer"),
    ]
    for condition, what in checks:
        bad = rows.filter(condition)
        if bad.height:
            raise StoreError(f"review labels: row {bad['row'][0]}: {what}")


# The batch in canonical pair order, each row numbered (for error messages).
_CANONICAL = """
CREATE OR REPLACE TEMP TABLE _kg_rev AS
WITH numbered AS (SELECT *, row_number() OVER () AS row FROM _kg_in_reviews),
oriented AS (
    SELECT *, target_kind IN ('records', 'entities')
              AND (coalesce(left_source, ''), left_id) > (coalesce(right_source, ''), right_id) AS swap
    FROM numbered
)
SELECT target_kind,
       CASE WHEN swap THEN right_source ELSE left_source END AS left_source,
       CASE WHEN swap THEN right_id ELSE left_id END AS left_id,
       CASE WHEN swap THEN left_source ELSE right_source END AS right_source,
       CASE WHEN swap THEN left_id ELSE right_id END AS right_id,
       label, reviewer, note, row
FROM oriented
"""

_SAME_TARGET = (
    "r.target_kind = i.target_kind AND r.left_source IS NOT DISTINCT FROM i.left_source AND r.left_id = i.left_id "
    "AND r.right_source IS NOT DISTINCT FROM i.right_source AND r.right_id IS NOT DISTINCT FROM i.right_id "
    "AND r.reviewer = i.reviewer"
)


def _check_targets(con: duckdb.DuckDBPyConnection) -> None:
    dup = first(
        con,
        "SELECT min(row), target_kind, left_id, right_id, reviewer FROM _kg_rev "
        "GROUP BY target_kind, left_source, left_id, right_source, right_id, reviewer HAVING count(*) > 1 "
        "ORDER BY 1 LIMIT 1",
    )
    if dup:
        raise StoreError(f"review labels: row {dup[0]}: {dup[1]} {dup[2]} {dup[3] or ''} labelled twice by "
                         f"{dup[4]!r} in one batch")
    missing = first(
        con,
        """
        SELECT row, target_kind, side, key FROM (
            SELECT i.row, i.target_kind, 'left' AS side, i.left_source || ':' || i.left_id AS key FROM _kg_rev i
            WHERE i.target_kind = 'records' AND NOT EXISTS (
                SELECT 1 FROM records r WHERE r.source = i.left_source AND r.source_id = i.left_id)
            UNION ALL
            SELECT i.row, i.target_kind, 'right', i.right_source || ':' || i.right_id FROM _kg_rev i
            WHERE i.target_kind = 'records' AND NOT EXISTS (
                SELECT 1 FROM records r WHERE r.source = i.right_source AND r.source_id = i.right_id)
            UNION ALL
            SELECT i.row, i.target_kind, 'left', i.left_id FROM _kg_rev i
            WHERE i.target_kind = 'entities' AND NOT EXISTS (SELECT 1 FROM entities e WHERE e.entity_id = i.left_id)
            UNION ALL
            SELECT i.row, i.target_kind, 'right', i.right_id FROM _kg_rev i
            WHERE i.target_kind = 'entities' AND NOT EXISTS (SELECT 1 FROM entities e WHERE e.entity_id = i.right_id)
            UNION ALL
            SELECT i.row, i.target_kind, 'left', i.left_id FROM _kg_rev i
            WHERE i.target_kind = 'edge' AND NOT EXISTS (SELECT 1 FROM edges e WHERE e.edge_id = i.left_id)
            UNION ALL
            SELECT i.row, i.target_kind, 'left', i.left_id FROM _kg_rev i
            WHERE i.target_kind = 'claim' AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.claim_id = i.left_id)
        ) ORDER BY row LIMIT 1
        """,
    )
    if missing:
        row, kind, side, key = missing
        what = {"records": "record", "entities": "entity", "edge": "edge", "claim": "claim"}[kind]
        raise StoreError(f"review labels: row {row}: no {what} {key!r} in the store ({side} side)")


def reviews(con: duckdb.DuckDBPyConnection, kind: str | None = None) -> pl.DataFrame:
    """The stored labels (of one kind, or all), newest first."""
    if kind is not None and kind not in LABELS:
        raise StoreError(f"unknown review kind {kind!r}; expected one of {list(LABELS)}")
    return frame(
        con,
        "SELECT * FROM reviews WHERE $kind::VARCHAR IS NULL OR target_kind = $kind::VARCHAR "
        "ORDER BY created_at DESC, target_kind, left_source, left_id, right_source, right_id, reviewer",
        {"kind": kind},
    )


@dataclass(frozen=True)
class LabelExport:
    """What ``export_match_labels`` wrote: the file, pairs by label, and what it left out and why."""

    path: Path
    matches: int
    non_matches: int
    conflicts: int  # pairs whose reviewers disagree (at the most specific level that labels them)
    unsure: int  # pair labels marked unsure


# Record pairs from record labels (level 0) and from entity labels expanded over the entities' records (level 1).
_PAIR_VOTES = """
CREATE OR REPLACE TEMP TABLE _kg_votes AS
WITH entity_pairs AS (
    SELECT a.source AS s1, a.source_id AS i1, b.source AS s2, b.source_id AS i2, v.label, v.reviewer
    FROM reviews v
    JOIN crosswalk a ON a.entity_id = v.left_id
    JOIN crosswalk b ON b.entity_id = v.right_id
    WHERE v.target_kind = 'entities'
),
all_votes AS (
    SELECT left_source AS s1, left_id AS i1, right_source AS s2, right_id AS i2, label, reviewer, 0 AS level
    FROM reviews WHERE target_kind = 'records'
    UNION ALL
    SELECT s1, i1, s2, i2, label, reviewer, 1 FROM entity_pairs
),
canonical AS (
    SELECT CASE WHEN (s1, i1) <= (s2, i2) THEN s1 ELSE s2 END AS left_source,
           CASE WHEN (s1, i1) <= (s2, i2) THEN i1 ELSE i2 END AS left_id,
           CASE WHEN (s1, i1) <= (s2, i2) THEN s2 ELSE s1 END AS right_source,
           CASE WHEN (s1, i1) <= (s2, i2) THEN i2 ELSE i1 END AS right_id,
           label, reviewer, level
    FROM all_votes WHERE (s1, i1) <> (s2, i2)
)
SELECT * FROM canonical
QUALIFY level = min(level) OVER (PARTITION BY left_source, left_id, right_source, right_id)
"""


def export_match_labels(con: duckdb.DuckDBPyConnection, path: str | Path) -> LabelExport:
    """Write reviewed record pairs as PAIR_LABELS Parquet, for ``kg train`` / the matching trainer.

    Record pair labels are used as given; an entity pair label stands for
    every pair of their records (as the crosswalk maps them now). A pair
    labelled at record level ignores entity level labels. Reviewers who
    disagree on a pair leave it out (counted in ``conflicts``); "unsure"
    labels are left out too. Written under a temporary name and renamed.
    """
    path = Path(path)
    con.execute(_PAIR_VOTES)
    summary = first(
        con,
        "SELECT count(*) FILTER (WHERE n_labels > 1), count(*) FILTER (WHERE n_labels = 1 AND label = 'unsure') "
        "FROM (SELECT any_value(label) AS label, count(DISTINCT label) AS n_labels FROM _kg_votes "
        "GROUP BY left_source, left_id, right_source, right_id)",
    )
    conflicts, unsure = (int(summary[0]), int(summary[1])) if summary else (0, 0)
    pairs = con.sql(
        "SELECT left_source, left_id, right_source, right_id, "
        "CASE any_value(label) WHEN 'match' THEN 1 ELSE 0 END::TINYINT AS label FROM _kg_votes "
        "GROUP BY left_source, left_id, right_source, right_id "
        "HAVING count(DISTINCT label) = 1 AND any_value(label) <> 'unsure' "
        "ORDER BY left_source, left_id, right_source, right_id"
    ).to_arrow_table()
    table = conform(pairs, PAIR_LABELS)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    matches = int(pairs["label"].to_numpy().sum()) if pairs.num_rows else 0
    return LabelExport(path, matches, pairs.num_rows - matches, conflicts, unsure)
