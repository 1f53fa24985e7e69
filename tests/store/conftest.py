from __future__ import annotations

from pathlib import Path

import pytest

from kg.graph import Graph
from tests.store.helpers import build


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """A fresh store with the hand-built movies, people and relations."""
    return build(tmp_path / "graph.duckdb")


@pytest.fixture
def graph(store_path: Path):
    g = Graph.open(store_path)
    yield g
    g.close()
