"""A small generated catalogue, ingested once per session, for the model, pipeline and holdout tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from kg.ingest import ingest_source
from kg.sample import generate_sample
from matching.labels import crosswalk_pairs


@dataclass(frozen=True)
class SampleRun:
    record_paths: list[Path]
    records: pl.DataFrame
    truth: pl.DataFrame  # (source, source_id, entity_id, ...)
    truth_pairs: pl.DataFrame  # cross-source true pairs


def build_sample(out: Path, n_entities: int, seed: int) -> SampleRun:
    sample = generate_sample(out / "raw", n_entities=n_entities, seed=seed)
    reports = [ingest_source(sample.mappings[s], [sample.raw[s]], out) for s in sample.raw]
    paths = [r.records_path for r in reports]
    truth = pl.read_parquet(sample.truth)
    records = pl.concat([pl.read_parquet(p) for p in paths])
    return SampleRun(paths, records, truth, crosswalk_pairs(truth))


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> SampleRun:
    return build_sample(tmp_path_factory.mktemp("sample"), 600, 7)


@pytest.fixture(scope="session")
def training_run(tmp_path_factory: pytest.TempPathFactory) -> SampleRun:
    """Another seed: a model trained here and applied to ``sample_run`` never saw its records."""
    return build_sample(tmp_path_factory.mktemp("training"), 600, 11)
