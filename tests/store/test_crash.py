"""kill -9 in the middle of a merge, repeatedly: the store must reopen exactly as it was before."""

from __future__ import annotations

import random
import shutil
import signal
import time
from pathlib import Path

import duckdb
import pytest

from kg.graph import Graph
from kg.store import RunInfo, Store, StoreError, merge_entities
from kg.store.schema import INDEXES
from tests.store.crash_worker import bulk, start
from tests.store.helpers import check_invariants, fingerprint

N = 50_000  # records in the killed entity merge: large enough to take about a second
N_RELATIONS = 120_000  # relation rows in the killed relation merge: a bulk merge (indexes dropped and rebuilt)


def _without_run_times(fp: dict) -> dict:
    return {t: (v if t != "runs" else v[0]) for t, v in fp.items()}


def _kill_repeatedly(store_path: Path, tmp_path: Path, n: int, tag: str, mode: str, latest: float = 0.85) -> dict:
    """Calibrate on a copy, then kill five merges at random moments; returns the fingerprint of a whole merge.

    A merge's work is done at COMMIT, but the process may still rebuild
    indexes after it (bulk merges) before it says 'committed': a kill there
    must leave the whole merge.
    """
    copy = tmp_path / "copy.duckdb"
    shutil.copy(store_path, copy)
    proc = start(copy, n, tag, mode)
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=300)
    duration = time.monotonic() - t0
    assert proc.returncode == 0 and "committed" in out, err
    post = _without_run_times(fingerprint(copy))

    rng = random.Random(20240607)
    before = fingerprint(store_path)
    killed_before_commit = 0
    for attempt in range(5):
        proc = start(store_path, n, tag, mode)
        if attempt == 0:  # while a merge holds the file, another process gets a clear refusal, not a hang
            with pytest.raises(StoreError, match=f"locked by process {proc.pid}"):
                Graph.open(store_path)
        time.sleep(rng.uniform(0.02, latest) * duration)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL or "committed" in out
        after = fingerprint(store_path)  # opening replays or discards the WAL
        if after == before:
            killed_before_commit += 1
        else:  # the kill came after COMMIT: then the merge must be whole
            assert _without_run_times(after) == post
            before = after
    assert killed_before_commit >= 2
    return post


def _indexes(path: Path) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}
    finally:
        con.close()


@pytest.mark.slow
def test_kill_9_mid_merge_leaves_store_unchanged(store_path: Path, tmp_path: Path) -> None:
    post = _kill_repeatedly(store_path, tmp_path, N, "bulk", "entities")
    # and the store still works: a merge after the crashes completes and is queryable
    proc = start(store_path, N, "bulk")
    out, err = proc.communicate(timeout=120)
    assert "committed" in out, err
    assert _without_run_times(fingerprint(store_path)) == post
    check_invariants(store_path)
    with Graph.open(store_path) as g:
        assert g.find("film number 123 of bulk", limit=1)["entity_id"].to_list() == ["Ebulk-61"]


@pytest.mark.slow
def test_kill_9_mid_relation_merge_leaves_store_unchanged(store_path: Path, tmp_path: Path) -> None:
    """A bulk relation merge: indexes are dropped before its transaction and rebuilt after; a kill anywhere
    leaves the tables as before (or whole), and the next read-write open rebuilds whatever index is missing."""
    recs, cw = bulk(2 * 4096, "bulk")
    with Store.open(store_path) as store:
        merge_entities(store, recs, cw, RunInfo("bulk", "matching"))
    post = _kill_repeatedly(store_path, tmp_path, N_RELATIONS, "extract-bulk", "relations", latest=0.6)
    Store.open(store_path).close()  # read-write open: rebuilds indexes a killed bulk merge had dropped
    assert _indexes(store_path) == set(INDEXES)
    check_invariants(store_path)
    proc = start(store_path, N_RELATIONS, "extract-bulk", "relations")
    out, err = proc.communicate(timeout=300)
    assert "committed" in out, err
    assert _without_run_times(fingerprint(store_path)) == post
    assert _indexes(store_path) == set(INDEXES)
    check_invariants(store_path)
    with Graph.open(store_path) as g:
        assert g.neighbors("Ebulk-1", relation="sequel_of").height > 0
