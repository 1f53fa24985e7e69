"""Graph store load: 2M entities and 10M relations through the real merge path, wall time and peak memory.

Generates a graph shaped like a film catalogue (people, works, companies,
genre and country hubs; who acted in / directed / wrote what; each entity
picked with a Zipf-like skew, so a few hubs hold most edges and most nodes
have one or two), writes it as RECORDS / CROSSWALK / RELATIONS Parquet, then
loads it in a fresh child process through ``merge_entities`` and
``merge_relations``, as a pipeline would:

1. the entities (records + crosswalk of one matching run);
2. extraction run A (90 % of the relations) into the store: a bulk merge;
3. extraction run B (the other 10 %): an incremental merge into a full store;
4. run B again: idempotent, must add 0 rows;
5. run B again, staged (``kg.store.staged``): the same 0 rows, plus what
   staging costs (copying the file, checkpoint, rename) over step 4.

The child reports each phase's wall time and its peak resident memory
(VmHWM). The peer, in another fresh child, is plain DuckDB on the same
Parquet: ``CREATE TABLE AS`` of the same rows into bare tables plus the same
lookup indexes, with none of the merge's checks, keys, ids or provenance:
the floor a load cannot go under, and the ratio says what the guarantees
cost.

    .venv/bin/python bench/store_load.py                 # full size: 2M entities, 10M relations
    .venv/bin/python bench/store_load.py --scale 0.01    # CI size
    .venv/bin/python bench/store_load.py --keep out/g    # keep the store for bench/store_queries.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from kg.sample import words
from schemas.tables import CROSSWALK, RECORDS, RELATIONS

ROOT = Path(__file__).resolve().parents[1]
ENTITIES = 2_000_000  # at --scale 1
RELATIONS_PER_ENTITY = 5  # 10M relations at --scale 1
RUN_B_SHARE = 0.1

# Entity kinds: (type, id prefix, share of entities). Genres and countries are fixed small hubs.
KINDS = (("person", "P", 0.45), ("movie", "M", 0.35), ("series", "S", 0.05), ("episode", "T", 0.14),
         ("company", "C", 0.01))
GENRES = words.GENRES
COUNTRIES = tuple(f"{c[2]} Republic {k}" for k in range(25) for c in words.COUNTRIES)  # 200 countries

# Relation mix: (relation, subject kinds, object kinds, share of relations, accepted share).
MIX = (
    ("acted_in", ("person",), ("movie", "series", "episode"), 0.52, 0.95),
    ("directed", ("person",), ("movie", "series", "episode"), 0.07, 0.95),
    ("wrote", ("person",), ("movie", "series", "episode"), 0.08, 0.9),
    ("production_company", ("movie", "series"), ("company",), 0.05, 0.95),
    ("has_genre", ("movie", "series", "episode"), ("genre",), 0.15, 0.97),
    ("country_of_origin", ("movie", "series"), ("country",), 0.09, 0.97),
    ("citizen_of", ("person",), ("country",), 0.03, 0.9),
    ("spouse_of", ("person",), ("person",), 0.01, 0.8),
)
ZIPF = 0.85  # exponent of the popularity skew: weight of the k-th most popular entity ~ 1 / k**ZIPF


def _series(values: tuple[str, ...], idx: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(pl.Series(idx, dtype=pl.Int64))


def _place(rng: np.random.Generator, n: int) -> pl.Series:
    syl = words.SYLLABLES
    parts = [_series(syl, rng.integers(0, len(syl), n)) for _ in range(3)]
    return pl.select(pl.concat_str(parts).str.to_titlecase()).to_series()


def _names(rng: np.random.Generator, kind: str, n: int) -> pl.Series:
    """Display names: people 'First Surname', works 'The Adjective Noun of Place' and friends."""
    if kind == "person":
        first = _series(words.FIRST_NAMES, rng.integers(0, len(words.FIRST_NAMES), n))
        syl = words.SYLLABLES
        surname = pl.select(pl.concat_str([
            _series(syl, rng.integers(0, len(syl), n)), _series(syl, rng.integers(0, len(syl), n)),
            _series(words.SURNAME_ENDINGS, rng.integers(0, len(words.SURNAME_ENDINGS), n)),
        ]).str.to_titlecase()).to_series()
        return pl.select(pl.concat_str([first, surname], separator=" ")).to_series()
    if kind == "company":
        return pl.select(pl.concat_str([_place(rng, n), pl.lit(" Pictures")])).to_series()
    adj = _series(tuple(a[0] for a in words.ADJECTIVES), rng.integers(0, len(words.ADJECTIVES), n))
    noun = _series(tuple(a[0] for a in words.NOUNS), rng.integers(0, len(words.NOUNS), n))
    frame = pl.DataFrame({"a": adj, "n": noun, "p": _place(rng, n), "pat": rng.integers(0, 4, n)})
    title = (
        pl.when(pl.col("pat") == 0).then(pl.format("The {} {} of {}", "a", "n", "p"))
        .when(pl.col("pat") == 1).then(pl.format("{}: The {} {}", "p", "a", "n"))
        .when(pl.col("pat") == 2).then(pl.format("{} {} in {}", "a", "n", "p"))
        .otherwise(pl.format("{} and the {} {}", "p", "a", "n"))
    )
    common = _series(words.COMMON_TITLES, rng.integers(0, len(words.COMMON_TITLES), n))
    title = pl.when(pl.lit(pl.Series(rng.random(n) < 0.02))).then(pl.lit(common)).otherwise(title)
    return frame.select(title).to_series()


def entities(scale: float, seed: int = 5) -> pl.DataFrame:
    """entity_id, type, name, year: people, works and companies by KINDS, then the genre and country hubs."""
    rng = np.random.default_rng(seed)
    n_total = max(int(ENTITIES * scale), 200)
    parts = []
    for kind, prefix, share in KINDS:
        n = max(int(n_total * share), 5)
        year = np.where(rng.random(n) < 0.97, rng.integers(1900 if kind == "person" else 1920, 2024, n), -1)
        parts.append(pl.DataFrame({
            "entity_id": pl.Series(np.arange(n)).cast(pl.String).str.pad_start(8, "0").str.replace("^", prefix),
            "type": pl.Series([kind]).gather(np.zeros(n, np.int64)),
            "name": _names(rng, kind, n),
            "year": pl.Series(year, dtype=pl.Int32).replace(-1, None),
        }))
    for kind, prefix, names in (("genre", "G", GENRES), ("country", "N", COUNTRIES)):
        n = len(names)
        parts.append(pl.DataFrame({
            "entity_id": [f"{prefix}{i:04d}" for i in range(n)], "type": [kind] * n, "name": list(names),
            "year": pl.Series([None] * n, dtype=pl.Int32),
        }))
    return pl.concat(parts)


def entity_tables(ents: pl.DataFrame, run_id: str, seed: int = 6) -> tuple[pa.Table, pa.Table]:
    """RECORDS and CROSSWALK: every entity from source 'alpha', a quarter also from 'beta' (a variant name)."""
    rng = np.random.default_rng(seed)
    alpha = ents.select(source=pl.lit("alpha"), source_id=pl.col("entity_id").str.replace("^", "a"),
                        type="type", name="name", year="year", entity_id="entity_id")
    pick = pl.Series(rng.random(ents.height) < 0.25)
    beta = ents.filter(pick).select(
        source=pl.lit("beta"), source_id=pl.col("entity_id").str.replace("^", "b"), type="type",
        name=pl.when(pl.col("name").str.len_chars() % 3 == 0).then(pl.col("name").str.to_uppercase())
        .otherwise(pl.col("name")),
        year="year", entity_id="entity_id",
    )
    both = pl.concat([alpha, beta])
    n = both.height
    aliases = pl.when(pl.lit(pl.Series(rng.random(n) < 0.3))).then(
        pl.concat_list([pl.concat_str([pl.col("name"), pl.lit(" ("), pl.col("year").cast(pl.String), pl.lit(")")])])
    ).otherwise(pl.lit(None, pl.List(pl.String)))
    recs = both.with_columns(aliases=aliases, line=pl.int_range(1, n + 1, dtype=pl.Int64))
    records = pa.table(
        {f.name: (recs[f.name].to_arrow() if f.name in recs.columns else pa.nulls(n, f.type)) for f in RECORDS},
        schema=RECORDS,
    )
    crosswalk = both.select("source", "source_id", "entity_id", "type", run_id=pl.lit(run_id)).to_arrow()
    return records, crosswalk.cast(CROSSWALK)


def _zipf_pick(rng: np.random.Generator, n_pool: int, k: int) -> np.ndarray:
    """k indexes into a pool of n_pool, popular ones far more often (rank r has weight r**-ZIPF)."""
    weights = np.arange(1, n_pool + 1, dtype=np.float64) ** -ZIPF
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    ranks = np.searchsorted(cdf, rng.random(k))
    return rng.permutation(n_pool)[np.minimum(ranks, n_pool - 1)]  # popularity independent of id order


def relation_parts(ents: pl.DataFrame, n_relations: int, run_id: str, seed: int) -> Iterator[pa.Table]:
    """RELATIONS rows of one extraction run, one table per MIX entry, with mention text, document, quote, span
    and model (in parts, so 10M rows never sit in memory at once)."""
    rng = np.random.default_rng(seed)
    pools = {t: ents.filter(pl.col("type") == t) for t in ents["type"].unique()}
    n_docs = max(n_relations // 5, 1)
    for relation, domain, range_, share, accepted in MIX:
        k = max(int(n_relations * share), 1)
        sides = []
        for kinds in (domain, range_):
            pool = pl.concat([pools[t] for t in kinds])
            sides.append(pool[_zipf_pick(rng, pool.height, k)].select("entity_id", "type", "name"))
        s, o = sides
        rel = pl.DataFrame({
            "subject": s["name"], "subject_type": s["type"], "relation": pl.Series([relation]).gather(np.zeros(k, int)),
            "object": o["name"], "object_type": o["type"], "subject_id": s["entity_id"], "object_id": o["entity_id"],
            "confidence": pl.Series(np.round(rng.beta(5, 1.5, k), 3), dtype=pl.Float32),
            "status": pl.Series(np.where(rng.random(k) < accepted, "accepted", "rejected")),
            "doc_id": pl.Series(rng.integers(0, n_docs, k)).cast(pl.String).str.replace("^", "doc-"),
            "start": pl.Series(rng.integers(0, 4000, k).astype(np.int32)),
        }).with_columns(
            evidence=pl.concat_str([pl.col("subject"), pl.lit(" ("), pl.col("relation"), pl.lit(") "),
                                    pl.col("object")]),
            reason=pl.when(pl.col("status") == "rejected").then(pl.lit("not supported by the quote")),
            model=pl.lit("gemma3-270m-q4"), prompt_version=pl.lit("relations-v3"), run_id=pl.lit(run_id),
        ).with_columns(end=pl.col("start") + pl.col("evidence").str.len_chars().cast(pl.Int32))
        yield rel.select(RELATIONS.names).to_arrow().cast(RELATIONS)


def generate(scale: float, folder: Path, seed: int = 5) -> dict[str, int]:
    """Write records, crosswalk, run_a and run_b Parquet files under ``folder``; returns their row counts."""
    folder.mkdir(parents=True, exist_ok=True)
    ents = entities(scale, seed)
    records, crosswalk = entity_tables(ents, "match-1", seed + 1)
    pq.write_table(records, folder / "records.parquet", compression="zstd")
    pq.write_table(crosswalk, folder / "crosswalk.parquet", compression="zstd")
    counts = {"entities": ents.height, "records": records.num_rows, "crosswalk": crosswalk.num_rows}
    del records, crosswalk
    n_rel = int(ents.height * RELATIONS_PER_ENTITY)
    n_b = int(n_rel * RUN_B_SHARE)
    for name, n, run_id, s in (("run_a", n_rel - n_b, "extract-a", seed + 2), ("run_b", n_b, "extract-b", seed + 3)):
        counts[name] = 0
        with pq.ParquetWriter(folder / f"{name}.parquet", RELATIONS, compression="zstd") as writer:
            for part in relation_parts(ents, n, run_id, s):
                writer.write_table(part)
                counts[name] += part.num_rows
    return counts


# Both children print one JSON line per phase: {"phase", "seconds", "rows", "peak_mb"}.
CHILD_KG = """
import json, sys, time
import pyarrow.parquet as pq
from kg.store import RunInfo, Store, merge_entities, merge_relations, staged
d, db = sys.argv[1], sys.argv[2]
def hwm():
    return next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")) / 1024
