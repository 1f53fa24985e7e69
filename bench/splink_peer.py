"""The peer for the matching benchmark: Splink 5 on DuckDB, linking the three sample sources.

Splink is what a user reaches for to link a million records on a laptop, so our
pipeline is measured against it on the same records in the same run. The model
is the one a competent Splink user would write for these fields, following
Splink's tutorials:

* inputs cleaned first (lower case, accents and punctuation stripped);
* comparisons: title (exact with term-frequency adjustment, so "Mother" is weak
  evidence / any title or alias in common / Jaro-Winkler 0.95 / Levenshtein 2 /
  Jaro-Winkler 0.88, 0.7), year (exact, ±1, ±3), runtime (±1, ±3, ±10 min),
  directors (≥1 shared), cast (≥3, ≥1 shared), writers (≥1 shared),
  countries (≥1 shared). Our model also reads the abstract; given to Splink
  (Jaro-Winkler 0.9 on the first 160 characters) it cost Splink 11 points of
  F1 (precision 0.80: EM over-weights templated synopses) and doubled its
  time at 1M records, so, as a Splink user would, it is left out;
* blocking rules for prediction, each requiring the same ``type`` (a movie is
  never compared with a person): a shared title or alias + year; the same title
  when one year is missing; a shared title or alias + a shared director; title
  prefix + year; director + year + country; last title word (a person's
  surname) + year;
* training: the prior from a deterministic rule of assumed recall, u by random
  sampling (1e7 pairs), m by EM on two blocking rules (title; year + runtime).

The blocking was tightened for scale the way a Splink user would after looking
at the comparison counts: a bare shared-title rule and a bare director + year
rule enumerate the common titles and the prolific director quadratically (67M
comparisons and 18.6 GB peak at 1M records, against about a fifth of that here)
for about half a point of F1.

Three sources are linked with ``link_type="link_only"`` and three registered
tables (each source is already deduplicated, so only cross-source pairs are
scored). Given the sources known to be duplicate-free, clustering is Splink's
single-best-links (at most one record of each such source per cluster), the
peer of our clustering's ``clean_sources``. Each call builds its own
in-memory DuckDB connection, spilling to a temporary folder, so calls share
no state.

    .venv/bin/python bench/splink_peer.py --entities 20000
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from kg.demo import truth_pairs
from kg.ingest import ingest_source
from kg.sample import generate_sample

# Splink is imported inside splink_match: a checkout without it can still import
# this module (the test skips with a message instead of failing at collection).

PAIR_COLUMNS = ["left_source", "left_id", "right_source", "right_id"]


@dataclass
class SplinkResult:
    """What one Splink run produced and how long each stage took."""

    pairs: pl.DataFrame  # left_source, left_id, right_source, right_id, match_probability (>= threshold)
    clusters: pl.DataFrame  # source, source_id, cluster_id (every input record, singletons included)
    seconds: dict[str, float] = field(default_factory=dict)  # wall clock: prepare, train, predict, cluster, total
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # process CPU (all threads), same keys
    n_comparisons: int = 0  # candidate pairs the blocking rules produced, all scored by predict


def _clean(expr: pl.Expr) -> pl.Expr:
    """Splink's advice for string inputs: lower case, no accents, punctuation to spaces, one space."""
    return (
        expr.str.normalize("NFKD")
        .str.replace_all(r"\p{M}", "")
        .str.to_lowercase()
        .str.replace_all(r"[^\p{L}\p{N}]+", " ")
        .str.strip_chars()
        .replace("", None)
    )


def _clean_list(col: str) -> pl.Expr:
    """A list of names cleaned item by item; empty lists become null so Splink's null level sees them."""
    cleaned = pl.col(col).list.eval(_clean(pl.element()).drop_nulls()).list.unique(maintain_order=True)
    return pl.when(cleaned.list.len() > 0).then(cleaned).alias(col)


