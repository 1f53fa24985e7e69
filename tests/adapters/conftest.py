"""Fixtures of the adapter tests: where the public benchmark data lives, and a skip when it does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA


@pytest.fixture
def itunes_amazon_dir() -> Path:
    path = SHARED_DATA / "itunes-amazon"
    if not (path / "Structured" / "train.txt").is_file():
        pytest.skip(f"iTunes-Amazon benchmark data not found at {path} (set KG_SHARED_DATA to its parent folder)")
    return path
