"""kill -9 in the middle of a merge, repeatedly: the store must reopen exactly as it was before."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kg.graph import Graph
from tests.store.helpers import fingerprint

ROOT = Path(__file__).resolve().parents[2]
N = 50_000  # records in the killed merge: large enough to take about a second


def _start(path: Path, tag: str = "bulk") -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_worker", str(path), str(N), tag],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "start", (line, proc.stderr.read() if proc.stderr else "")
    return proc


def _without_run_times(fp: dict) -> dict:
    return {t: (v if t != "runs" else v[0]) for t, v in fp.items()}


@pytest.mark.slow
def test_kill_9_mid_merge_leaves_store_unchanged(store_path: Path, tmp_path: Path) -> None:
    # Calibrate on a copy: how long the merge takes here, and what a finished merge looks like.
    copy = tmp_path / "copy.duckdb"
    shutil.copy(store_path, copy)
    proc = _start(copy)
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=120)
    duration = time.monotonic() - t0
    assert proc.returncode == 0 and "committed" in out, err
    post = _without_run_times(fingerprint(copy))

    rng = random.Random(20240607)
    before = fingerprint(store_path)
    killed_before_commit = 0
    for _ in range(5):
        proc = _start(store_path)
        time.sleep(rng.uniform(0.02, 0.85) * duration)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL or "committed" in out
        after = fingerprint(store_path)  # opening replays or discards the WAL
        if "committed" in out:  # the kill came too late: then the merge must be whole
            assert _without_run_times(after) == post
            before = after
        else:
            killed_before_commit += 1
            assert after == before
    assert killed_before_commit >= 3

    # and the store still works: a merge after the crashes completes and is queryable
    proc = _start(store_path)
    out, err = proc.communicate(timeout=120)
    assert "committed" in out, err
    assert _without_run_times(fingerprint(store_path)) == post
    with Graph.open(store_path) as g:
        assert g.find("film number 123 of bulk", limit=1)["entity_id"].to_list() == ["Ebulk-61"]
