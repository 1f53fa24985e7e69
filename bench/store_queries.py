"""Graph store queries on the loaded graph: neighbours, 2-hop, fuzzy find, shortest path, entity view, evidence.

Runs the analyst API (``kg.graph.Graph``, store opened read-only) on random
entities of a store that ``bench/store_load.py --keep`` built (or builds one
at ``--scale``) and prints p50 / p99 latency per query kind, next to peers
on the same data in the same run:

* **no-index DuckDB**: the same store and the same queries with DuckDB's
  index scans switched off (``index_scan_max_count = 0``), i.e. what the
  queries cost as plain DuckDB scans without the store's lookup indexes;
* **networkx**: the graph loaded into a networkx ``MultiDiGraph`` in memory
  (only up to ``--nx-max-edges``: 10M edges do not fit a shared 24 GB
  machine), asked the same neighbour, 2-hop and path questions;
* **rapidfuzz brute force** for ``find``: ``process.extract`` with the same
  scorer over every normalised name held in memory, the exhaustive answer,
  on a few queries; also the recall of ``find`` against it.

    .venv/bin/python bench/store_load.py --keep /tmp/graph.duckdb
    .venv/bin/python bench/store_queries.py --db /tmp/graph.duckdb
    .venv/bin/python bench/store_queries.py --scale 0.01            # builds a small store first
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import networkx as nx
import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

sys.path.insert(0, str(Path(__file__).parent))

import store_load  # noqa: E402

from kg.graph import Graph  # noqa: E402
from kg.store import query as q  # noqa: E402

CO_WORK = ["acted_in", "directed", "wrote"]  # the people <-> works part of the graph, without genre/country hubs
KINDS = ("neighbors", "entity", "evidence", "2hop", "path", "find")


def timed(fn: Callable[[object], object], args: Sequence[object]) -> tuple[np.ndarray, list[object]]:
    """Milliseconds per call, and the results."""
    times, results = [], []
    for a in args:
        t = time.perf_counter()
        results.append(fn(a))
        times.append((time.perf_counter() - t) * 1e3)
    return np.array(times), results


def row(name: str, ms: np.ndarray, peer: str | None = None, peer_ms: np.ndarray | None = None, note: str = "") -> None:
    p50, p99 = np.percentile(ms, 50), np.percentile(ms, 99)
    line = f"{name:<34}{len(ms):>6}{p50:>10.2f}{p99:>10.2f}"
    if peer is not None and peer_ms is not None and len(peer_ms):
        q50, q99 = np.percentile(peer_ms, 50), np.percentile(peer_ms, 99)
        line += f"   {peer:<22}{len(peer_ms):>5}{q50:>10.2f}{q99:>10.2f}{q50 / p50:>11.3g}x"
    print(line + (f"  {note}" if note else ""), flush=True)


def header() -> None:
    print(f"{'query (kg, index lookups)':<34}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}   {'peer':<22}{'n':>5}"
          f"{'p50 ms':>10}{'p99 ms':>10}{'peer/kg p50':>12}")


@contextmanager
def index_scans_off(g: Graph) -> Iterator[Graph]:
    """The plain-scan peer: the same store and queries with DuckDB's index scans off.

    The two settings are global to the DuckDB instance (every connection to
    the file in this process), so the peer runs inside this block only and
    the settings go back after it.
    """
    con = g.store.cursor()
    saved = con.execute("SELECT current_setting('index_scan_max_count'), "
                        "current_setting('index_scan_percentage')").fetchone()
    con.execute("SET index_scan_max_count = 0")
    con.execute("SET index_scan_percentage = 0")
    try:
        yield g
    finally:
        con.execute("SET index_scan_max_count = ?", [saved[0]])
        con.execute("SET index_scan_percentage = ?", [saved[1]])
        con.close()


def load_networkx(g: Graph) -> tuple[nx.MultiDiGraph, float]:
    t = time.perf_counter()
    graph = nx.MultiDiGraph()
    ents = g.sql("SELECT entity_id, type, name, year FROM entities")
    graph.add_nodes_from((r[0], {"type": r[1], "name": r[2], "year": r[3]}) for r in ents.iter_rows())
    edges = g.sql("SELECT subject_id, object_id, edge_id, relation, confidence FROM edges")
    graph.add_edges_from((r[0], r[1], r[2], {"relation": r[3], "confidence": r[4]}) for r in edges.iter_rows())
    return graph, time.perf_counter() - t


def nx_neighbors(graph: nx.MultiDiGraph, node: str) -> list[tuple]:
    out = [(k, "out", d["relation"], v, graph.nodes[v]["name"]) for _, v, k, d in graph.out_edges(node, keys=True,
                                                                                                   data=True)]
    inc = [(k, "in", d["relation"], u, graph.nodes[u]["name"]) for u, _, k, d in graph.in_edges(node, keys=True,
                                                                                                  data=True)]
    return out + inc


def nx_two_hop(graph: nx.MultiDiGraph, node: str, relations: set[str] | None = None) -> int:
    seen, frontier = {node}, {node}
    for _ in range(2):
        nxt = set()
        for n in frontier:
            for _, v, d in graph.out_edges(n, data=True):
                if relations is None or d["relation"] in relations:
                    nxt.add(v)
            for u, _, d in graph.in_edges(n, data=True):
                if relations is None or d["relation"] in relations:
                    nxt.add(u)
        frontier = nxt - seen
        seen |= frontier
    return len(seen)


def typo(name: str, rng: np.random.Generator) -> str:
    """The name with two neighbouring letters of its longest word swapped."""
    words = name.split()
    i = max(range(len(words)), key=lambda k: len(words[k]))
    w = words[i]
    if len(w) >= 4:
        j = int(rng.integers(1, len(w) - 2))
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def find_queries(g: Graph, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """Queries made from random entities' names: as stored, lower case, one typo, one word dropped."""
    named = g.sql("SELECT entity_id, name FROM entities WHERE name IS NOT NULL ORDER BY entity_id")
    picked = named[np.sort(rng.choice(named.height, min(n, named.height), replace=False))]
    rows = []
    for eid, name in picked.iter_rows():
        words = name.split()
        rows += [(eid, name, "exact", name), (eid, name, "lower case", name.lower()),
                 (eid, name, "typo", typo(name, rng))]
        if len(words) >= 3:
            drop = int(rng.integers(0, len(words)))
            rows.append((eid, name, "word dropped", " ".join(words[:drop] + words[drop + 1:])))
    return pl.DataFrame(rows, schema=["entity_id", "name", "kind", "query"], orient="row")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, help="a store built by store_load.py --keep")
    ap.add_argument("--scale", type=float, default=None, help="build a store of this scale first (no --db)")
    ap.add_argument("--samples", type=int, default=1000, help="random entities for neighbours and entity views")
    ap.add_argument("--peer-samples", type=int, default=50, help="samples for the slow peers")
    ap.add_argument("--find-samples", type=int, default=300, help="entities whose names make find queries")
    ap.add_argument("--nx-max-edges", type=int, default=3_000_000, help="load networkx only up to this many edges")
    ap.add_argument("--only", nargs="+", choices=KINDS, default=list(KINDS), help="run these query kinds only")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(11)
    tmp = None
    if args.db is None:
        tmp = Path(tempfile.mkdtemp(prefix="kg-bench-q-"))
        args.db = tmp / "graph.duckdb"
        store_load.main(["--scale", str(args.scale or 0.01), "--keep", str(args.db), "--no-peer"])
    try:
        run(args, rng)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, rng: np.random.Generator) -> None:
    g = Graph.open(args.db)
    counts = dict(g.sql("SELECT 'entities', count(*) FROM entities UNION ALL SELECT 'edges', count(*) FROM edges "
                        "UNION ALL SELECT 'names', count(*) FROM names").rows())
    print(f"store {args.db}: {counts['entities']:,} entities, {counts['edges']:,} edges, {counts['names']:,} names")
    every = g.sql("SELECT entity_id FROM entities ORDER BY entity_id")["entity_id"]
    ids = every.gather(rng.choice(len(every), min(args.samples, len(every)), replace=False)).to_list()
    few = ids[: args.peer_samples]
    graph = None
    if counts["edges"] <= args.nx_max_edges and {"neighbors", "2hop", "path"} & set(args.only):
        graph, seconds = load_networkx(g)
        print(f"networkx MultiDiGraph loaded in {seconds:.1f} s")
    else:
        print(f"networkx peer skipped: {counts['edges']:,} edges > --nx-max-edges {args.nx_max_edges:,}")
    header()
    for kind in args.only:
        QUERIES[kind](g, ids, few, graph, args, rng)
    g.close()
    print(f"index lookups batch ids in IN lists of up to {q.IN_LIST_MAX}; find: {q.FIND_CANDIDATES} candidates, "
          f"words in over {q.FIND_COMMON:,} names do not select; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")


