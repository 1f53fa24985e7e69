"""TrainFlow, and @project branches: a --branch run trains, matches and merges without touching production."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from metaflow import Flow, namespace
from metaflow.exception import MetaflowNamespaceMismatch

from matching.model import PairModel, load_model
from tests.flows.helpers import SMALL, card_components

pytestmark = pytest.mark.slow

BRANCH = "flowtest"  # --branch flowtest runs as branch "test.flowtest"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def production_graph(production_match, flow_env) -> tuple[Path, str]:
    """The production graph and its content hash, taken before any branch run of this module."""
    graph = flow_env.root / "prod" / "graph.duckdb"
    return graph, _digest(graph)


@pytest.fixture(scope="module")
def branch_training(flow_env, production_graph):
    with flow_env.runner("train_flow", branch=BRANCH) as runner:
        done = runner.run(sample_entities=SMALL["sample_entities"])
        assert done.status == "successful", done.stdout + done.stderr
        return done.run


@pytest.fixture(scope="module")
def branch_match(flow_env, branch_training):
    with flow_env.runner("match_flow", branch=BRANCH) as runner:
        done = runner.run(model="trainflow", max_workers=3, **SMALL)
        assert done.status == "successful", done.stdout + done.stderr
        return done.run


def test_train_flow_keeps_the_model_and_reports_held_out_figures(branch_training) -> None:
    model = branch_training.data.model
    assert isinstance(model, PairModel)
    assert load_model(branch_training.data.model_path).model_id == model.model_id
    report = branch_training.data.report
    assert report["held_out_pairs"] > 0 and report["held_out_matches"] > 0
    assert report["pairwise"]["f1"] > 0.9, report["pairwise"]
    assert report["clustering"]["bcubed"]["f1"] > 0.9
    assert model.metadata["valid_pairs"] > 0  # a validation split inside the training part
    charts = [c["spec"]["title"] for c in card_components(branch_training["end"].task) if c["type"] == "vegaChart"]
    assert "Precision / recall on held-out pairs" in charts


def test_branch_match_uses_the_branch_model_and_graph(branch_match, branch_training, flow_env) -> None:
    info = branch_match.data.model_info
    assert info["model_id"] == branch_training.data.model.model_id
    assert branch_training.pathspec in info["origin"]
    assert branch_match.data.merged["graph"] == str(flow_env.root / f"test.{BRANCH}" / "graph.duckdb")
    assert Path(branch_match["start"].task.data.folder.location).is_relative_to(flow_env.root / f"test.{BRANCH}")


def _runs(flow: str, ns: str) -> list[str]:
    """Run ids of ``flow`` in namespace ``ns`` (the Client refuses a flow with no run there)."""
    namespace(ns)
    try:
        return [r.id for r in Flow(flow)]
    except MetaflowNamespaceMismatch:
        return []
    finally:
        namespace(None)


def test_branch_runs_leave_production_untouched(branch_match, branch_training, production_match,
                                                production_graph) -> None:
    graph, before = production_graph
    assert _digest(graph) == before
    assert _runs("MatchFlow", "project_branch:prod") == [production_match.id]
    assert _runs("TrainFlow", "project_branch:prod") == []  # the branch's model never became production's
    assert _runs("TrainFlow", f"project_branch:test.{BRANCH}") == [branch_training.id]


def test_a_branch_cannot_name_the_production_graph(flow_env, production_graph) -> None:
    graph, before = production_graph
    with flow_env.runner("match_flow", branch=BRANCH) as runner:
        done = runner.run(graph=str(graph), **SMALL)
        assert done.status == "failed"
        assert "refusing to merge into the production graph" in done.stderr + done.stdout
    assert done.run["start"].task.successful is False
    assert _digest(graph) == before