def prepare_inputs(records: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """RECORDS → one Splink input table per source, with the cleaned columns the model uses.

    ``titles`` is the cleaned name plus cleaned aliases (translated and original
    titles): the array a Splink user explodes for blocking and intersects for an
    "any title in common" level. ``cast`` is renamed ``cast_members``: Splink's
    settings validator reads a column called ``cast`` as the SQL keyword and
    reports it missing.
    """
    missing = {"source", "source_id", "type", "name", "aliases", "year", "runtime_min", "countries", "directors",
               "cast", "writers"} - set(records.columns)  # fmt: skip
    if missing:
        raise ValueError(f"records lack column(s) {sorted(missing)}: pass a RECORDS table (schemas/tables.py)")
    titles = (
        pl.concat_list(_clean(pl.col("name")), pl.col("aliases").fill_null([]).list.eval(_clean(pl.element())))
        .list.drop_nulls()
        .list.unique(maintain_order=True)
    )
    prepared = records.select(
        "source",
        pl.col("source_id").alias("unique_id"),
        "type",
        _clean(pl.col("name")).alias("name_norm"),
        pl.when(titles.list.len() > 0).then(titles).alias("titles"),
        "year",
        pl.col("runtime_min").cast(pl.Float64),
        _clean_list("countries"),
        _clean_list("directors"),
        _clean_list("cast").alias("cast_members"),
        _clean_list("writers"),
    )
    sources = sorted(prepared["source"].unique().to_list())
    if len(sources) < 2:
        raise ValueError(f"link_only needs at least two sources, got {sources}")
    return {s: prepared.filter(pl.col("source") == s).drop("source") for s in sources}


def _model():
    """The Splink settings: comparisons and prediction blocking rules (see the module docstring)."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    title = cl.CustomComparison(
        output_column_name="title",
        comparison_levels=[
            cll.NullLevel("name_norm"),
            cll.ExactMatchLevel("name_norm", term_frequency_adjustments=True),
            cll.ArrayIntersectLevel("titles", 1).configure(label_for_charts="any title or alias in common"),
            cll.JaroWinklerLevel("name_norm", 0.95),
            cll.LevenshteinLevel("name_norm", 2),
            cll.JaroWinklerLevel("name_norm", 0.88),
            cll.JaroWinklerLevel("name_norm", 0.7),
            cll.ElseLevel(),
        ],
    )
    year = cl.CustomComparison(
        output_column_name="year",
        comparison_levels=[
            cll.NullLevel("year"),
            cll.ExactMatchLevel("year"),
            cll.AbsoluteDifferenceLevel("year", 1),
            cll.AbsoluteDifferenceLevel("year", 3),
            cll.ElseLevel(),
        ],
    )
    runtime = cl.CustomComparison(
        output_column_name="runtime",
        comparison_levels=[
            cll.NullLevel("runtime_min"),
            cll.AbsoluteDifferenceLevel("runtime_min", 1),
            cll.AbsoluteDifferenceLevel("runtime_min", 3),
            cll.AbsoluteDifferenceLevel("runtime_min", 10),
            cll.ElseLevel(),
        ],
    )
    comparisons = [
        title,
        year,
        runtime,
        cl.ArrayIntersectAtSizes("directors", [1]),
        cl.ArrayIntersectAtSizes("cast_members", [3, 1]),
        cl.ArrayIntersectAtSizes("writers", [1]),
        cl.ArrayIntersectAtSizes("countries", [1]),
    ]
    blocking = [
        block_on("type", "titles", "year", arrays_to_explode=["titles"]),
        "l.type = r.type AND l.name_norm = r.name_norm AND (l.year IS NULL OR r.year IS NULL)",
        block_on("type", "titles", "directors", arrays_to_explode=["titles", "directors"]),
        block_on("type", "substr(name_norm, 1, 6)", "year"),
        block_on("type", "directors", "year", "countries", arrays_to_explode=["directors", "countries"]),
        block_on("type", "list_last(string_split(name_norm, ' '))", "year"),
    ]
    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def _train(linker) -> None:
    """Unsupervised training as Splink's tutorials do it: prior, u by random sampling, m by EM twice.

    The prior comes from a deterministic rule of assumed recall; u from random
    record pairs (almost all non-matches); m from EM on two blocking rules that
    leave different comparisons free, so every comparison gets trained once.
    """
    from splink import block_on

    training = linker.training
    training.estimate_probability_two_random_records_match([block_on("type", "name_norm", "year")], recall=0.7)
    training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    training.estimate_parameters_using_expectation_maximisation(
        block_on("type", "name_norm"), estimate_without_term_frequencies=True, max_pairs=5e6
    )
    training.estimate_parameters_using_expectation_maximisation(
        block_on("type", "year", "round(runtime_min)"), max_pairs=2e6
    )


class _Clock:
    """Wall and process CPU seconds per stage: on a shared machine the CPU figure is the steadier one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        self._start = (self._wall, self._cpu)

    def lap(self, stage: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.seconds[stage], self.cpu_seconds[stage] = wall - self._wall, cpu - self._cpu
        self._wall, self._cpu = wall, cpu

    def stop(self) -> None:
        self.seconds["total"] = time.perf_counter() - self._start[0]
        self.cpu_seconds["total"] = time.process_time() - self._start[1]


def splink_match(
    records: pl.DataFrame, *, threshold: float = 0.5, threads: int = 2, duplicate_free: Sequence[str] = ()
) -> SplinkResult:
    """Link the sources in ``records`` (RECORDS schema) with Splink 5 on DuckDB; pairs above ``threshold``.

    Stages, timed separately: prepare (cleaning in polars, registering the
    Arrow tables with DuckDB, building the linker), train (prior, u, m),
    predict (blocking + scoring, and the pairs read back into polars) and
    cluster (connected components at ``threshold``; with ``duplicate_free``
    sources, Splink's single-best-links clustering, which keeps at most one
    record of each such source per cluster, as our clustering's
    ``clean_sources`` does). DuckDB gets ``threads`` threads and a private
    spill folder, removed on return.
    """
    from splink import DuckDBAPI, Linker

    clock = _Clock()
    with tempfile.TemporaryDirectory(prefix="kg-splink-") as spill:
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"SET threads = {int(threads)}")
            con.execute(f"SET temp_directory = '{spill}'")
            con.execute("SET enable_progress_bar = false")
            db_api = DuckDBAPI(connection=con)
            inputs = prepare_inputs(records)
            tables = [db_api.register(df.to_arrow(), dataset_display_name=s) for s, df in inputs.items()]
            linker = Linker(tables, _model(), log_level=None)
            clock.lap("prepare")

            _train(linker)
            clock.lap("train")

            # Materialised first so it can be counted; predict() then reuses it from Splink's cache.
            blocked = linker.inference.compute_blocked_pairs_for_predict()
            n_comparisons = con.sql(f"SELECT count(*) FROM {blocked.physical_name}").fetchall()[0][0]
            predictions = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
            pairs = pl.from_arrow(
                predictions.as_duckdbpyrelation()
                .select(
                    "source_dataset_l AS left_source, unique_id_l AS left_id, "
                    "source_dataset_r AS right_source, unique_id_r AS right_id, match_probability"
                )
                .to_arrow_table()
            )
            clock.lap("predict")

            if duplicate_free:
                clustered = linker.clustering.cluster_using_single_best_links(
                    predictions, duplicate_free_datasets=list(duplicate_free), threshold_match_probability=threshold
                )
            else:
                clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
                    predictions, threshold_match_probability=threshold
                )
            clusters = pl.from_arrow(
                clustered.as_duckdbpyrelation()
                .select("source_dataset AS source, unique_id AS source_id, cluster_id")
                .to_arrow_table()
            )
            clock.lap("cluster")
        finally:
            con.close()
    clock.stop()
    return SplinkResult(
        pairs=pairs,
        clusters=clusters,
        seconds=clock.seconds,
        cpu_seconds=clock.cpu_seconds,
        n_comparisons=int(n_comparisons),
    )


