"""Merges: idempotent, stable ids, provenance kept, only accepted relations become edges."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from kg.graph import Graph
from kg.store import RunInfo, Store, StoreError, merge_entities, merge_relations
from schemas.tables import RELATIONS
from tests.store.helpers import (
    check_invariants,
    crosswalk,
    extraction_run,
    fingerprint,
    matching_run,
    rec,
    records,
    rel,
    relations,
    table,
)


def rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_first_merge_counts(store_path: Path) -> None:
    fp = fingerprint(store_path)
    assert fp["records"][0] == 11
    assert fp["crosswalk"][0] == 11
    assert fp["entities"][0] == 9
    assert fp["claims"][0] == 7  # rejected row kept as a claim
    assert fp["edges"][0] == 5  # two claims for Rian -directed-> Knives Out make one edge; rejected none
    assert fp["runs"][0] == 2


def test_remerge_same_run_adds_nothing(store_path: Path) -> None:
    before = fingerprint(store_path)
    with Store.open(store_path) as store:
        r1 = merge_entities(store, records(), crosswalk(), matching_run())
        r2 = merge_relations(store, relations(), extraction_run())
    assert r1.total == 0 and r2.total == 0, (r1, r2)
    assert fingerprint(store_path) == before
    check_invariants(store_path)


def test_rerun_of_matching_with_same_ids_changes_nothing(store_path: Path) -> None:
    before = fingerprint(store_path)
    with Store.open(store_path) as store:
        result = merge_entities(store, records(), crosswalk("match-2"), matching_run("match-2"))
    assert result.changes["entities"] == 0 and result.changes["crosswalk"] == 0
    after = fingerprint(store_path)
    assert {t: v for t, v in after.items() if t != "runs"} == {t: v for t, v in before.items() if t != "runs"}
    assert after["runs"][0] == before["runs"][0] + 1


def test_rerun_with_new_engine_ids_keeps_stored_ids(store_path: Path) -> None:
    """A matching engine that renames its clusters must not duplicate entities or break edges."""
    rename = {"E-knives": "X1", "P-rian": "X2", "E-mother": "X3"}
    with Store.open(store_path) as store:
        merge_entities(store, records(), crosswalk("match-2", rename), matching_run("match-2"))
    ids = {r[0] for r in rows(store_path, "SELECT entity_id FROM entities")}
    assert "X1" not in ids and "E-knives" in ids and len(ids) == 9
    aliases = dict(rows(store_path, "SELECT alias_id, entity_id FROM id_aliases"))
    assert aliases == {"X1": "E-knives", "X2": "P-rian", "X3": "E-mother"}
    # relations that use the engine's new ids land on the stored entities
    extra = table(RELATIONS, [rel("X2", "acted_in", "X1", "doc-cameo", 0.5, run_id="extract-2")])
    with Store.open(store_path) as store:
        result = merge_relations(store, extra, extraction_run("extract-2"))
    assert result.changes["edges"] == 1
    assert rows(store_path, "SELECT subject_id, object_id FROM edges WHERE relation = 'acted_in' "
                "AND subject_id = 'P-rian'") == [("P-rian", "E-knives")]
    check_invariants(store_path)


def test_record_moving_to_another_entity_updates_both(store_path: Path) -> None:
    """Matching splits the tmdb Knives Out record off; a later run merges it back."""
    cw = crosswalk("match-2").to_pylist()
    for row in cw:
        if row["source_id"] == "546554":
            row["entity_id"] = "E-knives-tmdb"
    from schemas.tables import CROSSWALK

    with Store.open(store_path) as store:
        merge_entities(store, records().slice(0, 0), table(CROSSWALK, cw), matching_run("match-2"))
    assert rows(store_path, "SELECT entity_id, n_records, status FROM entities WHERE entity_id LIKE 'E-knives%' "
                "ORDER BY 1") == [("E-knives", 1, "active"), ("E-knives-tmdb", 1, "active")]
    assert rows(store_path, "SELECT count(*) FROM names WHERE entity_id = 'E-knives-tmdb'") == [(1,)]
    with Store.open(store_path) as store:
        merge_entities(store, records().slice(0, 0), crosswalk("match-3"), matching_run("match-3"))
    assert rows(store_path, "SELECT entity_id, n_records, status, merged_into FROM entities "
                "WHERE entity_id LIKE 'E-knives%' ORDER BY 1") == [
        ("E-knives", 2, "active", None), ("E-knives-tmdb", 0, "retired", "E-knives")]
    with Graph.open(store_path) as g:
        assert g.entity("E-knives-tmdb").merged_into == "E-knives"
    assert rows(store_path, "SELECT count(*) FROM names WHERE entity_id = 'E-knives-tmdb'") == [(0,)]
    assert rows(store_path, "SELECT count(*) FROM name_tokens WHERE entity_id = 'E-knives-tmdb'") == [(0,)]
    check_invariants(store_path)


def test_changed_record_updates_entity_name_and_names(store_path: Path) -> None:
    recs = records().to_pylist()
    recs[4] = rec("imdb", "tt6751668", "movie", "Parasite (Gisaengchung)", 2019, aliases=["기생충"])
    from schemas.tables import RECORDS

    with Store.open(store_path) as store:
        result = merge_entities(store, table(RECORDS, recs), crosswalk("match-2"), matching_run("match-2"))
    assert result.changes["records"] == 1 and result.changes["entities"] == 1
    assert rows(store_path, "SELECT name FROM entities WHERE entity_id = 'E-parasite'") == [
        ("Parasite (Gisaengchung)",)
    ]
    names = {r[0] for r in rows(store_path, "SELECT name FROM names WHERE entity_id = 'E-parasite'")}
    assert names == {"Parasite (Gisaengchung)", "기생충"}
    check_invariants(store_path)  # the old alias's words left name_tokens and token_df with it
    with Graph.open(store_path) as g:
        assert g.find("gisaengchung")["entity_id"].to_list() == ["E-parasite"]


def test_canonical_name_is_the_most_common(tmp_path: Path) -> None:
    from schemas.tables import CROSSWALK, RECORDS

    recs = table(RECORDS, [rec("a", "1", "movie", "Se7en", 1995), rec("b", "2", "movie", "Seven", 1995),
                           rec("c", "3", "movie", "Seven", 1996)])
    cw = table(CROSSWALK, [{"source": s, "source_id": i, "entity_id": "M", "type": "movie", "run_id": "m"}
                           for s, i in (("a", "1"), ("b", "2"), ("c", "3"))])
    with Store.open(tmp_path / "g.duckdb") as store:
        merge_entities(store, recs, cw, RunInfo("m", "matching"))
    assert rows(tmp_path / "g.duckdb", "SELECT name, year, n_records FROM entities") == [("Seven", 1995, 3)]


def test_entity_may_hold_records_of_one_type_group(tmp_path: Path) -> None:
    """Sources disagree on whether a title is a movie or a series: the entity takes the crosswalk's type."""
    from schemas.tables import CROSSWALK, RECORDS

    recs = table(RECORDS, [rec("a", "1", "movie", "Heat", 1995), rec("b", "2", "series", "Heat", 1995),
                           rec("c", "3", "series", "Heat", 1995)])

    def cw(type_: str, run_id: str) -> object:
        return table(CROSSWALK, [{"source": s, "source_id": i, "entity_id": "H", "type": type_, "run_id": run_id}
                                 for s, i in (("a", "1"), ("b", "2"), ("c", "3"))])

    path = tmp_path / "g.duckdb"
    with Store.open(path) as store:
        merge_entities(store, recs, cw("series", "m1"), RunInfo("m1", "matching"))
    assert rows(path, "SELECT type, n_records FROM entities") == [("series", 3)]
    with Store.open(path) as store:  # a later run's majority says movie: same id, type updated (one group)
        assert merge_entities(store, recs, cw("movie", "m2"), RunInfo("m2", "matching")).changes["entities"] == 1
    assert rows(path, "SELECT entity_id, type FROM entities") == [("H", "movie")]
    with Store.open(path) as store, pytest.raises(StoreError, match="type group"):
        merge_entities(store, recs, cw("book", "m3"), RunInfo("m3", "matching"))
    assert rows(path, "SELECT type FROM entities") == [("movie",)]


