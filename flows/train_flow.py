"""TrainFlow: labelled pairs → features → LightGBM with validation → model artifact + held-out evaluation.

    python flows/train_flow.py run                          # the sample catalog (seed 11) and its truth
    python flows/train_flow.py run --sources my.toml        # records + truth from a sources file
    python flows/train_flow.py run --sources my.toml --labels reviewed.csv   # a review export instead of truth
    python flows/match_flow.py run --model trainflow        # match with this branch's latest TrainFlow model

A part of the labelled data is held out before anything is fitted (by true
entity with ground truth, by record with review labels); the fit splits the
rest again for early stopping and its threshold. The run keeps the model as
an artifact (``Run.data.model``, a ``PairModel``) and as ``model.json`` in its
run folder (``Run.data.model_path``), and the card shows the held-out figures.
"""

from __future__ import annotations

import os

from metaflow import FlowSpec, Parameter, card, current, project, resources, step

from flows.cards import train_card
from flows.inputs import load_sources, match_config, prepare_inputs
from flows.locations import RunFolder
from flows.training import FEATURES_FILE, MODEL_FILE, evaluate, fit, labelled_candidates


@project(name="kg")
class TrainFlow(FlowSpec):
    """Train the pairwise model on labelled candidate pairs and report it on pairs it never saw."""

    sources = Parameter("sources", default="", help="sources TOML file with truth; empty: the sample catalog")
    labels = Parameter("labels", default="", help="review export (pair keys + 0/1 label) to train on instead")
    output_root = Parameter(
        "output_root", default=lambda ctx: os.environ.get("KG_OUTPUT_ROOT", "kg-runs"),
        help="local folder or object-storage URI (s3://bucket/prefix) runs write under, one folder per branch",
    )
    sample_entities = Parameter("sample_entities", type=int, default=2000, help="entities of the generated sample")
    sample_seed = Parameter("sample_seed", type=int, default=11, help="seed of the generated sample")
    held_out = Parameter("held_out", type=float, default=0.3, help="share of entities (or records) held out")
    seed = Parameter("seed", type=int, default=7, help="seed of the splits and of LightGBM")

    @step
    def start(self):
        """Records and their truth into this run's folder (ingested sources, or the sample)."""
        self.folder = RunFolder.for_run(self.output_root, current.branch_name, current.flow_name, current.run_id)
        sources = load_sources(self.sources) if self.sources else None
        self.config = match_config(sources)
        with self.folder.staged(push=["records", "quarantine", "truth.parquet"]) as local:
            self.inputs = prepare_inputs(local, sources, sample_entities=self.sample_entities,
                                         sample_seed=self.sample_seed)
        self.next(self.features)

    @resources(cpu=2, memory=8000)
    @step
    def features(self):
        """Every candidate pair blocking proposes (or every reviewed pair), featurised, labelled, split."""
        pull = ["records", *([self.inputs.truth] if self.inputs.truth else [])]
        with self.folder.staged(pull=pull, push=["training"]) as local:
            self.counts = labelled_candidates(local, self.inputs, self.config, labels_file=self.labels or None,
                                              held_out=self.held_out, seed=self.seed)
        self.next(self.fit)

    @resources(cpu=2, memory=4000)
    @step
    def fit(self):
        """LightGBM with a record-level validation split, early stopping and a threshold chosen on validation."""
        with self.folder.staged(pull=[FEATURES_FILE], push=[MODEL_FILE]) as local:
            self.model = fit(local, seed=self.seed, source=f"{current.flow_name}/{current.run_id}")
        self.model_path = self.folder.uri(MODEL_FILE)
        self.next(self.evaluate)

    @resources(cpu=2, memory=4000)
    @step
    def evaluate(self):
        """The model on the held-out pairs: pairwise and per source pair, PR curve, clustering, worst errors."""
        with self.folder.staged(pull=["records", "training", *([self.inputs.truth] if self.inputs.truth else [])]) \
                as local:
            self.report = evaluate(self.model, local, self.inputs, max_cluster=self.config.max_cluster)
        self.next(self.end)

    @card(type="blank", id="report")
    @step
    def end(self):
        """The report card."""
        current.card.extend(train_card(self.report, self.counts, self.model.metadata))


if __name__ == "__main__":
    TrainFlow()