def _oriented(pairs: pl.DataFrame) -> pl.DataFrame:
    """Cross-source pairs with the smaller (source, id) on the left, each once."""
    swap = (pl.col("left_source") > pl.col("right_source")) | (
        (pl.col("left_source") == pl.col("right_source")) & (pl.col("left_id") > pl.col("right_id"))
    )
    return (
        pairs.filter(pl.col("left_source") != pl.col("right_source"))
        .select(
            pl.when(swap).then(pl.col(b)).otherwise(pl.col(a)).alias(a)
            for a, b in (
                ("left_source", "right_source"),
                ("left_id", "right_id"),
                ("right_source", "left_source"),
                ("right_id", "left_id"),
            )
        )
        .unique()
    )


def evaluate(pairs: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float]:
    """Pairwise precision, recall and F1 over cross-source pairs; both frames carry PAIR_COLUMNS."""
    predicted, true = _oriented(pairs.select(PAIR_COLUMNS)), _oriented(truth.select(PAIR_COLUMNS))
    hits = predicted.join(true, on=PAIR_COLUMNS, how="semi").height
    precision = hits / predicted.height if predicted.height else 0.0
    recall = hits / true.height if true.height else 0.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "predicted": predicted.height, "true": true.height}


def cluster_pairs(clusters: pl.DataFrame) -> pl.DataFrame:
    """Every cross-source pair the clustering implies (records sharing a cluster_id)."""
    left = clusters.rename({"source": "left_source", "source_id": "left_id"})
    right = clusters.rename({"source": "right_source", "source_id": "right_id"})
    return left.join(right, on="cluster_id").filter(pl.col("left_source") < pl.col("right_source")).select(PAIR_COLUMNS)


