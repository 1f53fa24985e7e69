"""Extraction quality against gold triples: relation P/R/F1, grounding, rejections, tokens and time per document.

    from extraction.evaluate import evaluate, webnlg_set, moviegraph_set
    from extraction.llm import open_client

    sets = [webnlg_set("../shared/data/webnlg/dev", n=40), moviegraph_set("../shared/data/moviegraph", n=40)]
    with open_client() as llm:
        report = evaluate(sets, llm, modes=("open", "guided"))

Scoring (``relation_scores``): predicted and gold relations are tables of
``doc_id, subject, relation, object``; gold rows carry a ``gold_id`` (a gold
*item* may admit several relations: the moviegraph silver gold says "acted
in or wrote"). A prediction matches a gold item of the same document and
relation when both names match after normalisation (accents and case
folded, DBpedia's "(disambiguator)" and punctuation dropped) with rapidfuzz
``token_set_ratio`` at ``min_similarity`` or above, so "Eric Flint" matches
"Eric Flint, Virginia DeMarce, et al." and "English" matches "English
language"; direction counts except for symmetric relations. Matching is one
to one, best pairs first. Predictions are de-duplicated by normalised
(document, subject, relation, object) before scoring.

``precision`` counts every accepted prediction; ``precision_labelled`` only
those whose two names match some gold item's two names (any relation,
either direction): where gold is incomplete (moviegraph) that is the only
precision that means anything, as in the matching benchmark's labelled half.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

from extraction.gates import ground
from extraction.gazetteer import Gazetteer
from matching.normalize import fold

MIN_SIMILARITY = 90.0
PRED_SCHEMA = {"doc_id": pl.String, "subject": pl.String, "relation": pl.String, "object": pl.String}
GOLD_SCHEMA = {"gold_id": pl.Int64, **PRED_SCHEMA}
WEBNLG_CATEGORIES = ("Artist", "WrittenWork", "ComicsCharacter", "Politician", "Astronaut")


@dataclass
class EvalSet:
    """Documents with gold relations, and what guided mode may know (a gazetteer) on that data.

    ``gold``: gold_id, doc_id, subject, relation, object. ``out_of_scope``:
    gold the ontology cannot express, counted by reason (never scored).
    ``protocol``: how the set was drawn, for the report.
    """

    name: str
    documents: list[tuple[str, str]]
    gold: pl.DataFrame
    gazetteer: Gazetteer | None = None
    out_of_scope: dict[str, int] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)


# -- names and matching ----------------------------------------------------------------------------


def normalize_name(expr: pl.Expr) -> pl.Expr:
    """Comparison form of an entity name: folded, "(disambiguator)" and punctuation dropped, spaces collapsed."""
    return (
        fold(expr.str.replace_all("_", " "))
        .str.replace_all(r"\([^)]*\)", " ")
        .str.replace_all(r"['’`´]", "")
        .str.replace_all("&", " and ")
        .str.replace_all(r"[^\p{L}\p{N}]+", " ")
        .str.strip_chars()
    )


def dedupe_predictions(predicted: pl.DataFrame, symmetric: frozenset[str] = frozenset()) -> pl.DataFrame:
    """One row per normalised (document, subject, relation, object); symmetric relations in either order."""
    frame = predicted.select(list(PRED_SCHEMA)).cast(PRED_SCHEMA)
    s, o = normalize_name(pl.col("subject")), normalize_name(pl.col("object"))
    sym = pl.col("relation").is_in(list(symmetric))
    return (
        frame.with_columns(_s=s, _o=o)
        .with_columns(
            _a=pl.when(sym & (pl.col("_o") < pl.col("_s"))).then(pl.col("_o")).otherwise(pl.col("_s")),
            _b=pl.when(sym & (pl.col("_o") < pl.col("_s"))).then(pl.col("_s")).otherwise(pl.col("_o")),
        )
        .unique(["doc_id", "relation", "_a", "_b"], keep="first", maintain_order=True)
        .select(list(PRED_SCHEMA))
    )


def _similarity(left: list[str], right: list[str]) -> np.ndarray:
    if not left:
        return np.zeros(0, dtype=np.float32)
    return process.cpdist(left, right, scorer=fuzz.token_set_ratio, dtype=np.float32, workers=1)


def _pair_scores(pairs: pl.DataFrame, swap: pl.Expr | bool) -> pl.DataFrame:
    """``pairs`` with ``score`` = min(subject, object) similarity, the better of both orders where ``swap``."""
    ps, po = pairs["p_s"].to_list(), pairs["p_o"].to_list()
    gs, go = pairs["g_s"].to_list(), pairs["g_o"].to_list()
    straight = np.minimum(_similarity(ps, gs), _similarity(po, go))
    crossed = np.minimum(_similarity(ps, go), _similarity(po, gs))
    pairs = pairs.with_columns(straight=pl.Series(straight, dtype=pl.Float64),
                               crossed=pl.Series(crossed, dtype=pl.Float64))
    return pairs.with_columns(
        score=pl.when(swap).then(pl.max_horizontal("straight", "crossed")).otherwise(pl.col("straight"))
    ).drop("straight", "crossed")


def _candidates(predicted: pl.DataFrame, gold: pl.DataFrame, on: list[str]) -> pl.DataFrame:
    p = predicted.with_row_index("pred_id").select(
        "pred_id", *on, p_s=normalize_name(pl.col("subject")), p_o=normalize_name(pl.col("object"))
    )
    g = gold.select("gold_id", *on, g_s=normalize_name(pl.col("subject")), g_o=normalize_name(pl.col("object")))
    return p.join(g, on=on).filter(
        (pl.col("p_s").str.len_chars() > 0) & (pl.col("p_o").str.len_chars() > 0)
        & (pl.col("g_s").str.len_chars() > 0) & (pl.col("g_o").str.len_chars() > 0)
    )  # fmt: skip


def match_relations(
    predicted: pl.DataFrame,
    gold: pl.DataFrame,
    *,
    min_similarity: float = MIN_SIMILARITY,
    symmetric: frozenset[str] = frozenset(),
) -> pl.DataFrame:
    """One-to-one matches (pred_id = row of ``predicted``, gold_id, score), best first.

    Candidates are joined on (doc_id, relation) and scored in one rapidfuzz
    call per side; the greedy one-to-one pass walks only the candidates
    above the bar (a handful per document).
    """
    pairs = _candidates(predicted, gold, ["doc_id", "relation"])
    if pairs.height == 0:
        return pl.DataFrame(schema={"pred_id": pl.UInt32, "gold_id": pl.Int64, "score": pl.Float64})
    scored = _pair_scores(pairs, pl.col("relation").is_in(list(symmetric)))
    ranked = scored.filter(pl.col("score") >= min_similarity).sort(
        ["score", "pred_id", "gold_id"], descending=[True, False, False]
    )
    used_p: set[int] = set()
    used_g: set[int] = set()
    rows = []
    for pred_id, gold_id, score in ranked.select("pred_id", "gold_id", "score").iter_rows():
        if pred_id in used_p or gold_id in used_g:
            continue
        used_p.add(pred_id)
        used_g.add(gold_id)
        rows.append((pred_id, gold_id, score))
    return pl.DataFrame(rows, schema={"pred_id": pl.UInt32, "gold_id": pl.Int64, "score": pl.Float64}, orient="row")


def labelled(predicted: pl.DataFrame, gold: pl.DataFrame, *, min_similarity: float = MIN_SIMILARITY) -> pl.Series:
    """Per prediction: do its two names match the two names of some gold item (any relation, either order)?"""
    pairs = _candidates(predicted, gold, ["doc_id"])
    hit = np.zeros(predicted.height, dtype=bool)
    if pairs.height:
        scored = _pair_scores(pairs, True).filter(pl.col("score") >= min_similarity)
        hit[scored["pred_id"].unique().to_numpy()] = True
    return pl.Series("labelled", hit)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def relation_scores(
    predicted: pl.DataFrame,
    gold: pl.DataFrame,
    *,
    min_similarity: float = MIN_SIMILARITY,
    symmetric: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Precision, recall, F1 (and the labelled precision) of ``predicted`` against ``gold`` items."""
    predicted = dedupe_predictions(predicted, symmetric)
    gold = gold.select(list(GOLD_SCHEMA)).cast(GOLD_SCHEMA)
    matches = match_relations(predicted, gold, min_similarity=min_similarity, symmetric=symmetric)
    tp = matches.height
    n_pred, n_gold = predicted.height, gold["gold_id"].n_unique()
    n_labelled = int(labelled(predicted, gold, min_similarity=min_similarity).sum())
    precision, recall = _ratio(tp, n_pred), _ratio(tp, n_gold)
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    return {
        "predicted": n_pred, "gold": n_gold, "tp": tp, "fp": n_pred - tp, "fn": n_gold - tp,
        "precision": precision, "recall": recall, "f1": f1,
        "labelled_predicted": n_labelled, "precision_labelled": _ratio(tp, n_labelled),
    }  # fmt: skip


