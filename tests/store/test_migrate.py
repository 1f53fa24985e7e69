"""Schema migrations: a real version-1 store file upgraded to the current version in one transaction."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import typer
from typer.testing import CliRunner

from kg.graph import Graph
from kg.store import SCHEMA_VERSION, Store, StoreError, merge_entities, merge_relations, migrate
from kg.store.cli import register
from kg.store.schema import INDEXES, MIGRATIONS, NORM_MACRO, TOKENS_BY_SPLIT_MACRO, TOKENS_MACRO, Migration
from tests.store.helpers import (
    build,
    check_invariants,
    crosswalk,
    extraction_run,
    fingerprint,
    matching_run,
    records,
    relations,
)

V1_TABLES = ("runs", "records", "entities", "crosswalk", "id_aliases", "names", "edges")


def v1_store(tmp_path: Path) -> tuple[Path, Path]:
    """A schema-1 file made with version 1's own DDL, holding the graph that ``build`` makes now; and that store."""
    current = build(tmp_path / "current.duckdb")
    old = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(old))
    try:
        for statement in MIGRATIONS[0].statements:
            con.execute(statement)
        con.execute("INSERT INTO kg_meta VALUES ('schema_version', '1')")
        con.execute("INSERT INTO schema_history VALUES (1, ?, now())", [MIGRATIONS[0].description])
        con.execute("ATTACH ? AS cur (READ_ONLY)", [str(current)])
        for table in V1_TABLES:
            if table != "entities":
                con.execute(f"INSERT INTO {table} SELECT * FROM cur.{table}")
        con.execute("INSERT INTO entities SELECT * EXCLUDE (merged_into) FROM cur.entities")  # added in v3
        con.execute("INSERT INTO claims SELECT * EXCLUDE (merge_id, edge_key) FROM cur.claims")  # added in v2, v4
        edge = con.execute("SELECT edge_id FROM cur.edges ORDER BY edge_id LIMIT 1").fetchone()[0]
        con.execute("INSERT INTO reviews VALUES (?, 'edge', 'correct', 'ana', 'checked', now())", [edge])
        con.execute("DETACH cur")
    finally:
        con.close()
    return old, current


def table_rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(con.execute(sql).fetchall(), key=repr)
    finally:
        con.close()


def test_v1_store_migrates_to_what_a_fresh_build_holds(tmp_path: Path) -> None:
    old, current = v1_store(tmp_path)
    with pytest.raises(StoreError, match="schema version 1.*kg migrate"):
        Graph.open(old)
    with pytest.raises(StoreError, match="kg migrate"):
        Store.open(old)  # read-write without migrate=True refuses too

    done = migrate(old)
    assert (done.from_version, done.to_version) == (1, SCHEMA_VERSION)
    assert len(done.steps) == SCHEMA_VERSION - 1
    for table in (*V1_TABLES, "name_tokens", "token_df"):
        assert table_rows(old, f"SELECT * FROM {table}") == table_rows(current, f"SELECT * FROM {table}"), table
    claims = "SELECT * EXCLUDE (merge_id) FROM claims"
    assert table_rows(old, claims) == table_rows(current, claims)  # edge_key computed for the old claims too
    ddl = "SELECT sql FROM duckdb_tables() WHERE table_name = 'claims'"
    assert table_rows(old, ddl) == table_rows(current, ddl)  # md5 keys stored uncompressed in both
    assert table_rows(old, "SELECT target_kind, left_id, label, reviewer, note FROM reviews")[0][2:] == (
        "correct", "ana", "checked")
    assert {r[0] for r in table_rows(old, "SELECT index_name FROM duckdb_indexes()")} == set(INDEXES)
    assert table_rows(old, "SELECT version FROM schema_history") == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    check_invariants(old)

    # the migrated store answers queries and stays idempotent: the runs it holds merge again as no-ops
    with Graph.open(old) as g:
        assert g.find("knives out", type="movie")["entity_id"].to_list()[0] == "E-knives"
        assert g.neighbors("P-bong", direction="out").height == 2
    before = fingerprint(old)
    with Store.open(old) as store:
        assert merge_entities(store, records(), crosswalk(), matching_run()).total == 0
        assert merge_relations(store, relations(), extraction_run()).total == 0
    assert fingerprint(old) == before
    assert migrate(old).steps == []  # nothing left to do


def test_words_by_split_are_the_words_by_regex() -> None:
    """Version 4's kg_tokens splits on spaces where version 2's used a regex: the same words, in the same order."""
    names = ["Knives Out 2", "Rocky IV", "a b c 1 22 x9 9x", "Mother!", "  Glass   Onion: A Knives Out Mystery ",
             "Жизнь 2 ж2 é", "कि 3", "Bong Joon-ho", "Amélie", "2001: A Space Odyssey", "", "x", "7"]
    con = duckdb.connect()
    try:
        con.execute(NORM_MACRO)
        got = {}
        for macro in (TOKENS_MACRO, TOKENS_BY_SPLIT_MACRO):
            con.execute(macro)
            got[macro] = con.execute("SELECT kg_tokens(kg_norm(n)) FROM unnest(?::VARCHAR[]) t(n)", [names]).fetchall()
    finally:
        con.close()
    assert got[TOKENS_MACRO] == got[TOKENS_BY_SPLIT_MACRO]
    assert sorted(got[TOKENS_MACRO][0][0]) == ["2", "knives", "out"]


def test_failed_migration_leaves_store_unchanged(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kg.store import db

    step = Migration(SCHEMA_VERSION + 1, "broken", ("ALTER TABLE entities ADD COLUMN x INTEGER", "SELEKT 1"))
    monkeypatch.setattr(db, "MIGRATIONS", [*MIGRATIONS, step])
    monkeypatch.setattr(db, "SCHEMA_VERSION", step.version)
    before = fingerprint(store_path)
    with pytest.raises(StoreError, match="migration failed and was rolled back"):
        migrate(store_path)
    monkeypatch.undo()
    assert fingerprint(store_path) == before
    with Store.open(store_path, read_only=True) as store:
        assert store.version() == SCHEMA_VERSION


def test_next_migration_applies_on_kg_migrate(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path a future schema change takes: append a Migration, and `kg migrate` applies it."""
    from kg.store import db

    step = Migration(SCHEMA_VERSION + 1, "add entities.wikidata", ("ALTER TABLE entities ADD COLUMN wikidata VARCHAR",))
    monkeypatch.setattr(db, "MIGRATIONS", [*MIGRATIONS, step])
    monkeypatch.setattr(db, "SCHEMA_VERSION", step.version)
    app = typer.Typer(no_args_is_help=True)

    @app.callback()
    def _root() -> None:
        """kg (test app)"""

    register(app)
    runner = CliRunner()
    result = runner.invoke(app, ["migrate", "--db", str(store_path)])
    assert result.exit_code == 0, result.output
    assert f"schema version {SCHEMA_VERSION} -> {step.version}" in result.output
    assert "add entities.wikidata" in result.output
    result = runner.invoke(app, ["migrate", "--db", str(store_path)])
    assert result.exit_code == 0 and "already at schema version" in result.output
    with Store.open(store_path, read_only=True) as store:
        assert store.cursor().execute("SELECT count(wikidata) FROM entities").fetchall() == [(0,)]
    result = runner.invoke(app, ["migrate", "--db", str(store_path.parent / "missing.duckdb")])
    assert result.exit_code == 2 and "no graph store there to migrate" in result.output