cpu0 = time.process_time()
def say(phase, t, rows, **kw):
    global cpu0
    cpu, cpu0 = time.process_time() - cpu0, time.process_time()
    print(json.dumps({"phase": phase, "seconds": time.perf_counter() - t, "cpu_s": cpu, "rows": rows,
                      "peak_mb": hwm(), **kw}), flush=True)
def read(name):
    t = time.perf_counter()
    table = pq.read_table(f"{d}/{name}.parquet")
    say(f"read {name}", t, table.num_rows)
    return table
with Store.open(db) as store:
    records, crosswalk = read("records"), read("crosswalk")
    t = time.perf_counter()
    r = merge_entities(store, records, crosswalk, RunInfo("match-1", "matching"))
    say("merge entities", t, crosswalk.num_rows, changed=r.total, rebuilt=len(r.rebuilt_indexes))
    del records, crosswalk
    for run in ("run_a", "run_b"):
        relations = None  # free run A before reading run B
        relations = read(run)
        t = time.perf_counter()
        r = merge_relations(store, relations, RunInfo(run.replace("run_", "extract-"), "extraction"))
        say(f"merge relations {run[-1].upper()}", t, relations.num_rows, changed=r.total,
            rebuilt=len(r.rebuilt_indexes))
    t = time.perf_counter()
    r = merge_relations(store, relations, RunInfo("extract-b", "extraction"))
    say("re-merge relations B", t, relations.num_rows, changed=r.total, rebuilt=len(r.rebuilt_indexes))