def _reset_peak_rss() -> None:
    """Start VmHWM afresh (Linux ≥ 4.0), so the peak printed is the Splink run's, not the generator's."""
    clear = Path("/proc/self/clear_refs")
    if clear.exists():
        clear.write_text("5")


def _peak_rss_mib() -> float:
    """This process's peak resident memory since the last reset (VmHWM), MiB; 0 where /proc is absent."""
    status = Path("/proc/self/status")
    if not status.exists():
        return 0.0
    line = next((x for x in status.read_text().splitlines() if x.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entities", type=int, default=20_000, help="entities in the generated sample")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threshold", type=float, default=0.5, help="match probability for pairs and clusters")
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    ap.add_argument("--workdir", type=Path, default=None, help="where to write the sample (default: temp, removed)")
    ap.add_argument("--duplicate-free", nargs="*", default=[], metavar="SOURCE",
                    help="sources with one record per entity: single-best-links clustering (the sample's all are)")
    args = ap.parse_args()

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="kg-bench-splink-") as tmp:
        work = args.workdir or Path(tmp)
        t0 = time.perf_counter()
        sample = generate_sample(work / "raw", n_entities=args.entities, seed=args.seed)
        reports = [ingest_source(sample.mappings[s], [sample.raw[s]], work) for s in sample.raw]
        records = pl.concat([pl.read_parquet(r.records_path) for r in reports])
        print(f"sample: {args.entities:,} entities → {records.height:,} records "
              f"({', '.join(f'{s}: {n:,}' for s, n in sorted(records['source'].value_counts().iter_rows()))}); "
              f"generated + ingested in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        present = records.select("source", "source_id")
        truth = (
            truth_pairs(sample.truth)
            .join(
                present.rename({"source": "left_source", "source_id": "left_id"}),
                on=["left_source", "left_id"],
                how="semi",
            )
            .join(
                present.rename({"source": "right_source", "source_id": "right_id"}),
                on=["right_source", "right_id"],
                how="semi",
            )
        )
        _reset_peak_rss()
        result = splink_match(
            records, threshold=args.threshold, threads=args.threads, duplicate_free=args.duplicate_free
        )

    s, c = result.seconds, result.cpu_seconds
    print(
        f"splink {args.threads} threads, wall (CPU) seconds: "
        + ", ".join(f"{k} {s[k]:.1f} ({c[k]:.1f})" for k in ("prepare", "train", "predict", "cluster", "total"))
    )
    print(
        f"comparisons scored: {result.n_comparisons:,}; pairs ≥ {args.threshold}: {result.pairs.height:,}; "
        f"clusters: {result.clusters['cluster_id'].n_unique():,}"
    )
    for label, pairs in (("pairs", result.pairs), ("cluster pairs", cluster_pairs(result.clusters))):
        m = evaluate(pairs, truth)
        print(
            f"{label:<14} precision {m['precision']:.4f}  recall {m['recall']:.4f}  F1 {m['f1']:.4f}  "
            f"({m['predicted']:,} predicted, {m['true']:,} true)"
        )
    print(f"peak memory during Splink (VmHWM, records already loaded): {_peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
