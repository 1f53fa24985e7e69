"""Card components for the flows' reports: Metaflow's built-in ones, with plots as Vega-Lite specs.

``VegaChart`` takes a plain Vega-Lite dict and the card bundles the renderer,
so the plots need no plotting library and open offline
(``python flows/match_flow.py card view end``). Every builder here takes the
figures a flow keeps as an artifact and returns a list of components.
"""

from __future__ import annotations

from typing import Any

from metaflow.cards import Markdown, Table, ValueBox, VegaChart

_VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"


def chart(title: str, rows: list[dict[str, Any]], mark: str | dict, encoding: dict, **extra: Any) -> VegaChart:
    """A Vega-Lite chart over ``rows`` (the data travels inside the card, so keep it small)."""
    spec = {"$schema": _VEGA_LITE, "title": title, "data": {"values": rows}, "mark": mark,
            "encoding": encoding, "height": 220, **extra}
    return VegaChart(spec)


def key_figures(pairs: dict[str, Any]) -> Table:
    """A two-column table of named figures, numbers formatted for reading."""
    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    return Table([[name, fmt(value)] for name, value in pairs.items()], headers=["figure", "value"])


def rows_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> Table:
    if not rows:
        return Table([["(none)"]])
    columns = columns or list(rows[0])
    body = [[_cell(r.get(c)) for c in columns] for r in rows]
    return Table(body, headers=columns)


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    return "" if value is None else value


def match_card(figures: dict[str, Any]) -> list:
    """The MatchFlow report: key figures, block sizes, score distribution, PR curve, partitions, skew."""
    s = figures["summary"]
    out: list = [Markdown(f"# Matching run {s['run_id']}\n{s['records']:,} records from {s['inputs']}; "
                          f"model {s['model_id']} ({s['model_origin']}); branch `{s['branch']}`")]
    out += [
        ValueBox(title="records", value=s["records"]),
        ValueBox(title="candidate pairs", value=s["pairs"]),
        ValueBox(title="accepted pairs", value=s["accepted"]),
        ValueBox(title="entities", value=s["entities"]),
    ]
    quality = figures.get("quality")
    if quality:
        p = quality["pairwise"]
        out.append(ValueBox(title="pairwise F1 vs truth", value=round(p["f1"], 4),
                            subtitle=f"precision {p['precision']:.4f}, recall {p['recall']:.4f}"))
    out.append(key_figures({k: v for k, v in s.items() if k not in ("run_id", "inputs")}))
    out.append(chart(
        "Block sizes (units by size, powers of two; windows count as units)", figures["block_sizes"], "bar",
        {"x": {"field": "size_from", "type": "ordinal", "title": "records in the unit (from)"},
         "y": {"field": "units", "type": "quantitative", "scale": {"type": "log"}, "title": "units"},
         "tooltip": [{"field": "size_from"}, {"field": "units"}, {"field": "records"}]},
    ))
    out.append(chart(
        f"Score distribution (threshold {s['threshold']:.3f})", figures["scores"], "bar",
        {"x": {"field": "score_from", "type": "ordinal", "title": "score (bin start)"},
         "y": {"field": "pairs", "type": "quantitative", "scale": {"type": "symlog"}, "title": "candidate pairs"},
         "color": {"field": "decision", "type": "nominal"},
         "tooltip": [{"field": "score_from"}, {"field": "decision"}, {"field": "pairs"}]},
    ))
    if figures.get("pr_curve"):
        out.append(chart(
            "Precision / recall over the candidate pairs (truth known)", figures["pr_curve"],
            {"type": "line", "point": True},
            {"x": {"field": "recall", "type": "quantitative", "scale": {"zero": False}},
             "y": {"field": "precision", "type": "quantitative", "scale": {"zero": False}},
             "tooltip": [{"field": "threshold"}, {"field": "precision"}, {"field": "recall"}]},
        ))
        q = quality or {}
        out.append(key_figures({
            "pair completeness (true pairs among candidates)": q.get("pair_completeness"),
            **{f"pairwise {k}": v for k, v in q.get("pairwise", {}).items()},
            **{f"B-cubed {k}": v for k, v in q.get("bcubed", {}).items()},
        }))
    out += partition_components(figures["partitions"], figures["skew"])
    if figures.get("steps"):
        out += [Markdown("## Wall time per step (Metaflow metadata, orchestration included)"),
                rows_table(figures["steps"])]
    return out


def partition_components(partitions: list[dict[str, Any]], skew: str) -> list:
    """Partition time against pair count, time per stage, and the skew report's table and verdict."""
    stages = [
        {"partition": str(p["partition"]), "stage": stage, "seconds": p[f"seconds_{stage}"]}
        for p in partitions for stage in ("blocking", "features", "scoring")
    ]
    return [
        Markdown("## Partitions\n" + "\n\n".join(f"`{line}`" for line in skew.splitlines())),
        chart(
            "Partition time against pair count", partitions, {"type": "point", "filled": True, "size": 80},
            {"x": {"field": "pairs", "type": "quantitative", "title": "candidate pairs"},
             "y": {"field": "seconds", "type": "quantitative", "title": "seconds (blocking + features + scoring)"},
             "tooltip": [{"field": "partition"}, {"field": "pairs"}, {"field": "seconds"},
                         {"field": "heavy_units"}]},
        ),
        chart(
            "Time per stage and partition", stages, "bar",
            {"x": {"field": "partition", "type": "ordinal"},
             "y": {"field": "seconds", "type": "quantitative", "stack": True},
             "color": {"field": "stage", "type": "nominal"}},
        ),
        rows_table(partitions, ["partition", "pairs", "matches", "screened_out", "seconds", "seconds_blocking",
                                "seconds_features", "seconds_scoring", "estimated_pairs", "heavy_units",
                                "heavy_rules", "time_ratio", "pairs_ratio", "us_per_pair", "slowest_stage"]),
    ]