def bench_neighbors(g: Graph, ids: list[str], few: list[str], graph: nx.MultiDiGraph | None,
                    args: argparse.Namespace, rng: np.random.Generator) -> None:
    cold, res = timed(lambda e: g.neighbors(e), ids)  # first touch: index and row pages may come from disk
    ms, _ = timed(lambda e: g.neighbors(e), ids)  # the same entities again: pages in memory
    degree = np.array([r.height for r in res])
    with index_scans_off(g) as plain:
        peer_ms, _ = timed(lambda e: plain.neighbors(e), few)
    row("neighbors, first touch", cold, note=f"degree p50 {np.percentile(degree, 50):.0f}, max {degree.max()}")
    row("neighbors (1 hop, both ways)", ms, "no-index DuckDB", peer_ms, "same entities again")
    if graph is not None:
        nx_ms, _ = timed(lambda e: nx_neighbors(graph, e), ids)
        row("neighbors (1 hop, both ways)", ms, "networkx in memory", nx_ms)


def bench_entity(g: Graph, ids: list[str], few: list[str], graph: nx.MultiDiGraph | None,
                 args: argparse.Namespace, rng: np.random.Generator) -> None:
    ms, res = timed(lambda e: g.entity(e), ids[:200])
    with index_scans_off(g) as plain:
        peer_ms, _ = timed(lambda e: plain.entity(e), few)
    row("entity view (names, records)", ms, "no-index DuckDB", peer_ms)


