"""Hand-built inputs for the store tests: a few movies, people, directed/acted_in relations."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa

from kg.store import TABLES, RunInfo, Store, merge_entities, merge_relations
from schemas.tables import CROSSWALK, RECORDS, RELATIONS


def table(schema: pa.Schema, rows: list[dict]) -> pa.Table:
    """An Arrow table of ``schema`` from dict rows (missing keys are null)."""
    return pa.table({f.name: [r.get(f.name) for r in rows] for f in schema}, schema=schema)


def rec(source: str, source_id: str, type_: str, name: str, year: int | None = None, **kw) -> dict:
    return {"source": source, "source_id": source_id, "type": type_, "name": name, "year": year, **kw}


RECORD_ROWS = [
    rec("imdb", "tt8946378", "movie", "Knives Out", 2019, aliases=["Knives Out (2019)", "À couteaux tirés"]),
    rec("tmdb", "546554", "movie", "Knives Out", 2019),
    rec("imdb", "tt1216496", "movie", "Mother", 2009, aliases=["Madeo", "마더"]),
    rec("imdb", "tt5109784", "movie", "Mother!", 2017),
    rec("imdb", "tt6751668", "movie", "Parasite", 2019, aliases=["Gisaengchung"]),
    rec("imdb", "nm0426059", "person", "Rian Johnson", 1973),
    rec("tmdb", "p67367", "person", "Rian Johnson", 1973),
    rec("imdb", "nm0094435", "person", "Bong Joon Ho", 1969, aliases=["Joon-ho Bong"]),
    rec("imdb", "nm0185819", "person", "Daniel Craig", 1968),
    rec("imdb", "nm0000288", "person", "Christian Bale", 1974),
    rec("imdb", "nm0001467", "person", "Darren Aronofsky", 1969),
]

ENTITY_OF = {
    ("imdb", "tt8946378"): ("E-knives", "movie"),
    ("tmdb", "546554"): ("E-knives", "movie"),
    ("imdb", "tt1216496"): ("E-mother", "movie"),
    ("imdb", "tt5109784"): ("E-mother17", "movie"),
    ("imdb", "tt6751668"): ("E-parasite", "movie"),
    ("imdb", "nm0426059"): ("P-rian", "person"),
    ("tmdb", "p67367"): ("P-rian", "person"),
    ("imdb", "nm0094435"): ("P-bong", "person"),
    ("imdb", "nm0185819"): ("P-craig", "person"),
    ("imdb", "nm0000288"): ("P-bale", "person"),
    ("imdb", "nm0001467"): ("P-aronofsky", "person"),
}


def records() -> pa.Table:
    return table(RECORDS, RECORD_ROWS)


def crosswalk(run_id: str = "match-1", rename: dict[str, str] | None = None) -> pa.Table:
    rename = rename or {}
    rows = [
        {"source": s, "source_id": i, "entity_id": rename.get(e, e), "type": t, "run_id": run_id}
        for (s, i), (e, t) in ENTITY_OF.items()
    ]
    return table(CROSSWALK, rows)


def rel(subject_id: str, relation: str, object_id: str, doc: str, conf: float = 0.9, status: str = "accepted",
        run_id: str = "extract-1", subject_type: str = "person", object_type: str = "movie", **kw) -> dict:
    return {
        "subject": subject_id, "subject_type": subject_type, "relation": relation, "object": object_id,
        "object_type": object_type, "subject_id": subject_id, "object_id": object_id, "confidence": conf,
        "doc_id": doc, "evidence": f"{subject_id} {relation} {object_id}", "start": 0, "end": 20,
        "status": status, "model": "test-model", "prompt_version": "v1", "run_id": run_id, **kw,
    }


def relations(run_id: str = "extract-1") -> pa.Table:
    rows = [
        rel("P-rian", "directed", "E-knives", "doc-knives", 0.95, run_id=run_id),
        rel("P-rian", "directed", "E-knives", "doc-rian", 0.85, run_id=run_id),
        rel("P-craig", "acted_in", "E-knives", "doc-knives", 0.9, run_id=run_id),
        rel("P-bong", "directed", "E-mother", "doc-mother", 0.97, run_id=run_id),
        rel("P-bong", "directed", "E-parasite", "doc-parasite", 0.96, run_id=run_id),
        rel("P-aronofsky", "directed", "E-mother17", "doc-mother17", 0.93, run_id=run_id),
        rel("P-bale", "acted_in", "E-mother17", "doc-mother17", 0.3, status="rejected", reason="wrong film",
            run_id=run_id),
    ]
    return table(RELATIONS, rows)


def matching_run(run_id: str = "match-1") -> RunInfo:
    return RunInfo(run_id, "matching", config={"threshold": 0.8})


def extraction_run(run_id: str = "extract-1") -> RunInfo:
    return RunInfo(run_id, "extraction", config={"model": "test-model"})


def build(path: Path) -> Path:
    """A small store with the hand-built entities and relations."""
    with Store.open(path) as store:
        merge_entities(store, records(), crosswalk(), matching_run())
        merge_relations(store, relations(), extraction_run())
    return path


def fingerprint(path: Path) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum of every store table: equal iff contents are equal."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return fingerprint_of(con)
    finally:
        con.close()


def fingerprint_of(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str]]:
    """``fingerprint`` through an open connection (a process with the store open read-write cannot open it
    again read-only)."""
    out = {}
    for t in TABLES:
        count, digest = con.execute(
            f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM {t} AS t"
        ).fetchall()[0]
        # runs.merged_at is when a run was first merged: part of the state, compared like the rest
        out[t] = (count, hashlib.sha256(digest.encode()).hexdigest()[:16])
    return out


# Natural keys of the keyless tables: merges must keep them unique.
KEYS = {
    "records": "source, source_id",
    "entities": "entity_id",
    "crosswalk": "source, source_id",
    "id_aliases": "alias_id",
    "names": "entity_id, source, source_id, kind, name",
    "name_tokens": "token, entity_id, norm",
    "token_df": "token",
    "claims": "claim_id",
    "edges": "edge_id",
}


def check_invariants(path: Path) -> None:
    """What merges promise beyond their own outputs: unique keys, and derived tables equal to a recount."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        for table, key in KEYS.items():
            sql = f"SELECT {key}, count(*) FROM {table} GROUP BY ALL HAVING count(*) > 1 LIMIT 3"
            dup = con.execute(sql).fetchall()
            assert not dup, (table, dup)
        off = con.execute(
            "SELECT e.edge_id, e.n_evidence, c.n, e.confidence, c.conf FROM edges e FULL JOIN ("
            "SELECT edge_id, count(*) AS n, max(confidence) AS conf FROM claims WHERE edge_id IS NOT NULL "
            "GROUP BY edge_id) c USING (edge_id) "
            "WHERE e.n_evidence IS DISTINCT FROM c.n OR e.confidence IS DISTINCT FROM c.conf LIMIT 3"
        ).fetchall()
        assert not off, ("edges vs claims", off)
        tokens = con.execute(
            "SELECT * FROM (SELECT DISTINCT unnest(kg_tokens(n.norm)) AS token, n.entity_id, n.norm, e.type, e.year "
            "FROM names n JOIN entities e USING (entity_id) WHERE e.status = 'active') d "
            "FULL JOIN name_tokens t USING (token, entity_id, norm) "
            "WHERE t.token IS NULL OR d.token IS NULL OR t.type IS DISTINCT FROM d.type "
            "OR t.year IS DISTINCT FROM d.year LIMIT 3"
        ).fetchall()
        assert not tokens, ("name_tokens vs names", tokens)
        df = con.execute(
            "SELECT * FROM token_df d FULL JOIN (SELECT token, count(*) AS n FROM name_tokens GROUP BY token) c "
            "USING (token) WHERE d.df IS DISTINCT FROM c.n LIMIT 3"
        ).fetchall()
        assert not df, ("token_df vs name_tokens", df)
    finally:
        con.close()


def hold(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the store read-write (as a merge does) for ``seconds``, then letting go."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "c.execute('CREATE TABLE IF NOT EXISTS held (x INTEGER)'); "
         "print('ready', flush=True); time.sleep(float(sys.argv[2])); c.close()",
         str(path), str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    return holder
