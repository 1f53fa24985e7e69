"""Which partitions of a run were slow, and why: the skew report behind the flow card and ``kg match``.

A partition is slow for one of three reasons, and the fix differs:

* it holds more pairs than the others (the plan's estimate was off, or one
  heavy unit landed there): more partitions, a smaller ``max_block``;
* its pairs cost more each (heavy units: big windows make blocking's
  self-join and top-k work hard; long strings slow the features): look at
  the stage that dominates;
* neither (its time is in line with its pairs): the machine was busy.

The report compares each partition with the median one on pairs, seconds
and seconds per pair, lists the heavy units the plan placed there (by
blocking rule), and says which of the three it is.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from matching.blocking import load_plan, unit_rule
from matching.pipeline import read_partition_stats

STAGES = ("blocking", "features", "scoring")
SLOW = 1.25
"""A partition taking this many times the median time is named in the text."""


def partition_report(run_dir: str | Path, top: int = 3) -> tuple[pl.DataFrame, str]:
    """Per-partition figures (slowest first) and a few lines naming the slowest partitions and why.

    Reads ``stats/part-*.json`` and ``plan.pkl`` of the run folder; the columns:
    partition, pairs, matches, seconds, seconds_<stage>, estimated_pairs (the
    plan's cost estimate), heavy_units and heavy_rules (the oversized blocks and
    windows the plan placed there, by blocking rule), time_ratio and pairs_ratio
    (to the median partition), us_per_pair, slowest_stage.
    """
    run_dir = Path(run_dir)
    stats = read_partition_stats(run_dir)
    if stats.is_empty():
        return stats, f"{run_dir}: no finished partitions yet"
    plan = load_plan(run_dir / "plan.pkl")
    heavy = (
        plan.heavy.with_columns(rule=unit_rule(pl.col("unit"), plan))
        .group_by("partition", "rule")
        .len("n")
        .sort("n", "rule", descending=[True, False])
        .group_by("partition", maintain_order=True)
        .agg(heavy_units=pl.col("n").sum(), heavy_rules=pl.format("{} x{}", "rule", "n").str.join(", "))
    )
    estimated = pl.DataFrame({"partition": range(plan.n_partitions), "estimated_pairs": plan.costs},
                             schema={"partition": pl.Int64, "estimated_pairs": pl.Float64})
    median_s = max(float(stats["seconds"].median()), 1e-9)
    median_p = max(float(stats["pairs"].median()), 1.0)
    stage_cols = [f"seconds_{s}" for s in STAGES]
    report = (
        stats.with_columns(pl.col("partition").cast(pl.Int64))
        .join(estimated, on="partition", how="left")
        .join(heavy.with_columns(pl.col("partition").cast(pl.Int64)), on="partition", how="left")
        .with_columns(
            pl.col("heavy_units").fill_null(0),
            time_ratio=pl.col("seconds") / median_s,
            pairs_ratio=pl.col("pairs") / median_p,
            us_per_pair=pl.col("seconds") * 1e6 / pl.max_horizontal(pl.col("pairs"), 1),
            slowest_stage=pl.concat_list(stage_cols).list.arg_max().replace_strict(
                dict(enumerate(STAGES)), return_dtype=pl.String
            ),
        )
        .sort("seconds", "partition", descending=[True, False])
        .select(
            "partition", "pairs", "matches", "screened_out", "seconds", *stage_cols, "estimated_pairs", "heavy_units",
            "heavy_rules",
            "time_ratio", "pairs_ratio", "us_per_pair", "slowest_stage",
        )
    )
    return report, _explain(report, top)


def _explain(report: pl.DataFrame, top: int) -> str:
    worst = report.row(0, named=True)
    lines = [
        f"{report.height} partitions; slowest/median time {worst['time_ratio']:.2f} "
        f"(partition {worst['partition']}: {worst['seconds']:.2f} s, {worst['pairs']:,} pairs); "
        f"total {report['seconds'].sum():.1f} s, {report['pairs'].sum():,} pairs"
    ]
    median_us = float(report["us_per_pair"].median() or 0.0)
    for row in report.head(top).iter_rows(named=True):
        if row["time_ratio"] < SLOW:
            break
        stage = row["slowest_stage"]
        share = row[f"seconds_{stage}"] / row["seconds"] if row["seconds"] else 0.0
        if row["pairs_ratio"] >= 0.8 * row["time_ratio"]:
            why = f"{row['pairs_ratio']:.2f}x the median pairs"
        elif row["us_per_pair"] > 1.5 * median_us:
            why = f"{row['us_per_pair'] / max(median_us, 1e-9):.1f}x the median time per pair"
        else:
            why = "time out of line with its pairs (a busy machine?)"
        heavy = (
            f"; {row['heavy_units']} heavy unit(s) placed here ({row['heavy_rules']})"
            if row["heavy_units"] else ""
        )
        lines.append(
            f"partition {row['partition']}: {row['time_ratio']:.2f}x the median time, {why}; "
            f"{stage} {share:.0%} of its time{heavy}"
        )
    if len(lines) == 1:
        lines.append(f"no partition takes {SLOW}x the median time or more")
    return "\n".join(lines)