def bench_evidence(g: Graph, ids: list[str], few: list[str], graph: nx.MultiDiGraph | None,
                   args: argparse.Namespace, rng: np.random.Generator) -> None:
    """``g.evidence(edge_id)`` ("why is this edge here") for one random edge at each sampled entity: the
    ``claims_edge`` index look-up, against the same query as a scan of every claim."""
    edge_ids = [r["edge_id"][int(rng.integers(0, r.height))] for r in (g.neighbors(e) for e in ids) if r.height]
    if not edge_ids:
        print("evidence: no sampled entity has an edge", flush=True)
        return
    ms, res = timed(lambda e: g.evidence(e), edge_ids)
    n = np.array([r.height for r in res])
    with index_scans_off(g) as plain:
        peer_ms, _ = timed(lambda e: plain.evidence(e), edge_ids[: len(few)])
    row("evidence (claims of an edge)", ms, "no-index DuckDB", peer_ms,
        f"claims per edge p50 {np.percentile(n, 50):.0f}, max {n.max()}")


def bench_two_hop(g: Graph, ids: list[str], few: list[str], graph: nx.MultiDiGraph | None,
                  args: argparse.Namespace, rng: np.random.Generator) -> None:
    for label, rels in (("2-hop, co-work relations", CO_WORK), ("2-hop, all relations", None)):
        sample = ids[:200] if rels else ids[:30]
        ms, res = timed(lambda e, rels=rels: g.subgraph([e], hops=2, relation=rels), sample)
        size = np.array([s.nodes.height for s in res])
        with index_scans_off(g) as plain:
            peer_ms, _ = timed(lambda e, rels=rels: plain.subgraph([e], hops=2, relation=rels), few[:10])
        row(label, ms, "no-index DuckDB", peer_ms,
            f"nodes p50 {np.percentile(size, 50):.0f}, p99 {np.percentile(size, 99):.0f}")
        if graph is not None:
            nx_ms, _ = timed(lambda e, rels=rels: nx_two_hop(graph, e, set(rels) if rels else None), sample)
            row(label, ms, "networkx in memory", nx_ms)


