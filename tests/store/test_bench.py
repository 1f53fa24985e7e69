"""The store benchmarks run end to end at a tiny scale (their figures come from full-size runs, not from here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import store_load  # noqa: E402
import store_queries  # noqa: E402


@pytest.mark.slow
def test_store_benchmarks_at_tiny_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "graph.duckdb"
    phases = {p["phase"]: p for p in store_load.main(["--scale", "0.001", "--keep", str(db)])}
    assert phases["merge relations B"]["changed"] > 0
    assert phases["re-merge relations B"]["changed"] == 0  # idempotent: the second merge of a run adds nothing
    assert phases["staged re-merge B"]["changed"] == 0
    assert phases["plain DuckDB load"]["rows"] == sum(
        phases[p]["rows"] for p in ("merge entities", "merge relations A", "merge relations B"))
    store_queries.main(["--db", str(db), "--samples", "20", "--peer-samples", "3", "--find-samples", "10"])
    out = capsys.readouterr().out
    for query in ("neighbors (1 hop", "evidence (claims", "2-hop, co-work", "shortest path", "find (fuzzy",
                  "networkx in memory", "no-index DuckDB", "rapidfuzz brute force"):
        assert query in out, query
