"""From accepted pairs to entities: one-to-one between clean sources, components, weak-link splits, stable ids.

Only accepted pairs are read, so clustering a run costs its matches, not its
candidates. Components come from vectorised label propagation (numpy), not a
per-edge loop. The one place that walks edges in Python is the repair of
*bad* clusters (too big, or two records of one clean source): there edges are
re-added strongest first and an edge that would break a constraint is dropped,
which is "split by dropping the weakest links" and touches only those few clusters.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from schemas.tables import CROSSWALK, conform

_KEYS = ["left_source", "left_id", "right_source", "right_id"]


@dataclass(frozen=True)
class ClusterResult:
    """The crosswalk (every record, singletons included), the evidence pairs kept, and what was cut."""

    crosswalk: pa.Table
    evidence: pl.DataFrame  # accepted pairs that hold clusters together: keys, score, entity_id
    dropped: pl.DataFrame  # accepted pairs removed by one-to-one or cluster repair: keys, score, reason
    n_entities: int
    n_split: int  # clusters repaired by dropping their weakest links


def mutual_best(pairs: pl.DataFrame, clean: Collection[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(kept, dropped): between two clean sources a record keeps only its single best partner, both ways.

    Clean sources (no duplicates inside) can hold each entity once, so two
    accepted partners for one record from the same clean source means at
    least one is wrong; the mutual best is the standard vectorised answer.
    Equal scores are broken by :func:`path_support`, then by id: a record
    with nothing but a name (a TMDb person) scores the same against every
    copy of that name, and the copy its other matches point to is the right one.
    Only contested pairs (a record with several partners in one clean source)
    are ranked: the rest, nearly all of them, are their records' only choice.
    """
    both_clean = pl.col("left_source").is_in(list(clean)) & pl.col("right_source").is_in(list(clean))
    sides = [("left_source", "left_id", "right_source"), ("right_source", "right_id", "left_source")]
    contested = pl.any_horizontal(pl.len().over(*side) > 1 for side in sides) & both_clean
    rows = pairs.with_row_index("_row").filter(contested)  # a group with two pairs is wholly in here
    ranked = rows.join(path_support(pairs, rows), on=_KEYS, how="left").with_columns(pl.col("support").fill_null(0.0))
    ranked = ranked.sort("score", "support", "left_id", "right_id", descending=True)
    best = pl.struct(sides[0]).is_first_distinct() & pl.struct(sides[1]).is_first_distinct()
    keep = np.ones(pairs.height, dtype=bool)
    keep[ranked.filter(~best)["_row"].to_numpy()] = False
    mask = pl.Series(keep)
    return pairs.filter(mask), pairs.filter(~mask)


def path_support(pairs: pl.DataFrame, of: pl.DataFrame) -> pl.DataFrame:
    """(pair keys, support) for the pairs ``of``: the strongest two-step path of ``pairs`` between their records.

    A path a - c - b is as strong as its weaker step. Only the steps leaving
    the pairs' own records are read, so the cost follows the contested pairs, not the run.
    """
    def steps(ends: pl.DataFrame) -> pl.DataFrame:  # every pair touching a record of ends, as a (ends) -> c step
        fwd = pairs.join(ends, left_on=["left_source", "left_id"], right_on=["s", "i"], how="semi")
        rev = pairs.join(ends, left_on=["right_source", "right_id"], right_on=["s", "i"], how="semi")
        return pl.concat([
            fwd.select(a_s="left_source", a="left_id", c_s="right_source", c="right_id", s="score"),
            rev.select(a_s="right_source", a="right_id", c_s="left_source", c="left_id", s="score"),
        ])

    first = steps(of.select(s="left_source", i="left_id").unique())  # from the pair's left record
    second = steps(of.select(s="right_source", i="right_id").unique()).rename({"s": "s2"})  # from its right one
    return (
        of.select(_KEYS)
        .join(first, left_on=["left_source", "left_id"], right_on=["a_s", "a"])
        .join(second, left_on=["c_s", "c", "right_source", "right_id"], right_on=["c_s", "c", "a_s", "a"])
        .group_by(_KEYS)
        .agg(support=pl.min_horizontal("s", "s2").max())
    )


