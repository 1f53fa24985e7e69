"""Staged merges: readers in other processes read on through a merge; a failed or killed stage publishes nothing."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from kg.graph import Graph
from kg.store import RunInfo, StoreError, merge_entities, staged
from kg.store.staging import LOCK_SUFFIX, STAGING_SUFFIX
from tests.store.crash_worker import bulk, start
from tests.store.helpers import check_invariants, fingerprint

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

# A reader in its own process: opens the store read-only, counts, waits for a line on stdin, counts again.
READER = """
import sys
from kg.graph import Graph
with Graph.open(sys.argv[1]) as g:
    count = lambda: g.sql("SELECT count(*) AS n FROM entities")["n"][0]
    print(count(), flush=True)
    sys.stdin.readline()
    print(count(), flush=True)
"""

# An in-place writer in its own process: prints what opening the store read-write says.
WRITER = """
import sys
from kg.store import Store, StoreError
try:
    Store.open(sys.argv[1]).close()
    print("opened")
except StoreError as exc:
    print(exc)
"""


def _python(code: str, *args: str, **kw) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=ENV, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _entities(path: Path) -> int:
    with Graph.open(path) as g:
        return int(g.sql("SELECT count(*) AS n FROM entities")["n"][0])


def _sidecars(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def test_readers_in_other_processes_keep_their_snapshot_through_a_staged_merge(store_path: Path) -> None:
    before = _entities(store_path)
    reader = _python(READER, str(store_path))
    assert reader.stdout is not None
    assert int(reader.stdout.readline()) == before  # the reader holds the store open from here on

    writer = _python(WRITER, str(store_path))
    assert "locked by process" in writer.communicate(timeout=60)[0]  # what an in-place merge gets meanwhile

    recs, cw = bulk(400, "staged")
    with staged(store_path) as store:
        merge_entities(store, recs, cw, RunInfo("staged", "matching"))
    out, err = reader.communicate("\n", timeout=60)
    assert int(out) == before, err  # the open reader still reads the store it opened
    assert _entities(store_path) == before + 200  # a reader opening now sees the whole merge
    check_invariants(store_path)
    assert _sidecars(store_path) == [store_path.name + LOCK_SUFFIX]  # no staging copy, no WAL left


def test_a_failed_stage_publishes_nothing(store_path: Path) -> None:
    before = fingerprint(store_path)
    recs, cw = bulk(400, "failed")
    with pytest.raises(RuntimeError, match="after the merge"), staged(store_path) as store:
        merge_entities(store, recs, cw, RunInfo("failed", "matching"))
        raise RuntimeError("after the merge")
    assert fingerprint(store_path) == before
    assert _sidecars(store_path) == [store_path.name + LOCK_SUFFIX]


def test_stages_take_turns_and_keep_in_place_writers_out(store_path: Path) -> None:
    with staged(store_path):
        with pytest.raises(StoreError, match=r"another staged merge holds graph\.duckdb\.merge-lock"), \
                staged(store_path):
            pass
        writer = _python(WRITER, str(store_path))
        assert "locked by process" in writer.communicate(timeout=60)[0]
        with pytest.raises(StoreError, match="after waiting 0.3 s"), staged(store_path, wait=0.3):
            pass


def test_a_stage_creates_a_missing_store(tmp_path: Path) -> None:
    path = tmp_path / "new" / "graph.duckdb"
    recs, cw = bulk(10, "fresh")
    with staged(path) as store:
        merge_entities(store, recs, cw, RunInfo("fresh", "matching"))
    assert _entities(path) == 5


def test_a_stage_keeps_the_commits_of_a_writer_killed_with_the_store_open(store_path: Path) -> None:
    """The killed writer's last merge is only in the WAL beside the file: the stage must not lose it,
    nor leave that WAL to be replayed onto the file it publishes."""
    proc = start(store_path, 300, "walled", "no-close")
    assert proc.stdout is not None and proc.stdout.readline().strip() == "committed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert store_path.with_name(store_path.name + ".wal").exists()

    recs, cw = bulk(20, "after")
    with staged(store_path) as store:
        merge_entities(store, recs, cw, RunInfo("after", "matching"))
    with Graph.open(store_path) as g:
        runs = set(g.sql("SELECT run_id FROM runs")["run_id"].to_list())
    assert {"walled", "after"} <= runs
    check_invariants(store_path)
    assert _sidecars(store_path) == [store_path.name + LOCK_SUFFIX]


@pytest.mark.slow
def test_kill_9_mid_stage_leaves_the_store_as_it_was_or_whole(store_path: Path) -> None:
    """Killed at random moments of a staged merge, the store is as before or holds the whole merge; the next
    stage clears the copy the killed one left."""
    copy = store_path.with_name("copy.duckdb")
    shutil.copy(store_path, copy)
    proc = start(copy, 50_000, "killed", "staged")
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=300)
    duration = time.monotonic() - t0  # from the copy open to the swap done
    assert "published" in out, err

    rng = random.Random(20261205)
    before = fingerprint(store_path)
    unchanged = 0
    for _ in range(3):
        proc = start(store_path, 50_000, "killed", "staged")
        time.sleep(rng.uniform(0.02, 0.9) * duration)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=120)
        after = fingerprint(store_path)
        if after == before:
            unchanged += 1
        else:  # killed after the swap: then the merge is there whole
            assert "committed" in out
            assert after["records"][0] == before["records"][0] + 50_000
            before = after
        check_invariants(store_path)
    assert unchanged >= 1
    recs, cw = bulk(20, "later")
    with staged(store_path) as store:
        merge_entities(store, recs, cw, RunInfo("later", "matching"))
    assert not store_path.with_name(store_path.name + STAGING_SUFFIX).exists()
    with duckdb.connect(str(store_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs WHERE run_id = 'later'").fetchone() == (1,)
