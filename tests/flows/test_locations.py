"""Run folders on a URI (staged through a scratch folder) and the production-graph guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.locations import RunFolder, branch_root, check_graph_write, default_graph
from kg.errors import KGError


def test_a_local_run_folder_is_used_in_place(tmp_path: Path) -> None:
    folder = RunFolder.for_run(str(tmp_path), "user.alice", "MatchFlow", "17")
    with folder.staged(pull=[], push=["out.txt"]) as local:
        assert local == tmp_path / "user.alice" / "MatchFlow" / "17"
        (local / "out.txt").write_text("x")
    assert (local / "out.txt").read_text() == "x"


def test_a_uri_run_folder_is_staged_both_ways(tmp_path: Path) -> None:
    """file:// takes the object-storage path: copies in, copies back only what the step names, only on success."""
    folder = RunFolder.for_run(f"file://{tmp_path}", "prod", "MatchFlow", "9")
    remote = tmp_path / "prod" / "MatchFlow" / "9"
    (remote / "records").mkdir(parents=True)
    (remote / "records" / "a.parquet").write_bytes(b"records")
    with folder.staged(pull=["records"], push=["scores", "stats"]) as local:
        assert local != remote and (local / "records" / "a.parquet").read_bytes() == b"records"
        (local / "scores").mkdir()
        (local / "scores" / "part-0001.parquet").write_bytes(b"shard")
        (local / "scratch.tmp").write_bytes(b"not pushed")
    assert (remote / "scores" / "part-0001.parquet").read_bytes() == b"shard"
    assert not (remote / "scratch.tmp").exists() and not local.exists()
    with pytest.raises(RuntimeError), folder.staged(push=["crosswalk.parquet"]) as local:
        (local / "crosswalk.parquet").write_bytes(b"half")
        raise RuntimeError("the step failed")
    assert not (remote / "crosswalk.parquet").exists()
    with pytest.raises(KGError, match="plan.pkl: not found in the run folder"), folder.staged(pull=["plan.pkl"]):
        pass


def test_only_production_writes_the_production_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(tmp_path)
    production = default_graph(root, "prod")
    check_graph_write(production, root, "prod")
    check_graph_write(default_graph(root, "test.nightly"), root, "test.nightly")
    for branch in ("user.alice", "test.nightly", "prod.nightly"):
        with pytest.raises(KGError, match="refusing to merge into the production graph"):
            check_graph_write(production, root, branch)
    elsewhere = tmp_path / "shared" / "kg.duckdb"
    check_graph_write(elsewhere, root, "user.alice")
    monkeypatch.setenv("KG_PRODUCTION_GRAPH", str(elsewhere))
    with pytest.raises(KGError, match="production graph"):
        check_graph_write(elsewhere, root, "user.alice")


def test_object_storage_roots_need_an_explicit_graph_and_sane_branches() -> None:
    with pytest.raises(KGError, match="give --graph PATH"):
        default_graph("s3://bucket/kg", "prod")
    assert branch_root("s3://bucket/kg/", "user.alice") == "s3://bucket/kg/user.alice"
    with pytest.raises(KGError, match="not a branch name"):
        branch_root("s3://bucket/kg", "../prod")
