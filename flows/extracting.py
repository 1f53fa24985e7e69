"""Extraction in a flow: documents cut into shards, one shard per task, results merged into the graph once.

Each shard task reads its documents file and the gazetteer snapshot from the
run folder (never the graph store, which may live on another machine), asks
the LLM through the shared answer cache, and writes its own tables. Linking
happens inside each task against the snapshot; entities first seen in text
get deterministic ids (``text:<type>:<key>``), so two shards naming the same
new entity agree, and ``combine_new_entities`` folds their records into one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from extraction.documents import load_documents
from extraction.gates import GateConfig
from extraction.gazetteer import Gazetteer
from extraction.llm import Endpoint, open_client
from extraction.run import extract
from flows.inputs import prepare_inputs
from flows.merging import MERGE_WAIT_S
from kg.errors import KGError
from kg.store import RunInfo, merge_entities, merge_relations, staged
from schemas.tables import CROSSWALK, RECORDS, conform

GAZETTEER_FILE = "gazetteer.parquet"
TABLES = ("relations", "mentions", "records", "crosswalk")


def shard_documents(
    folder: Path, paths: list[str], *, shards: int, max_documents: int, sample_entities: int, sample_seed: int
) -> dict[str, Any]:
    """Load the documents (or the sample catalog's abstracts), cut them into ``shards`` JSON Lines files."""
    if shards < 1:
        raise KGError(f"shards must be at least 1, got {shards}")
    if not paths:
        inputs = prepare_inputs(folder / "sample", None, sample_entities=sample_entities, sample_seed=sample_seed)
        paths = [str(folder / "sample" / name) for name in inputs.records]
    corpus = load_documents(paths)
    docs = corpus.documents[:max_documents] if max_documents > 0 else corpus.documents
    if not docs:
        raise KGError(f"no documents with text in {paths} (skipped: {dict(corpus.skipped)})")
    names = []
    per_shard = -(-len(docs) // shards)
    for i in range(0, len(docs), per_shard):
        name = f"documents/shard-{len(names):04d}.jsonl"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(
            "".join(json.dumps({"id": d.doc_id, "text": d.text}) + "\n" for d in docs[i : i + per_shard]),
            encoding="utf-8",
        )
        names.append(name)
    return {"shards": names, "documents": len(docs), "skipped": dict(corpus.skipped), "inputs": paths}


def snapshot_gazetteer(graph: Path, folder: Path) -> bool:
    """Copy the graph's names into the run folder (so shard tasks need no store); False when there is no graph."""
    if not graph.exists():
        return False
    Gazetteer.from_store(graph).names.write_parquet(folder / GAZETTEER_FILE)
    return True


def extract_shard(
    folder: Path,
    shard: str,
    *,
    endpoint: Endpoint,
    mode: str,
    run_id: str,
    gates: GateConfig,
    cache_dir: str | None,
) -> dict[str, Any]:
    """Extract one shard (gates and linking included); write ``extracted/<shard>/<table>.parquet``; the report."""
    corpus = load_documents([folder / shard])
    snapshot = folder / GAZETTEER_FILE
    gazetteer = Gazetteer(pl.read_parquet(snapshot)) if snapshot.exists() else None
    with open_client(endpoint, cache_dir=Path(cache_dir) if cache_dir else None) as client:
        result = extract(corpus, client, mode=mode, gates=gates, run_id=run_id, gazetteer=gazetteer)
    out = shard_folder(folder, shard)
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        pq.write_table(getattr(result, name), out / f"{name}.parquet")
    result.rejected_mentions.write_parquet(out / "rejected_mentions.parquet")
    return result.report.as_dict()


def shard_folder(folder: Path, shard: str) -> Path:
    return folder / "extracted" / Path(shard).stem


def combine_new_entities(records: pl.DataFrame, crosswalk: pl.DataFrame) -> tuple[pa.Table, pa.Table]:
    """One record per new entity across shards: the longest name, every other form as an alias."""
    forms = pl.concat([records.select("source", "source_id", "type", form="name"),
                       records.select("source", "source_id", "type", form="aliases").explode("form")]).drop_nulls()
    merged = (
        forms.with_columns(length=pl.col("form").str.len_chars())
        .sort(["source", "source_id", "length", "form"], descending=[False, False, True, False])
        .group_by("source", "source_id", maintain_order=True)
        .agg(pl.col("type").first(), name=pl.col("form").first(), forms=pl.col("form").unique(maintain_order=True))
        .with_columns(aliases=pl.col("forms").list.set_difference(pl.concat_list("name")))
    )
    kept = ("source", "source_id", "type", "name", "aliases")
    table = pa.table({f.name: merged[f.name].to_arrow() if f.name in kept else pa.nulls(merged.height)
                      for f in RECORDS})
    return _cast(table, RECORDS), _cast(crosswalk.unique(["source", "source_id"], keep="first").to_arrow(), CROSSWALK)


def _cast(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The schema's columns in its order and types, checked at the boundary."""
    return conform(pa.table([table[f.name].cast(f.type) for f in schema], schema=schema), schema)


def merge_extraction(graph: Path, folder: Path, shards: list[str], run: RunInfo) -> dict[str, Any]:
    """Every shard's new entities, then every relation row (accepted and rejected), into ``graph`` as one run."""
    def read(name: str) -> pl.DataFrame:
        return pl.concat([pl.read_parquet(shard_folder(folder, s) / f"{name}.parquet") for s in shards])

    records, crosswalk = combine_new_entities(read("records"), read("crosswalk"))
    relations = read("relations").to_arrow()
    graph.parent.mkdir(parents=True, exist_ok=True)
    changes: dict[str, int] = {}
    with staged(graph, wait=MERGE_WAIT_S) as store:  # see flows/merging.py
        if records.num_rows:
            changes.update(merge_entities(store, records, crosswalk, run).changes)
        for table, n in merge_relations(store, relations, run, allow_unlinked=True).changes.items():
            changes[table] = changes.get(table, 0) + n
    return {"graph": str(graph), "changes": changes, "new_entities": records.num_rows,
            "relations": relations.num_rows}