def train_card(report: dict[str, Any], counts: dict[str, Any], model_meta: dict[str, Any]) -> list:
    """The TrainFlow report: training counts, validation, held-out figures, PR curve, feature gains, errors."""
    p = report["pairwise"]
    out: list = [
        Markdown(f"# Pairwise model {report['model_id']}\n{report['protocol']}"),
        ValueBox(title="held-out F1", value=round(p["f1"], 4),
                 subtitle=f"precision {p['precision']:.4f}, recall {p['recall']:.4f}"),
        ValueBox(title="validation F1", value=round(float(model_meta.get("valid_f1", 0.0)), 4),
                 subtitle=f"threshold {report['threshold']}"),
        key_figures({**counts, **{k: model_meta[k] for k in ("train_pairs", "train_matches", "valid_pairs",
                                                               "valid_matches", "trees", "seconds")
                                  if k in model_meta}, **_screen_figures(model_meta.get("screen"))}),
        chart(
            "Precision / recall on held-out pairs", report["pr_curve"], {"type": "line", "point": True},
            {"x": {"field": "recall", "type": "quantitative", "scale": {"zero": False}},
             "y": {"field": "precision", "type": "quantitative", "scale": {"zero": False}},
             "tooltip": [{"field": "threshold"}, {"field": "precision"}, {"field": "recall"}]},
        ),
        chart(
            "Feature gain", report["feature_gain"], "bar",
            {"y": {"field": "feature", "type": "nominal", "sort": "-x"},
             "x": {"field": "gain", "type": "quantitative"}},
        ),
    ]
    if "by_source_pair" in report:
        rows = [{"source pair": k, **v} for k, v in report["by_source_pair"].items()]
        out += [Markdown("## Per source pair (held out)"), rows_table(rows)]
    if "clustering" in report:
        c = report["clustering"]
        out.append(key_figures({**{f"B-cubed {k}": v for k, v in c["bcubed"].items()},
                                "entities": c["entities"], "split clusters": c["split_clusters"]}))
    out += [Markdown("## Most confident mistakes (held out)"), rows_table(report["worst_errors"])]
    return out


def _screen_figures(screen: dict[str, Any] | None) -> dict[str, Any]:
    """The model's screen (``matching.model.Screen``) as card figures; none where training fitted none."""
    if not screen:
        return {}
    return {"screen features": screen["features"], "screen trees": screen["trees"], "screen cut": screen["cut"],
            "validation pairs the screen rejects": f"{screen['valid_rejected']:.1%}"}


def rejections_chart(by_reason: dict[str, int], title: str) -> VegaChart:
    """Rejected candidates by reason (extraction gates), largest first."""
    rows = [{"reason": k, "count": v} for k, v in sorted(by_reason.items(), key=lambda kv: -kv[1])]
    return chart(title, rows, "bar", {"y": {"field": "reason", "type": "nominal", "sort": "-x"},
                                      "x": {"field": "count", "type": "quantitative"}})


def extract_card(reports: list[dict[str, Any]], corpus: dict[str, Any], merged: dict[str, Any], *, branch: str,
                 run_id: str) -> list:
    """The ExtractFlow report: totals over shards, rejections by reason, per-shard time and questions."""
    def total(key: str) -> int:
        return sum(int(r.get(key) or 0) for r in reports)

    def by_reason(key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in reports:
            for reason, n in (r.get(key) or {}).items():
                out[reason] = out.get(reason, 0) + n
        return out

    rejected = by_reason("relations_rejected")
    usage = {k: sum(int((r.get("usage") or {}).get(k) or 0) for r in reports) for k in
             ("prompt_tokens", "completion_tokens", "cached")}
    out: list = [
        Markdown(f"# Extraction run {run_id}\n{corpus['documents']} documents in {len(reports)} shards, "
                 f"model {reports[0]['model']} ({reports[0]['mode']} mode); branch `{branch}`"),
        ValueBox(title="relations accepted", value=total("relations_accepted")),
        ValueBox(title="relations rejected", value=sum(rejected.values())),
        ValueBox(title="mentions", value=total("mentions")),
        key_figures({
            "documents": corpus["documents"], "skipped inputs": str(corpus["skipped"] or "none"),
            "LLM questions": total("requests"), "failed questions": sum(sum((r.get("failed_requests") or {})
                                                                            .values()) for r in reports),
            "tokens in": usage["prompt_tokens"], "tokens out": usage["completion_tokens"],
            "cached answers": usage["cached"], "cost": round(sum(float(r.get("cost") or 0) for r in reports), 4),
            "new entities merged": merged["new_entities"], "graph": merged["graph"],
        }),
    ]
    if rejected:
        out.append(rejections_chart(rejected, "Rejected relations by reason"))
    mention_reasons = by_reason("mentions_rejected")
    if mention_reasons:
        out.append(rejections_chart(mention_reasons, "Rejected mentions by reason"))
    shards = [{"shard": r["shard"], "documents": r["documents"], "requests": r["requests"],
               "accepted": r["relations_accepted"], "seconds": round(r["total_seconds"], 2),
               "llm_seconds": round(r["llm_wall_seconds"], 2)} for r in reports]
    out += [Markdown("## Shards"), rows_table(shards)]
    return out
