"""MatchFlow: sources → records → partition plan → every partition on its own task → clusters → graph store.

    python flows/match_flow.py run                      # the bundled sample, a model trained on another seed
    python flows/match_flow.py run --sources my.toml --partitions 64 --model model.json --max-workers 8
    python flows/match_flow.py --branch nightly run     # writes under <output root>/test.nightly/ only
    python flows/match_flow.py --production run         # the only way to update the production graph
    python flows/match_flow.py card view end            # the run's report

Each step calls one library function. A partition task reads only paths (the
records files, the plan, the model) and writes its own score shard, so tasks
run on any machine (``--with kubernetes``) and nothing is gathered: the join
collects each partition's figures, clustering reads the accepted pairs back
from the shards. See docs/flows.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from metaflow import FlowSpec, Parameter, card, current, project, resources, step

from flows.cards import match_card
from flows.figures import match_figures, step_seconds
from flows.inputs import load_sources, match_config, prepare_inputs
from flows.locations import RunFolder, check_graph_write, default_graph
from flows.merging import merge_run
from flows.training import resolve_model
from kg.errors import KGError
from kg.store import RunInfo
from matching.pipeline import PLAN_FILES, cluster_run, partition_files, plan_run, read_records, score_partition

FAIL_PARTITION_ENV = "KG_FAIL_PARTITION"
"""Fault injection for tests and drills: the score task of this partition number raises before it writes."""


def fail_if_asked(partition: int) -> None:
    """Raise in the partition named by ``$KG_FAIL_PARTITION`` (used to exercise ``resume``)."""
    if os.environ.get(FAIL_PARTITION_ENV) == str(partition):
        raise KGError(f"partition {partition} failed on purpose (${FAIL_PARTITION_ENV}={partition})")


@project(name="kg")
class MatchFlow(FlowSpec):
    """Partitioned entity matching: each partition alone on its own task, then clustering and the graph merge."""

    sources = Parameter("sources", default="", help="sources TOML file (see flows/inputs.py); empty: the sample")
    partitions = Parameter("partitions", type=int, default=0, help="partitions; 0: the sources file's, else 8")
    model = Parameter(
        "model", default="",
        help="model JSON file; 'trainflow': this branch's latest TrainFlow model; empty: train one on a sample",
    )
    output_root = Parameter(
        "output_root", default=lambda ctx: os.environ.get("KG_OUTPUT_ROOT", "kg-runs"),
        help="local folder or object-storage URI (s3://bucket/prefix) runs write under, one folder per branch",
    )
    graph = Parameter("graph", default="", help="graph store file; empty: <output root>/<branch>/graph.duckdb")
    sample_entities = Parameter("sample_entities", type=int, default=2000, help="entities of the generated sample")
    sample_seed = Parameter("sample_seed", type=int, default=7, help="seed of the generated sample")
    bootstrap_entities = Parameter("bootstrap_entities", type=int, default=1000,
                                   help="entities of the sample a default model is trained on")
    bootstrap_seed = Parameter("bootstrap_seed", type=int, default=11,
                               help="seed of that training sample (not the data's)")

    @step
    def start(self):
        """Ingest the sources, or generate and ingest the sample, into this run's folder."""
        branch = current.branch_name
        self.graph_path = str(Path(self.graph).resolve() if self.graph else default_graph(self.output_root, branch))
        check_graph_write(Path(self.graph_path), self.output_root, branch)  # fail now, not after all the work
        self.folder = RunFolder.for_run(self.output_root, branch, current.flow_name, current.run_id)
        self.match_run_id = f"{current.flow_name}-{current.run_id}"  # kept by resume: the folder stays the same
        sources = load_sources(self.sources) if self.sources else None
        self.config = match_config(sources, self.partitions)
        if sources is None and self.sample_seed == self.bootstrap_seed and not self.model:
            raise KGError("--bootstrap_seed equals --sample_seed: a model trained on the data it matches flatters it")
        with self.folder.staged(push=["records", "quarantine", "truth.parquet"]) as local:
            self.inputs = prepare_inputs(local, sources, sample_entities=self.sample_entities,
                                         sample_seed=self.sample_seed)
        self.next(self.train)

    @resources(cpu=2, memory=4000)
    @step
    def train(self):
        """The run's model into model.json: a given file, this branch's TrainFlow model, or one trained here."""
        with self.folder.staged(push=["model.json"]) as local:
            self.model_info = resolve_model(self.model, local, self.config, branch=current.branch_name,
                                            bootstrap_entities=self.bootstrap_entities,
                                            bootstrap_seed=self.bootstrap_seed)
        self.next(self.plan)

    @resources(cpu=2, memory=8000)
    @step
    def plan(self):
        """Partition plan from key counts: every unit (block or window) goes to exactly one partition."""
        with self.folder.staged(pull=["records"], push=list(PLAN_FILES)) as local:
            records = read_records([local / r for r in self.inputs.records])
            plan = plan_run(records, local, self.config, compress_inputs=not self.folder.is_local)
        self.partition_ids = list(range(plan.n_partitions))
        self.next(self.score, foreach="partition_ids")

    @resources(cpu=2, memory=8000)
    @step
    def score(self):
        """One partition: blocking → features → scores, written as this task's own shard."""
        fail_if_asked(self.input)
        with self.folder.staged(pull=[*partition_files(self.input), "model.json"], push=["scores", "stats"]) as local:
            self.stats = score_partition(local, self.input)
        self.next(self.join)

    @step
    def join(self, inputs):
        """Collect each partition's figures only: the shards stay where their tasks wrote them."""
        self.partition_stats = sorted((i.stats for i in inputs), key=lambda s: s.partition)
        self.merge_artifacts(inputs, exclude=["stats"])
        self.next(self.cluster)

    @resources(cpu=2, memory=8000)
    @step
    def cluster(self):
        """Entities from the accepted pairs of every shard (rejected pairs are never loaded)."""
        with self.folder.staged(pull=["records", "scores"], push=["crosswalk.parquet", "evidence.parquet"]) as local:
            result = cluster_run(read_records([local / r for r in self.inputs.records]), local,
                                 run_id=self.match_run_id, config=self.config)
        self.clusters = {"entities": result.n_entities, "split_clusters": result.n_split,
                         "dropped_pairs": result.dropped.height}
        self.next(self.merge)

    @step
    def merge(self):
        """Records and crosswalk into this branch's graph store; only the production branch writes production's."""
        check_graph_write(Path(self.graph_path), self.output_root, current.branch_name)
        run = RunInfo(self.match_run_id, "matching", config={
            "flow": f"{current.flow_name}/{current.run_id}", "branch": current.branch_name,
            "model": self.model_info["model_id"], "partitions": len(self.partition_stats),
        })
        with self.folder.staged(pull=["records", "crosswalk.parquet"]) as local:
            self.merged = merge_run(Path(self.graph_path), local, self.inputs.records, run)
        self.next(self.end)

    @card(type="blank", id="report")
    @step
    def end(self):
        """The report: key figures, block sizes, scores, PR curve (with truth), partition times and skew."""
        about = {
            "run_id": self.match_run_id, "branch": current.branch_name,
            "inputs": self.inputs.origin.get("sources_file", "the generated sample"),
            "model_id": self.model_info["model_id"], "model_origin": self.model_info["origin"],
            "threshold": self.model_info["threshold"], **self.clusters, "graph": self.merged["graph"],
        }
        pull = ["records", "plan.pkl", "block_sizes.parquet", "scores", "stats", "crosswalk.parquet"]
        with self.folder.staged(pull=pull + ([self.inputs.truth] if self.inputs.truth else [])) as local:
            self.figures = match_figures(local, self.inputs, about)
        self.figures["steps"] = step_seconds(f"{current.flow_name}/{current.run_id}")
        current.card.extend(match_card(self.figures))


if __name__ == "__main__":
    MatchFlow()