def test_symmetric_relation_is_one_edge(store_path: Path) -> None:
    both = table(RELATIONS, [
        rel("P-rian", "spouse_of", "P-bong", "d1", 0.5, run_id="x", object_type="person"),
        rel("P-bong", "spouse_of", "P-rian", "d2", 0.7, run_id="x", object_type="person"),
    ])
    with Store.open(store_path) as store:
        merge_relations(store, both, RunInfo("x", "extraction"))
    assert rows(store_path, "SELECT subject_id, object_id, n_evidence, round(confidence::DOUBLE, 2) FROM edges "
                "WHERE relation = 'spouse_of'") == [("P-bong", "P-rian", 2, 0.7)]
    check_invariants(store_path)


def test_new_evidence_from_another_run_raises_confidence(store_path: Path) -> None:
    extra = table(RELATIONS, [rel("P-craig", "acted_in", "E-knives", "doc-craig", 0.99, run_id="extract-2")])
    with Store.open(store_path) as store:
        result = merge_relations(store, extra, extraction_run("extract-2"))
    assert result.changes == {"runs": 1, "claims": 1, "edges": 1}
    with Graph.open(store_path) as g:
        ev = g.why("P-craig", "acted_in", "E-knives")
        assert sorted(ev["run_id"].to_list()) == ["extract-1", "extract-2"]
        edge = g.relations(type="acted_in")
        assert edge["n_evidence"].to_list() == [2] and edge["first_run"].to_list() == ["extract-1"]
        assert edge["confidence"].to_list()[0] == pytest.approx(0.99)