t = time.perf_counter()
with staged(db) as store:
    r = merge_relations(store, relations, RunInfo("extract-b", "extraction"))
say("staged re-merge B", t, relations.num_rows, changed=r.total, rebuilt=len(r.rebuilt_indexes))
"""

CHILD_PEER = """
import json, sys, time
import duckdb
cpu0 = time.process_time()
d, db = sys.argv[1], sys.argv[2]
def hwm():
    return next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")) / 1024
con = duckdb.connect(db)
t = time.perf_counter()
con.execute("CREATE TABLE records AS SELECT * FROM read_parquet(?)", [f"{d}/records.parquet"])
con.execute("CREATE TABLE crosswalk AS SELECT * FROM read_parquet(?)", [f"{d}/crosswalk.parquet"])
con.execute("CREATE TABLE entities AS SELECT entity_id, any_value(c.type) AS type, min(name) AS name FROM crosswalk c "
            "JOIN records USING (source, source_id) GROUP BY entity_id")
con.execute("CREATE TABLE claims AS SELECT * FROM read_parquet([?, ?])", [f"{d}/run_a.parquet", f"{d}/run_b.parquet"])
con.execute("CREATE TABLE edges AS SELECT subject_id, relation, object_id, max(confidence) AS confidence, "
            "count(*) AS n FROM claims WHERE status = 'accepted' GROUP BY ALL")