# -- grounding -------------------------------------------------------------------------------------


def names_in_text(frame: pl.DataFrame, texts: dict[str, str], *, fuzzy: float = 90.0) -> list[bool]:
    """Per row: do both its subject and object occur in its document (the gates' ``ground``: exact, normalised,
    then fuzzy at ``fuzzy``)?"""
    return [ground(s or "", texts.get(d, ""), fuzzy=fuzzy) is not None
            and ground(o or "", texts.get(d, ""), fuzzy=fuzzy) is not None
            for d, s, o in frame.select("doc_id", "subject", "object").iter_rows()]


def endpoint_grounding(predicted: pl.DataFrame, texts: dict[str, str], *, fuzzy: float = 90.0) -> dict[str, Any]:
    """How many predictions name two things that both occur in their document.

    For a system that gives no evidence (LangChain's graph transformer) this
    is the only grounding that can be checked: a relation between names the
    text never mentions is invented.
    """
    found = names_in_text(predicted, texts, fuzzy=fuzzy)
    n, ok = len(found), sum(found)
    return {"relations": n, "both_names_in_text": ok, "ungrounded": n - ok, "rate": _ratio(ok, n)}


def evidence_grounding(accepted: pl.DataFrame, texts: dict[str, str], *, fuzzy: float = 90.0) -> dict[str, Any]:
    """Re-check accepted relations independently of the gates: the evidence is the document's text at
    [start, end), and both names occur in the document. Must be every one, by construction."""
    rows = accepted.select("doc_id", "evidence", "start", "end").iter_rows()
    at_offsets = [s is not None and e is not None and bool(ev) and texts.get(d, "")[s:e] == ev
                  for d, ev, s, e in rows]
    names = names_in_text(accepted, texts, fuzzy=fuzzy)
    both = sum(a and b for a, b in zip(at_offsets, names, strict=True))
    return {"accepted": len(names), "evidence_at_offsets": sum(at_offsets), "names_in_text": sum(names),
            "grounded": both, "rate": _ratio(both, len(names))}


