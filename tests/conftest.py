"""Shared fixtures: where the real benchmark data lives, and a skip when it does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("KG_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.fixture
def moviegraph_dir() -> Path:
    path = SHARED_DATA / "moviegraph"
    if not (path / "imdb.csv").is_file():
        pytest.skip(f"moviegraph benchmark data not found at {path} (set KG_SHARED_DATA to its parent folder)")
    return path