for sql in ("CREATE INDEX e_id ON entities (entity_id)", "CREATE INDEX e_s ON edges (subject_id)",
            "CREATE INDEX e_o ON edges (object_id)", "CREATE INDEX c_e ON crosswalk (entity_id)", "CHECKPOINT"):
    con.execute(sql)
rows = con.execute("SELECT (SELECT count(*) FROM claims) + (SELECT count(*) FROM records)").fetchone()[0]
print(json.dumps({"phase": "plain DuckDB load", "seconds": time.perf_counter() - t, "rows": rows, "peak_mb": hwm(),
                  "cpu_s": time.process_time() - cpu0}))
"""


def run_child(code: str, data: Path, db: Path) -> list[dict]:
    done = subprocess.run([sys.executable, "-c", code, str(data), str(db)], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="1.0 = 2M entities and 10M relations")
    ap.add_argument("--workdir", type=Path, default=None, help="where to write (default: a temp folder, removed)")
    ap.add_argument("--keep", type=Path, default=None, help="copy the loaded store here (for store_queries.py)")
    ap.add_argument("--no-peer", action="store_true", help="skip the plain-DuckDB peer")
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kg-bench-store-"))
    try:
        t0 = time.perf_counter()
        n = generate(args.scale, work / "data")
        mb = sum(p.stat().st_size for p in (work / "data").glob("*.parquet")) / 1e6
        print(f"generated {n['entities']:,} entities ({n['records']:,} records), {n['run_a'] + n['run_b']:,} "
              f"relations (run A {n['run_a']:,}, run B {n['run_b']:,}) in {time.perf_counter() - t0:.0f} s; "
              f"parquet {mb:,.0f} MB")
        for stale in work.glob("*.duckdb*"):  # a kept --workdir: every run loads into fresh stores
            stale.unlink()
        phases = run_child(CHILD_KG, work / "data", work / "graph.duckdb")
        print(f"{'phase':<24}{'rows':>12}{'seconds':>10}{'CPU s':>8}{'rows/s':>12}{'changed':>12}{'peak MB':>10}")
        for p in phases:
            print(f"{p['phase']:<24}{p['rows']:>12,}{p['seconds']:>10.1f}{p['cpu_s']:>8.1f}"
                  f"{p['rows'] / p['seconds']:>12,.0f}{p.get('changed', ''):>12}{p['peak_mb']:>10,.0f}")
        merges = [p for p in phases if p["phase"].startswith("merge")]
        load, cpu = sum(p["seconds"] for p in merges), sum(p["cpu_s"] for p in merges)
        print(f"kg load (entities + relations A + B): {load:.1f} s wall, {cpu:.1f} s CPU, peak "
              f"{max(p['peak_mb'] for p in phases):,.0f} MB, store file "
              f"{(work / 'graph.duckdb').stat().st_size / 1e6:,.0f} MB; load average now "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if not args.no_peer:
            (peer,) = run_child(CHILD_PEER, work / "data", work / "peer.duckdb")
            print(f"peer, plain DuckDB CREATE TABLE AS + same lookup indexes, no checks/keys/provenance: "
                  f"{peer['seconds']:.1f} s wall, {peer['cpu_s']:.1f} s CPU, peak {peer['peak_mb']:,.0f} MB; "
                  f"kg / peer = {load / peer['seconds']:.1f}x wall, {cpu / peer['cpu_s']:.1f}x CPU")
            phases.append(peer)
        if args.keep:
            args.keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(work / "graph.duckdb", args.keep)
            print(f"store kept at {args.keep}")
        return phases
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