# -- one run, many runs ----------------------------------------------------------------------------


def run_figures(report: Any) -> dict[str, Any]:
    """Cost and behaviour of one ``extract`` run, per document, from its report."""
    docs = max(report.documents, 1)
    usage = report.usage
    return {
        "documents": report.documents,
        "requests": report.requests,
        "failed_requests": sum(report.failed_requests.values()),
        "accepted": report.relations_accepted,
        "rejected": sum(report.relations_rejected.values()),
        "rejected_by_reason": dict(sorted(report.relations_rejected.items())),
        "prompt_tokens_per_doc": usage.get("prompt_tokens", 0) / docs,
        "completion_tokens_per_doc": usage.get("completion_tokens", 0) / docs,
        "tokens_per_doc": (usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)) / docs,
        "seconds_per_doc": report.total_seconds / docs,
        "llm_wall_seconds": report.llm_wall_seconds,
        "total_seconds": report.total_seconds,
        "outside_llm_share": report.outside_llm_share,
        "cached_answers": usage.get("cached", 0),
    }


def score_result(result: Any, evalset: EvalSet, *, min_similarity: float = MIN_SIMILARITY,
                 symmetric: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Quality and cost figures of one ``ExtractionResult`` on ``evalset``."""
    texts = dict(evalset.documents)
    accepted = pl.from_arrow(result.accepted())
    scores = relation_scores(accepted, evalset.gold, min_similarity=min_similarity, symmetric=symmetric)
    return {**scores, "grounding": evidence_grounding(accepted, texts), **run_figures(result.report)}


def symmetric_relations(ontology: Any) -> frozenset[str]:
    return frozenset(n for n, r in ontology.relation_types.items() if r.symmetric)


def evaluate(
    sets: Sequence[EvalSet],
    client: Any,
    *,
    modes: Sequence[str] = ("open", "guided"),
    gates: Any = None,
    min_similarity: float = MIN_SIMILARITY,
    progress: bool = False,
) -> dict[str, Any]:
    """Run ``extract`` in each mode on each set with ``client`` and score it: {set: {mode: figures}, protocol}."""
    from extraction.linking import LinkConfig
    from extraction.run import extract
    from schemas.ontology import load_ontology

    ontology = load_ontology()
    symmetric = symmetric_relations(ontology)
    out: dict[str, Any] = {"model": str(client.model_name), "sets": {}}
    for s in sets:
        entry: dict[str, Any] = {"documents": len(s.documents), "gold_items": s.gold["gold_id"].n_unique(),
                                 "out_of_scope": s.out_of_scope, "protocol": s.protocol, "modes": {}}
        for mode in modes:
            result = extract(s.documents, client, mode=mode, ontology=ontology, gates=gates,
                             gazetteer=s.gazetteer if mode == "guided" else None,
                             linking=LinkConfig(margin=0.0), progress=progress)
            entry["modes"][mode] = score_result(result, s, min_similarity=min_similarity, symmetric=symmetric)
        out["sets"][s.name] = entry
    return out


# -- the two data sets -----------------------------------------------------------------------------


def webnlg_set(path: str | Path, n: int = 40, *, seed: int = 0,
               categories: tuple[str, ...] | None = WEBNLG_CATEGORIES, gazetteer: bool = True) -> EvalSet:
    """``n`` WebNLG entries (seeded) with at least one in-scope triple; gold = their in-scope triples.

    ``gazetteer``: guided mode knows every entity name of the whole split
    (untyped, so the LLM still types each one), as it would know a graph's
    names; without it guided mode relies on its capitalised-span detector.
    """
    from extraction.webnlg import entity_name_expr, read_webnlg, sample_webnlg

    data = read_webnlg(path)
    docs, triples = sample_webnlg(data, n, seed=seed, categories=categories)
    gold = triples.filter(pl.col("scope") == "in").select(
        pl.col("triple").cast(pl.Int64).alias("gold_id"), "doc_id", "subject", "relation", "object"
    )
    out = dict(triples.filter(pl.col("scope") != "in")["scope"].value_counts(sort=True).iter_rows())
    gaz = None
    if gazetteer:
        names = pl.concat([data.triples.select(name="subject"), data.triples.select(name="object")]).unique()
        names = names.select(name=entity_name_expr(pl.col("name")).str.replace(r"\s*\([^)]*\)$", ""))
        names = names.unique().filter(pl.col("name").str.contains(r"^\p{Lu}")).with_row_index("entity_id")
        gaz = Gazetteer(names.with_columns(pl.col("entity_id").cast(pl.String)))
    protocol = {"source": str(path), "seed": seed, "categories": list(categories or []),
                "in_scope_triples": gold.height, "out_of_scope_triples": sum(out.values()),
                "gazetteer_names": len(gaz) if gaz else 0}
    return EvalSet("webnlg", docs, gold, gaz, out, protocol)


def moviegraph_set(data_dir: str | Path, n: int = 40, *, seed: int = 0, work_dir: str | Path | None = None) -> EvalSet:
    """``n`` moviegraph abstracts (seeded) with silver gold (``extraction.moviegraph_gold``); the records'
    names and aliases are guided mode's gazetteer."""
    from extraction.moviegraph_gold import load_records, sample_moviegraph

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        records = load_records(data_dir, work_dir or tmp)
    docs, gold, gaz, counts = sample_moviegraph(records, n, seed=seed)
    protocol = {"source": str(data_dir), "seed": seed, **counts, "gold": "silver (distant supervision)",
                "seconds_to_build": round(time.perf_counter() - t0, 2)}
    return EvalSet("moviegraph", docs, gold, gaz, {}, protocol)