def components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Component label (smallest member index) per node: min-label propagation with pointer jumping."""
    labels = np.arange(n, dtype=np.int64)
    if len(u) == 0:
        return labels
    while True:
        low = np.minimum(labels[u], labels[v])
        before = labels.copy()
        np.minimum.at(labels, u, low)
        np.minimum.at(labels, v, low)
        while True:  # pointer jumping: labels[i] -> labels[labels[i]] until fixed
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(labels, before):
            return labels


def _repair(
    edges: pl.DataFrame, nodes: pl.DataFrame, labels: np.ndarray, clean: Collection[str], max_size: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Re-cluster bad clusters strongest edge first, skipping edges that break a constraint.

    Returns new labels, a keep-mask over ``edges`` and how many clusters were bad.
    """
    size = np.bincount(labels, minlength=len(labels))
    clean_nodes = nodes.select("source").with_columns(cluster=pl.Series(labels)).filter(
        pl.Series(size[labels] > 1) & pl.col("source").is_in(list(clean))
    )
    clean_dups = clean_nodes.group_by("cluster", "source").len("n").filter(pl.col("n") > 1)
    bad_set = set(np.flatnonzero(size > max_size).tolist()) | set(clean_dups["cluster"].to_list())
    keep = np.ones(edges.height, dtype=bool)
    if not bad_set:
        return labels, keep, 0
    in_bad = np.isin(labels[edges["u"].to_numpy()], list(bad_set))
    idx = np.flatnonzero(in_bad)
    u_all, v_all = edges["u"].to_numpy(), edges["v"].to_numpy()
    # equal scores in record order, not in the order the shards listed the pairs: the same pairs give the same
    # entities however the run was partitioned
    order = idx[np.lexsort((v_all[idx], u_all[idx], -edges["score"].to_numpy()[idx]))]
    members_of_bad = np.flatnonzero(np.isin(labels, list(bad_set)))
    src = dict(zip(members_of_bad.tolist(), nodes["source"].gather(members_of_bad).to_list(), strict=True))
    parent: dict[int, int] = {}
    members: dict[int, dict[str, int]] = {}
    sizes: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for e in order.tolist():
        a, b = find(int(u_all[e])), find(int(v_all[e]))
        if a == b:
            continue
        ma = members.get(a) or {src[a]: 1}
        mb = members.get(b) or {src[b]: 1}
        clash = any(s in clean and s in mb for s in ma)
        if clash or sizes.get(a, 1) + sizes.get(b, 1) > max_size:
            keep[e] = False
            continue
        if sizes.get(a, 1) < sizes.get(b, 1):
            a, b, ma, mb = b, a, mb, ma
        parent[b] = a
        merged = dict(ma)
        for s, c in mb.items():
            merged[s] = merged.get(s, 0) + c
        members[a], sizes[a] = merged, sizes.get(a, 1) + sizes.get(b, 1)
    kept_u, kept_v = u_all[keep], v_all[keep]
    return components(len(labels), kept_u, kept_v), keep, len(bad_set)


def _cluster_facts(assign: pl.DataFrame) -> pl.DataFrame:
    """Per cluster: its anchor (smallest ``source:source_id``) and type (its members' most common, ties by name).

    One pass over the records; only the few clusters whose members disagree on the type are counted out.
    """
    facts = assign.group_by("cluster").agg(
        anchor=pl.concat_str("source", "source_id", separator=":").min(),
        entity_type=pl.col("type").min(),
        mixed=pl.col("type").min() != pl.col("type").max(),
    )
    mixed = facts.filter("mixed").select("cluster")
    if mixed.is_empty():
        return facts.drop("mixed")
    votes = (
        assign.join(mixed, on="cluster", how="semi").group_by("cluster", "type").len("n")
        .sort("n", "type", descending=[True, False]).unique("cluster", keep="first")
    )
    return facts.join(votes.select("cluster", voted="type"), on="cluster", how="left").select(
        "cluster", "anchor", entity_type=pl.coalesce("voted", "entity_type")
    )


