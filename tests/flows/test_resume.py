"""A partition fails (fault injection), `resume` re-runs only that task, and the result equals a clean run."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flows.match_flow import FAIL_PARTITION_ENV
from tests.flows.helpers import SMALL

pytestmark = pytest.mark.slow

BRANCH = "resumetest"
FAILING = 2  # the last partition: with one worker the others have finished when it fails


def test_resume_reruns_only_the_failed_partition(flow_env, production_match) -> None:
    clean = Path(production_match["start"].task.data.folder.location)
    with flow_env.runner("match_flow", branch=BRANCH, env={FAIL_PARTITION_ENV: str(FAILING)}) as runner:
        failed = runner.run(max_workers=1, model=str(clean / "model.json"), **SMALL)
        assert failed.status == "failed"
        assert f"partition {FAILING} failed on purpose" in failed.stdout + failed.stderr
    assert sorted(t.data.stats.partition for t in failed.run["score"] if t.successful) == [0, 1]

    with flow_env.runner("match_flow", branch=BRANCH) as runner:
        resumed = runner.resume(origin_run_id=failed.run.id, max_workers=1)
        assert resumed.status == "successful", resumed.stdout + resumed.stderr
    run = resumed.run
    rerun = sorted(t.data.stats.partition for t in run["score"] if t.origin_pathspec is None)
    cloned = sorted(t.data.stats.partition for t in run["score"] if t.origin_pathspec is not None)
    assert rerun == [FAILING] and cloned == [0, 1]
    assert all(run[s].task.origin_pathspec is not None for s in ("start", "train", "plan"))

    # the resumed run finishes the original run folder, and its output equals the clean production run's
    folder = Path(run["start"].task.data.folder.location)
    assert folder.name == failed.run.id
    for i in range(SMALL["partitions"]):
        shard = f"scores/part-{i:04d}.parquet"
        assert pl.read_parquet(folder / shard).equals(pl.read_parquet(clean / shard)), shard
    ids = ["source", "source_id", "entity_id", "type"]
    assert pl.read_parquet(folder / "crosswalk.parquet").select(ids).equals(
        pl.read_parquet(clean / "crosswalk.parquet").select(ids)
    )
