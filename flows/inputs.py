"""What a flow reads: sources and mappings from a TOML file, or the bundled sample catalog by default.

A sources file (paths relative to the file itself)::

    truth = "truth.parquet"          # optional: true pairs, or (source, source_id, entity_id)
    records = ["old/records/a.parquet"]   # optional: records ingested earlier

    [[sources]]                      # raw files + mapping, ingested by the flow
    mapping = "imdb.toml"
    inputs = ["imdb.csv"]

    [matching]                       # optional: MatchConfig fields
    n_partitions = 8
    clean_sources = ["imdb", "tmdb"]

Everything lands in the run folder (``records/<source>.parquet``,
``quarantine/<source>.parquet``, ``truth.parquet``) and is named relative to
it, so any task on any machine finds the same inputs.
"""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import polars as pl

from kg.errors import KGError
from kg.ingest import ingest_source
from kg.sample import SOURCES as SAMPLE_SOURCES
from kg.sample import generate_sample
from matching.labels import read_truth
from matching.pipeline import MatchConfig

TRUTH_FILE = "truth.parquet"


@dataclass(frozen=True)
class Source:
    mapping: Path
    inputs: tuple[Path, ...]


@dataclass(frozen=True)
class SourcesFile:
    """A parsed sources file: what to ingest, what is already ingested, the truth, and matching settings."""

    path: Path
    sources: tuple[Source, ...] = ()
    records: tuple[Path, ...] = ()
    truth: Path | None = None
    matching: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Inputs:
    """A run's inputs, named relative to its run folder."""

    records: list[str]  # records/<source>.parquet
    truth: str | None  # truth.parquet (true pairs) when known
    origin: dict[str, Any]  # what they were made from, for the card and the graph's run row
    quarantined: int = 0


def load_sources(path: str | Path) -> SourcesFile:
    """Read and check a sources file; every error names the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise KGError(f"{path}: no such sources file")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise KGError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(doc) - {"sources", "records", "truth", "matching"})
    if unknown:
        raise KGError(f"{path}: unknown key(s) {unknown}; known: sources, records, truth, matching")
    here = path.parent

    def resolve(value: Any, key: str) -> Path:
        if not isinstance(value, str) or not value:
            raise KGError(f"{path}: {key} must be a path string, got {value!r}")
        return (here / value).resolve()

    sources = []
    for i, s in enumerate(doc.get("sources", [])):
        if not isinstance(s, dict) or set(s) != {"mapping", "inputs"} or not isinstance(s["inputs"], list):
            raise KGError(f"{path}: sources[{i}] needs exactly mapping = \"...\" and inputs = [\"...\"]")
        sources.append(Source(resolve(s["mapping"], f"sources[{i}].mapping"),
                              tuple(resolve(p, f"sources[{i}].inputs") for p in s["inputs"])))
    records = tuple(resolve(p, "records") for p in doc.get("records", []))
    if not sources and not records:
        raise KGError(f"{path}: give [[sources]] to ingest or records = [...] already ingested")
    matching = doc.get("matching", {})
    known = {f.name for f in fields(MatchConfig)} - {"rules"}  # rules are Python objects, not TOML values
    if set(matching) - known:
        raise KGError(f"{path}: [matching] unknown key(s) {sorted(set(matching) - known)}; known: {sorted(known)}")
    truth = resolve(doc["truth"], "truth") if "truth" in doc else None
    return SourcesFile(path, tuple(sources), records, truth, matching)


def match_config(sources: SourcesFile | None, n_partitions: int = 0) -> MatchConfig:
    """The file's [matching] settings; ``n_partitions`` > 0 (a flow parameter) wins over the file.

    Without a file the run is on the sample, whose sources hold one record
    per entity each: they are clean, and clustering is one-to-one between them.
    """
    settings = dict(sources.matching) if sources else {"clean_sources": SAMPLE_SOURCES}
    if "clean_sources" in settings:
        settings["clean_sources"] = tuple(settings["clean_sources"])
    if n_partitions > 0:
        settings["n_partitions"] = n_partitions
    return MatchConfig(**settings)


def prepare_inputs(folder: Path, sources: SourcesFile | None, *, sample_entities: int, sample_seed: int) -> Inputs:
    """Ingest the sources (or generate and ingest the sample catalog) into ``folder``; copy the truth there."""
    if sources is None:
        sample = generate_sample(folder / "raw", n_entities=sample_entities, seed=sample_seed)
        todo = [Source(sample.mappings[s], (sample.raw[s],)) for s in sample.raw]
        truth, origin = sample.truth, {"sample": {"entities": sample_entities, "seed": sample_seed}}
        earlier: tuple[Path, ...] = ()
    else:
        todo, truth, earlier = list(sources.sources), sources.truth, sources.records
        origin = {"sources_file": str(sources.path)}
    names, quarantined = [], 0
    for source in todo:
        report = ingest_source(source.mapping, list(source.inputs), folder)
        names.append(str(report.records_path.relative_to(folder)))
        quarantined += report.quarantined
    for path in earlier:
        if not path.is_file():
            raise KGError(f"{path}: no such records file (named in {sources.path if sources else 'the flow'})")
        name = f"records/{path.name}"
        if name in names:
            raise KGError(f"{path}: a records file named {path.name} is already an input of this run")
        (folder / "records").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / name)
        names.append(name)
    if truth is not None:
        read_truth(truth).write_parquet(folder / TRUTH_FILE)
    origin["records"] = names
    return Inputs(sorted(names), TRUTH_FILE if truth is not None else None, origin, quarantined)


def read_pairs(folder: Path, name: str | None) -> pl.DataFrame | None:
    """The run's true pairs, when it has them."""
    return pl.read_parquet(folder / name) if name else None
