"""Writing a run's tables (JSON Lines or Parquet, by suffix) and merging them into the graph store.

``write_result(result, "out.jsonl")`` writes three files side by side:
``out.jsonl`` (RELATIONS: accepted and rejected, each with evidence and
offsets), ``out.mentions.jsonl`` (MENTIONS) and ``out.report.json`` (the
report, the run's configuration, the rejected mentions and the entities
first seen in text). Each is written under a temporary name and renamed
when complete, so a crash never leaves a half-written file that looks done.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from extraction.errors import ExtractionError
from extraction.run import ExtractionResult
from kg.store import MergeResult, RunInfo, Store, merge_entities, merge_relations
from kg.store import staged as staged_store
from schemas.ontology import Ontology

SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def output_paths(out: str | Path) -> dict[str, Path]:
    """Where ``write_result`` puts each table for the output file ``out``."""
    out = Path(out)
    if out.suffix.lower() not in SUFFIXES:
        raise ExtractionError(f"{out}: output must end in one of {sorted(SUFFIXES)} (the suffix picks the format)")
    stem, suffix = out.name[: -len(out.suffix)], out.suffix
    return {
        "relations": out,
        "mentions": out.with_name(f"{stem}.mentions{suffix}"),
        "report": out.with_name(f"{stem}.report.json"),
    }


def write_result(result: ExtractionResult, out: str | Path) -> dict[str, Path]:
    """Write relations, mentions and the report next to each other; returns the paths."""
    paths = output_paths(out)
    fmt = SUFFIXES[paths["relations"].suffix.lower()]
    paths["relations"].parent.mkdir(parents=True, exist_ok=True)
    _write_table(result.relations, paths["relations"], fmt)
    _write_table(result.mentions, paths["mentions"], fmt)
    report = {
        "report": result.report.as_dict(),
        "config": result.config,
        "rejected_mentions": result.rejected_mentions.to_dicts(),
        "new_entities": pl.from_arrow(result.records).select("source_id", "type", "name", "aliases").to_dicts(),
    }
    _atomic_text(paths["report"], json.dumps(report, ensure_ascii=False, indent=2, default=str))
    return paths


def _write_table(table: pa.Table, path: Path, fmt: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if fmt == "parquet":
            pq.write_table(table, tmp)
        else:
            pl.from_arrow(table).write_ndjson(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def merge_result(
    result: ExtractionResult, graph: str | Path, ontology: Ontology | None = None, *, staged: bool = False
) -> list[MergeResult]:
    """Merge the run into the store at ``graph``: new entities first, then every relation row as a claim.

    Accepted relations between linked entities become edges; accepted ones
    with an unlinked end stay claims (``allow_unlinked``), rejected ones
    stay claims with their reason. Both merges are idempotent: merging the
    same result twice changes nothing. ``staged``: into a copy that then
    replaces the store whole (``kg.store.staged``), for a store that readers
    in other processes hold open.
    """
    run = RunInfo(result.report.run_id, "extraction", config=result.config)
    merged = []
    with staged_store(graph) if staged else Store.open(graph) as store:
        if result.records.num_rows:
            merged.append(merge_entities(store, result.records, result.crosswalk, run, ontology=ontology))
        merged.append(merge_relations(store, result.relations, run, ontology=ontology, allow_unlinked=True))
    return merged
