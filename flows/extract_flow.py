"""ExtractFlow: documents → shards → extraction with gates and linking, one task per shard → one merge.

    python flows/extract_flow.py run                 # a few abstracts of the sample catalog, the bundled model
    python flows/extract_flow.py run --documents plots/,abstracts.jsonl --shards 16 \\
        --base_url https://api.openai.com/v1 --llm_model gpt-4o-mini --max-workers 8
    python flows/extract_flow.py card view end       # rejections by reason, tokens, time

Names to link to come from this branch's graph store (a snapshot in the run
folder, so shard tasks need no store); shard tasks share the LLM answer cache
(``--cache_dir``; default ``$KG_CACHE_DIR/llm``, a SQLite file several
processes can share), and retry (``@retry``) on failures of the endpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

from metaflow import FlowSpec, Parameter, card, current, project, resources, retry, step

from extraction.gates import GateConfig
from extraction.llm import Endpoint
from flows.cards import extract_card
from flows.extracting import extract_shard, merge_extraction, shard_documents, shard_folder, snapshot_gazetteer
from flows.locations import RunFolder, check_graph_write, default_graph
from kg.store import RunInfo


@project(name="kg")
class ExtractFlow(FlowSpec):
    """LLM extraction of grounded, ontology-checked relations, sharded over documents."""

    documents = Parameter("documents", default="", help="comma-separated files/folders; empty: sample abstracts")
    mode = Parameter("mode", default="guided", help="guided (narrow questions) or open (the LLM proposes)")
    shards = Parameter("shards", type=int, default=2, help="document shards, one task each")
    max_documents = Parameter("max_documents", type=int, default=6, help="use at most this many documents; 0: all")
    llm_model = Parameter("llm_model", default="bundled", help="model name; 'bundled': the local Gemma 3 270M")
    base_url = Parameter("base_url", default="", help="OpenAI-compatible /v1 URL (with --llm_model)")
    api_key_env = Parameter("api_key_env", default="OPENAI_API_KEY", help="variable holding the API key")
    concurrency = Parameter("concurrency", type=int, default=2, help="questions in flight per task")
    min_confidence = Parameter("min_confidence", type=float, default=0.1, help="confidence gate")
    cache_dir = Parameter("cache_dir", default="", help="shared answer cache folder; empty: $KG_CACHE_DIR/llm")
    output_root = Parameter(
        "output_root", default=lambda ctx: os.environ.get("KG_OUTPUT_ROOT", "kg-runs"),
        help="local folder or object-storage URI (s3://bucket/prefix) runs write under, one folder per branch",
    )
    graph = Parameter("graph", default="", help="graph store to link to and merge into; empty: the branch's")
    sample_entities = Parameter("sample_entities", type=int, default=50, help="entities of the sample catalog")
    sample_seed = Parameter("sample_seed", type=int, default=7, help="seed of the sample catalog")

    @step
    def start(self):
        """Documents into shard files in the run folder; a snapshot of the graph's names to link to."""
        branch = current.branch_name
        self.graph_path = str(Path(self.graph).resolve() if self.graph else default_graph(self.output_root, branch))
        check_graph_write(Path(self.graph_path), self.output_root, branch)
        self.folder = RunFolder.for_run(self.output_root, branch, current.flow_name, current.run_id)
        self.extract_run_id = f"{current.flow_name}-{current.run_id}"
        self.endpoint = Endpoint(model=self.llm_model, base_url=self.base_url or None,
                                 api_key_env=self.api_key_env, concurrency=self.concurrency)
        with self.folder.staged(push=["documents", "gazetteer.parquet"]) as local:
            self.corpus = shard_documents(local, [p for p in self.documents.split(",") if p],
                                          shards=self.shards, max_documents=self.max_documents,
                                          sample_entities=self.sample_entities, sample_seed=self.sample_seed)
            self.linked_to_graph = snapshot_gazetteer(Path(self.graph_path), local)
        self.shard_names = self.corpus["shards"]
        self.next(self.extract, foreach="shard_names")

    @retry(times=2, minutes_between_retries=0)
    @resources(cpu=2, memory=4000)
    @step
    def extract(self):
        """One shard: propose → gates (grounding, ontology, confidence) → linking; its own tables."""
        pull = [self.input, *(["gazetteer.parquet"] if self.linked_to_graph else [])]
        with self.folder.staged(pull=pull, push=[str(shard_folder(Path(), self.input))]) as local:
            self.report = extract_shard(local, self.input, endpoint=self.endpoint, mode=self.mode,
                                        run_id=self.extract_run_id,
                                        gates=GateConfig(min_confidence=self.min_confidence),
                                        cache_dir=self.cache_dir or None)
        self.shard = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        """Collect each shard's report (counts, rejections, tokens); the tables stay in the shard folders."""
        self.reports = sorted(({"shard": i.shard, **i.report} for i in inputs), key=lambda r: r["shard"])
        self.merge_artifacts(inputs, exclude=["report", "shard"])
        self.next(self.merge)

    @step
    def merge(self):
        """New entities, then every relation row as a claim (accepted ones as edges), into the graph, as one run."""
        check_graph_write(Path(self.graph_path), self.output_root, current.branch_name)
        run = RunInfo(self.extract_run_id, "extraction", config={
            "flow": f"{current.flow_name}/{current.run_id}", "branch": current.branch_name, "mode": self.mode,
            "model": self.reports[0]["model"], "prompts": self.reports[0]["prompt_versions"],
        })
        with self.folder.staged(pull=[str(shard_folder(Path(), s)) for s in self.shard_names]) as local:
            self.merged = merge_extraction(Path(self.graph_path), local, self.shard_names, run)
        self.next(self.end)

    @card(type="blank", id="report")
    @step
    def end(self):
        """The report: documents, questions, accepted and rejected (by reason), tokens, cost, time per shard."""
        current.card.extend(extract_card(self.reports, self.corpus, self.merged, branch=current.branch_name,
                                         run_id=self.extract_run_id))


if __name__ == "__main__":
    ExtractFlow()