def test_unlinked_accepted_rows_kept_as_claims_when_allowed(store_path: Path) -> None:
    row = rel("P-rian", "directed", "E-knives", "doc-x", 0.8, run_id="x3")
    row["object_id"] = None
    with Store.open(store_path) as store:
        result = merge_relations(store, table(RELATIONS, [row]), RunInfo("x3", "extraction"), allow_unlinked=True)
    assert result.changes["claims"] == 1 and result.changes["edges"] == 0


def test_concurrent_reader_sees_snapshot(store_path: Path) -> None:
    """A reader in the same process sees the store before or after a merge, never half of it."""
    import threading

    from schemas.tables import CROSSWALK, RECORDS

    n = 20_000
    recs = table(RECORDS, [rec("bulk", str(i), "movie", f"Film {i}", 2000) for i in range(n)])
    cw = table(CROSSWALK, [{"source": "bulk", "source_id": str(i), "entity_id": f"B{i}", "type": "movie",
                            "run_id": "bulk"} for i in range(n)])
    g = Graph.open(store_path, read_only=False)
    seen: set[tuple[int, int, int]] = set()
    done = threading.Event()

    def merge() -> None:
        try:
            g.merge_entities(recs, cw, RunInfo("bulk", "matching"))
        finally:
            done.set()

    t = threading.Thread(target=merge)
    t.start()
    while not done.is_set():
        counts = g.sql("SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM entities), "
                       "(SELECT count(*) FROM names)").row(0)
        seen.add(counts)
    t.join()
    g.close()
    assert seen <= {(11, 9, 17), (11 + n, 9 + n, 17 + n)}, seen
    assert (11, 9, 17) in seen  # the reader did run while the merge was under way


def test_repeated_rows_in_one_input_are_one_claim(store_path: Path) -> None:
    """The same claim twice in a run (say, two chunks quoting the same span) is evidence once; the more confident
    copy is kept, whichever comes first."""
    row = rel("P-craig", "acted_in", "E-mother17", "doc-dup", 0.4, run_id="x")
    twice = table(RELATIONS, [row, {**row, "confidence": 0.8}, row])
    with Store.open(store_path) as store:
        result = merge_relations(store, twice, RunInfo("x", "extraction"))
    assert result.changes["claims"] == 1 and result.changes["edges"] == 1
    assert rows(store_path, "SELECT n_evidence, round(confidence::DOUBLE, 2) FROM edges "
                "WHERE subject_id = 'P-craig' AND object_id = 'E-mother17'") == [(1, 0.8)]
    check_invariants(store_path)