def bench_path(g: Graph, ids: list[str], few: list[str], graph: nx.MultiDiGraph | None,
               args: argparse.Namespace, rng: np.random.Generator) -> None:
    pairs = list(zip(ids[:100:2], ids[1:100:2], strict=True))
    ms, res = timed(lambda p: g.shortest_path(p[0], p[1], max_hops=6), pairs)
    lengths = [len(p) for p in res if p is not None]
    note = f"found {len(lengths)}/{len(pairs)}, length p50 {np.median(lengths) if lengths else float('nan'):.0f}"
    with index_scans_off(g) as plain:
        peer_ms, _ = timed(lambda p: plain.shortest_path(p[0], p[1], max_hops=6), pairs[:10])
    row("shortest path (undirected, <= 6)", ms, "no-index DuckDB", peer_ms, note)
    if graph is not None:
        und = graph.to_undirected(as_view=True)

        def nx_path(p: tuple[str, str]) -> object:
            try:
                return nx.bidirectional_shortest_path(und, p[0], p[1])
            except nx.NetworkXNoPath:
                return None

        nx_ms, nx_res = timed(nx_path, pairs)
        agree = sum((a is None) == (b is None) and (a is None or len(a) == len(b) - 1) for a, b in zip(
            res, nx_res, strict=True))
        row("shortest path (undirected, <= 6)", ms, "networkx in memory", nx_ms, f"same length {agree}/{len(pairs)}")


def bench_find(g: Graph, ids: list[str], few: list[str], graph: nx.MultiDiGraph | None,
               args: argparse.Namespace, rng: np.random.Generator) -> None:
    queries = find_queries(g, args.find_samples, rng)
    ms, res = timed(lambda s: g.find(s, limit=10), queries["query"].to_list())
    names_of = dict(g.sql("SELECT entity_id, name FROM entities WHERE entity_id IN (SELECT unnest(?::VARCHAR[]))",
                          [queries["entity_id"].unique().to_list()]).rows())
    hit = np.array([
        eid in r["entity_id"].to_list() or names_of.get(eid) in r["name"].to_list()
        for eid, r in zip(queries["entity_id"], res, strict=True)
    ])
    t = time.perf_counter()
    all_norms = g.sql("SELECT norm, entity_id FROM names")
    load_s = time.perf_counter() - t
    norms = all_norms["norm"].to_list()
    brute_ids = all_norms["entity_id"].to_list()
    sample = queries.sample(min(20, queries.height), seed=5)
    norm_q = [g.sql("SELECT kg_norm(?) AS q", [s])["q"][0] for s in sample["query"]]
    brute_ms, brute = timed(lambda s: process.extract(s, norms, scorer=fuzz.WRatio, limit=10, score_cutoff=60),
                            norm_q)
    ours = {s: r for s, r in zip(queries["query"], res, strict=True)}
    recall = np.mean([
        len({brute_ids[i] for _, sc, i in b if sc >= max(x[1] for x in b) - 1e-6}
            & set(ours[s]["entity_id"].to_list())) > 0 if b else True
        for s, b in zip(sample["query"], brute, strict=True)
    ])
    row("find (fuzzy, limit 10)", ms, "rapidfuzz brute force", brute_ms,
        f"target in top 10: {hit.mean():.1%}; top brute-force hit also found: {recall:.0%} "
        f"(brute force loads {len(norms):,} names in {load_s:.1f} s)")
    for kind in queries["kind"].unique(maintain_order=True):
        sel = (queries["kind"] == kind).to_numpy()
        row(f"  find: {kind}", ms[sel], note=f"target in top 10: {hit[sel].mean():.1%}")


QUERIES = {"neighbors": bench_neighbors, "entity": bench_entity, "evidence": bench_evidence, "2hop": bench_two_hop,
           "path": bench_path, "find": bench_find}


if __name__ == "__main__":
    main()
