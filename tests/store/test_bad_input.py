"""Bad input: a clear StoreError, and the store exactly as it was."""

from __future__ import annotations

import subprocess
import sys
from itertools import islice
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from kg.graph import Graph
from kg.store import SCHEMA_VERSION, RunInfo, Store, StoreError, merge_entities, merge_relations
from kg.store.db import pauses
from schemas.tables import CROSSWALK, RECORDS, RELATIONS
from tests.store.helpers import crosswalk, fingerprint, hold, matching_run, rec, records, rel, relations, table


def _refused(path: Path, match: str, merge) -> None:
    before = fingerprint(path)
    with Store.open(path) as store, pytest.raises(StoreError, match=match):
        merge(store)
    assert fingerprint(path) == before


def test_wrong_schema_names_the_column(store_path: Path) -> None:
    bad = records().drop_columns(["year"])
    _refused(store_path, "missing column 'year'", lambda s: merge_entities(s, bad, crosswalk(), matching_run()))
    bad = relations().append_column("extra", pa.array([1] * relations().num_rows))
    _refused(store_path, "unexpected column 'extra'",
             lambda s: merge_relations(s, bad, RunInfo("extract-1", "extraction")))
    bad = relations().set_column(7, "confidence", pa.array(["high"] * relations().num_rows))
    _refused(store_path, "'confidence'", lambda s: merge_relations(s, bad, RunInfo("extract-1", "extraction")))


def test_unknown_entity_type(store_path: Path) -> None:
    recs = table(RECORDS, [rec("x", "1", "spaceship", "Enterprise")])
    cw = table(CROSSWALK, [{"source": "x", "source_id": "1", "entity_id": "S", "type": "spaceship", "run_id": "m"}])
    _refused(store_path, "unknown entity type.*spaceship",
             lambda s: merge_entities(s, recs, cw, RunInfo("m", "matching")))


def test_unknown_and_disallowed_relations(store_path: Path) -> None:
    bad = table(RELATIONS, [rel("P-rian", "befriended", "P-bong", "d", run_id="x", object_type="person")])
    _refused(store_path, "unknown relation type.*befriended",
             lambda s: merge_relations(s, bad, RunInfo("x", "extraction")))
    bad = table(RELATIONS, [rel("E-knives", "directed", "P-rian", "d", run_id="x", subject_type="movie",
                                object_type="person")])
    _refused(store_path, "not allowed by the ontology",
             lambda s: merge_relations(s, bad, RunInfo("x", "extraction")))
    # declared types fine, stored types wrong: E-mother is a movie, not a person
    bad = table(RELATIONS, [rel("E-mother", "directed", "E-knives", "d", run_id="x")])
    _refused(store_path, "stored entity types.*movie -directed-> movie",
             lambda s: merge_relations(s, bad, RunInfo("x", "extraction")))


def test_rejected_rows_are_not_checked_against_the_ontology(store_path: Path) -> None:
    row = rel("P-rian", "befriended", "P-bong", "d", status="rejected", reason="not in ontology", run_id="x")
    with Store.open(store_path) as store:
        result = merge_relations(store, table(RELATIONS, [row]), RunInfo("x", "extraction"))
    assert result.changes["claims"] == 1 and result.changes["edges"] == 0


def test_dangling_ids(store_path: Path) -> None:
    good = relations(run_id="x").to_pylist()
    bad = table(RELATIONS, [*good, rel("P-nobody", "directed", "E-knives", "d", run_id="x")])
    _refused(store_path, "dangling entity id.*P-nobody", lambda s: merge_relations(s, bad, RunInfo("x", "extraction")))
    cw = table(CROSSWALK, [{"source": "imdb", "source_id": "tt0", "entity_id": "E0", "type": "movie",
                            "run_id": "match-1"}])
    _refused(store_path, "dangling record key", lambda s: merge_entities(s, records(), cw, matching_run()))


def test_unlinked_accepted_row_refused_by_default(store_path: Path) -> None:
    row = rel("P-rian", "directed", "E-knives", "doc-x", run_id="x")
    row["subject_id"] = None
    _refused(store_path, "without subject_id/object_id",
             lambda s: merge_relations(s, table(RELATIONS, [row]), RunInfo("x", "extraction")))


def test_inconsistent_inputs(store_path: Path) -> None:
    dup = pa.concat_tables([records(), records().slice(0, 1)])
    _refused(store_path, "duplicate", lambda s: merge_entities(s, dup, crosswalk(), matching_run()))
    _refused(store_path, "run_id", lambda s: merge_entities(s, records(), crosswalk("other"), matching_run()))
    cw = crosswalk().to_pylist()
    cw[0]["type"] = cw[1]["type"] = "book"  # both Knives Out records, declared a book: not in the movie's group
    _refused(store_path, "neither the record's type nor in its type group",
             lambda s: merge_entities(s, records(), table(CROSSWALK, cw), matching_run()))
    cw = crosswalk().to_pylist()
    cw[5]["entity_id"] = "E-knives"  # a person record into a movie entity
    _refused(store_path, "several types", lambda s: merge_entities(s, records(), table(CROSSWALK, cw),
                                                                   matching_run()))
    bad = relations(run_id="x").to_pylist()
    bad[0]["status"] = "maybe"
    _refused(store_path, "unknown status", lambda s: merge_relations(s, table(RELATIONS, bad),
                                                                     RunInfo("x", "extraction")))