@pytest.mark.parametrize("copies", [2, 3])
def test_repeats_keep_the_most_confident_copy_in_any_row_order(store_path: Path, copies: int) -> None:
    """Claims repeated in one input, mixed with single ones: one claim per key, the most confident copy (ties by
    reason), whatever the row order. Two copies per key and more take different ways to find the losing copies;
    both must store the same rows."""
    singles = [rel("P-bale", "acted_in", "E-knives", f"doc-{i}", 0.5, run_id="x") for i in range(4)]
    a = rel("P-craig", "acted_in", "E-mother17", "doc-a", 0.4, run_id="x")
    b = rel("P-bale", "acted_in", "E-parasite", "doc-b", 0.7, run_id="x", reason="r2")
    c = rel("P-bong", "acted_in", "E-mother", "doc-c", 0.6, run_id="x")
    conf = (0.8, 0.3, 0.55)[:copies]
    repeated = [{**a, "confidence": x} for x in conf] + [{**b, "reason": r} for r in ("r2", "r1", "r3")[:copies]]
    repeated += [c] * copies  # identical copies
    expected = {("doc-a", 0.8, None), ("doc-b", 0.7, "r1"), ("doc-c", 0.6, None)} | {(f"doc-{i}", 0.5, None)
                                                                                        for i in range(4)}
    for i, order in enumerate((singles + repeated, repeated[::-1] + singles[::-1])):
        path = store_path.parent / f"g{copies}-{i}.duckdb"
        with Store.open(path) as store:
            merge_entities(store, records(), crosswalk(), matching_run())
            result = merge_relations(store, table(RELATIONS, order), RunInfo("x", "extraction"))
            assert merge_relations(store, table(RELATIONS, order), RunInfo("x", "extraction")).total == 0
        assert result.changes["claims"] == 7 and result.changes["edges"] == 4  # the singles are one edge
        got = rows(path, "SELECT doc_id, round(confidence::DOUBLE, 2), reason FROM claims")
        assert set(got) == expected and len(got) == 7
        check_invariants(path)


def test_bulk_merge_rebuilds_indexes_after_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A merge that grows a table a lot drops its indexes first and builds them again over committed rows;
    a bulk merge that fails gets them back too."""
    from kg.store import merge
    from kg.store.schema import INDEXES

    monkeypatch.setattr(merge, "BULK_MIN_ROWS", 1)
    path = tmp_path / "g.duckdb"
    with Store.open(path) as store:
        r1 = merge_entities(store, records(), crosswalk(), matching_run())
        r2 = merge_relations(store, relations(), extraction_run())
        bad = table(RELATIONS, [rel("P-nobody", "directed", "E-knives", "d", run_id="y")])
        with pytest.raises(StoreError, match="dangling"):
            merge_relations(store, bad, RunInfo("y", "extraction"))
    assert {"entities_id", "names_entity", "name_tokens_token"} <= set(r1.rebuilt_indexes)
    assert {"claims_edge", "edges_subject", "edges_object"} <= set(r2.rebuilt_indexes)
    assert {r[0] for r in rows(path, "SELECT index_name FROM duckdb_indexes()")} == set(INDEXES)
    check_invariants(path)
    with Graph.open(path) as g:
        assert g.neighbors("P-bong", direction="out").height == 2


def test_concurrent_reader_sees_snapshot_during_relation_merge(store_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A bulk relation merge in one thread (indexes dropped, rows inserted, indexes rebuilt); a reader in another
    sees the graph before or after, with every edge's evidence count matching its claims, never half of it."""
    import threading

    from kg.store import merge
    from tests.store.crash_worker import bulk, sequels

    monkeypatch.setattr(merge, "BULK_MIN_ROWS", 1000)
    g = Graph.open(store_path, read_only=False)
    g.merge_entities(*bulk(8192, "bulk"), RunInfo("bulk", "matching"))
    rels = sequels(60_000, 4096, "bulk", "x")
    state = "SELECT (SELECT count(*) FROM claims), (SELECT count(*) FROM edges), " \
            "(SELECT sum(n_evidence) FROM edges) = (SELECT count(*) FROM claims WHERE edge_id IS NOT NULL)"
    start = g.sql(state).row(0)
    seen: set[tuple] = set()
    done = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            g.merge_relations(rels, RunInfo("x", "extraction"))
        except BaseException as exc:  # reported by the main thread
            failed.append(exc)
        finally:
            done.set()

    t = threading.Thread(target=run)
    t.start()
    while not done.is_set():
        seen.add(g.sql(state).row(0))
        assert g.neighbors("P-bong", direction="out").height == 2
    t.join()
    end = g.sql(state).row(0)
    g.close()
    assert not failed, failed
    assert start[2] and end[2] and end[0] == start[0] + 60_000
    assert seen <= {start, end}, seen
    assert start in seen  # the reader did run while the merge was under way
    check_invariants(store_path)