def _entity_ids(assign: pl.DataFrame, anchors: pl.DataFrame, previous: pl.DataFrame | None) -> pl.DataFrame:
    """entity_id per cluster: inherited from the previous crosswalk by majority, else its anchor record.

    The anchor is the cluster's smallest (source, source_id), so a cluster that
    does not change keeps its id even without a previous crosswalk; when
    members move, the previous id follows the larger share of its records.
    """
    if previous is None or previous.is_empty():
        return anchors.select("cluster", entity_id=pl.col("anchor"))
    votes = (
        assign.join(previous.select("source", "source_id", "entity_id"), on=["source", "source_id"])
        .group_by("cluster", "entity_id")
        .len("n")
    )
    # each old id goes to the cluster holding most of its records; each cluster takes its best-held old id
    claimed = votes.sort("n", "cluster", descending=[True, False]).unique("entity_id", keep="first")
    chosen = claimed.sort("n", "entity_id", descending=[True, False]).unique("cluster", keep="first")
    out = anchors.join(chosen.select("cluster", "entity_id"), on="cluster", how="left")
    taken = set(chosen["entity_id"].to_list())
    fresh = pl.when(pl.col("anchor").is_in(list(taken))).then(pl.concat_str("anchor", pl.lit("~"))).otherwise("anchor")
    return out.select("cluster", entity_id=pl.coalesce("entity_id", fresh))


def cluster_pairs(
    scores: pa.Table | pl.DataFrame,
    records: pa.Table | pl.DataFrame,
    *,
    run_id: str,
    clean_sources: Collection[str] = (),
    max_size: int = 50,
    previous: pa.Table | pl.DataFrame | None = None,
) -> ClusterResult:
    """Cluster records over accepted pairs (``match`` true) into entities.

    ``records`` needs ``source``, ``source_id`` and ``type``; every record gets
    an entity, a record without accepted pairs its own. The entity's type is
    its members' most common type (sources disagree on movie vs series).
    Crosswalk rows come in the order of ``records``.
    """
    sc = scores if isinstance(scores, pl.DataFrame) else pl.from_arrow(scores)
    recs = records if isinstance(records, pl.DataFrame) else pl.from_arrow(records)
    # numbered in the records' order: sorting them by key took 5.4 s of the 28 s that clustering 15M records did
    nodes = recs.select("source", "source_id", "type")
    nodes = nodes.filter(pl.struct("source", "source_id").is_first_distinct()).with_row_index("node")
    accepted = sc.filter(pl.col("match")).select(*_KEYS, "score")
    kept, dropped = mutual_best(accepted, clean_sources)
    dropped = dropped.with_columns(reason=pl.lit("one_to_one"))
    ids = nodes.select("source", "source_id", "node")
    edges = (
        kept.join(ids, left_on=["left_source", "left_id"], right_on=["source", "source_id"])
        .rename({"node": "u"})
        .join(ids, left_on=["right_source", "right_id"], right_on=["source", "source_id"])
        .rename({"node": "v"})
    )
    u, v = edges["u"].to_numpy().astype(np.int64), edges["v"].to_numpy().astype(np.int64)
    labels = components(nodes.height, u, v)
    labels, keep, n_split = _repair(edges.with_columns(u=pl.Series(u), v=pl.Series(v)), nodes, labels,
                                    set(clean_sources), max_size)
    cut = edges.filter(~pl.Series(keep)).select(*_KEYS, "score").with_columns(reason=pl.lit("weak_link"))
    assign = nodes.with_columns(cluster=pl.Series(labels))
    prev = None
    if previous is not None:
        prev = previous if isinstance(previous, pl.DataFrame) else pl.from_arrow(previous)
    facts = _cluster_facts(assign)
    facts = facts.join(_entity_ids(assign, facts, prev), on="cluster")
    row = np.empty(nodes.height, dtype=np.int64)  # cluster label -> its row in facts: a gather, not a join per node
    row[facts["cluster"].to_numpy()] = np.arange(facts.height)
    per_node = facts.select("entity_id", "entity_type")[row[labels]]
    crosswalk = pl.concat([nodes.select("source", "source_id"), per_node], how="horizontal").select(
        "source", "source_id", "entity_id", type="entity_type", run_id=pl.lit(run_id)
    )
    evidence = edges.filter(pl.Series(keep)).select(*_KEYS, "score").with_columns(
        entity_id=per_node["entity_id"].gather(u[keep])
    )
    return ClusterResult(
        crosswalk=conform(crosswalk.to_arrow(), CROSSWALK),
        evidence=evidence,
        dropped=pl.concat([dropped.select(*_KEYS, "score", "reason"), cut]),
        n_entities=facts.height,
        n_split=n_split,
    )