def test_existing_entity_cannot_change_type(store_path: Path) -> None:
    """All of an entity's records re-typed: refused, the id would change meaning under its edges."""
    recs = table(RECORDS, [rec("imdb", "tt8946378", "book", "Knives Out"), rec("tmdb", "546554", "book", "K")])
    cw = table(CROSSWALK, [{"source": s, "source_id": i, "entity_id": "E-knives", "type": "book", "run_id": "m2"}
                           for s, i in (("imdb", "tt8946378"), ("tmdb", "546554"))])
    _refused(store_path, "incompatible type", lambda s: merge_entities(s, recs, cw, RunInfo("m2", "matching")))


def test_retyping_within_a_group_must_fit_the_edges(store_path: Path) -> None:
    """movie -> episode is one group, but a stored edge (remake_of) does not allow an episode."""
    remake = rel("E-knives", "remake_of", "E-mother", "doc-x", subject_type="movie", object_type="movie",
                 run_id="x2")
    with Store.open(store_path) as store:
        merge_relations(store, table(RELATIONS, [remake]), RunInfo("x2", "extraction"))
    recs = table(RECORDS, [rec("imdb", "tt8946378", "episode", "Knives Out"), rec("tmdb", "546554", "episode", "K")])
    cw = table(CROSSWALK, [{"source": s, "source_id": i, "entity_id": "E-knives", "type": "episode", "run_id": "m2"}
                           for s, i in (("imdb", "tt8946378"), ("tmdb", "546554"))])
    _refused(store_path, "edges the new type does not allow",
             lambda s: merge_entities(s, recs, cw, RunInfo("m2", "matching")))


def test_read_only_store_refuses_merges(store_path: Path) -> None:
    with Store.open(store_path, read_only=True) as store, pytest.raises(StoreError, match="read-only"):
        merge_entities(store, records(), crosswalk(), matching_run())
    with Graph.open(store_path) as g, pytest.raises(StoreError):
        g.sql("DELETE FROM entities")


def test_newer_schema_version_refused(store_path: Path) -> None:
    con = duckdb.connect(str(store_path))
    con.execute("UPDATE kg_meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    before = fingerprint(store_path)
    for read_only in (True, False):
        with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade"):
            Store.open(store_path, read_only=read_only)
    assert fingerprint(store_path) == before


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "graph.duckdb"
    path.write_bytes(b"this is not a database " * 500)
    for read_only in (True, False):
        with pytest.raises(StoreError, match="not a valid DuckDB database file"):
            Store.open(path, read_only=read_only)
    assert path.read_bytes() == b"this is not a database " * 500


def test_damaged_and_truncated_store(store_path: Path, tmp_path: Path) -> None:
    """A real store whose blocks fail their checksums, or cut short: a StoreError that says the file is damaged
    (at open, or at the first query that reads a bad block), and the file left as it was."""
    import hashlib
    import os
    import shutil

    from kg.store import TABLES

    size = store_path.stat().st_size
    damaged = tmp_path / "damaged.duckdb"
    shutil.copy(store_path, damaged)
    with open(damaged, "r+b") as f:  # scribble over every 256 KiB block after the headers and the first two
        for offset in range(12288 + 2 * 262144, size, 262144):
            f.seek(offset + 8)
            f.write(b"\x5a" * 64)
    truncated = tmp_path / "truncated.duckdb"
    shutil.copy(store_path, truncated)
    os.truncate(truncated, size // 3)
    for path in (damaged, truncated):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        for read_only in (True, False):
            with (
                pytest.raises(StoreError, match="damaged.*restore it from a backup"),
                Graph.open(path, read_only=read_only) as g,
            ):
                for table in TABLES:
                    g.sql(f"SELECT * FROM {table}")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no graph store there"):
        Graph.open(tmp_path / "missing.duckdb")
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    with pytest.raises(StoreError, match="not a kg graph store"):
        Store.open(other)


def test_locked_file(store_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(60)",
         str(store_path)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match=f"locked by process {holder.pid}"):
            Store.open(store_path)
        with pytest.raises(StoreError, match="locked"):
            Graph.open(store_path)
    finally:
        holder.kill()
        holder.wait()
    with Graph.open(store_path) as g:
        assert g.sql("SELECT count(*) AS n FROM entities")["n"].to_list() == [9]


def test_a_reader_can_wait_for_another_process_to_let_go(store_path: Path) -> None:
    holder = hold(store_path, 1.0)
    try:
        with Graph.open(store_path, wait=60) as g:
            assert holder.poll() is not None  # it opened only once the holder was gone, and sees what it committed
            assert g.sql("SELECT count(*) AS n FROM held")["n"].to_list() == [0]
    finally:
        holder.kill()
        holder.wait()


def test_waiting_has_a_limit_and_says_so(store_path: Path) -> None:
    holder = hold(store_path, 60)
    try:
        with pytest.raises(StoreError, match=rf"locked by process {holder.pid} after waiting 0.3 s"):
            Graph.open(store_path, wait=0.3)
    finally:
        holder.kill()
        holder.wait()


def test_retry_pauses_double_and_end_with_the_wait() -> None:
    assert list(pauses(0)) == []  # wait=0: one try, no retry
    assert list(islice(pauses(10), 3)) == [0.05, 0.1, 0.2]
    assert sum(pauses(0.3)) <= 0.3
