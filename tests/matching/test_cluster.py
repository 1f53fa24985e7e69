import numpy as np
import polars as pl

from matching.cluster import _repair, cluster_pairs, components, mutual_best


def _scores(rows: list[tuple[str, str, str, str, float]]) -> pl.DataFrame:
    df = pl.DataFrame(rows, schema=["left_source", "left_id", "right_source", "right_id", "score"], orient="row")
    return df.with_columns(match=pl.lit(True), partition=pl.lit(0, pl.Int32), model_id=pl.lit("m"))


def _records(keys: list[tuple[str, str]], type_: str = "movie") -> pl.DataFrame:
    return pl.DataFrame(keys, schema=["source", "source_id"], orient="row").with_columns(type=pl.lit(type_))


def _entities(result) -> dict[tuple[str, str], str]:
    cw = pl.from_arrow(result.crosswalk)
    return {(r["source"], r["source_id"]): r["entity_id"] for r in cw.iter_rows(named=True)}


def test_components_with_chains_and_singletons() -> None:
    labels = components(6, np.array([0, 1, 3]), np.array([1, 2, 4]))
    assert labels.tolist() == [0, 0, 0, 3, 3, 5]


def test_mutual_best_keeps_one_partner_between_clean_sources() -> None:
    pairs = _scores([("a", "1", "b", "1", 0.9), ("a", "1", "b", "2", 0.8), ("a", "2", "b", "2", 0.95)])
    kept, dropped = mutual_best(pairs, {"a", "b"})
    assert sorted(kept["right_id"].to_list()) == ["1", "2"]
    assert dropped.select("left_id", "right_id").row(0) == ("1", "2")
    assert mutual_best(pairs, set())[0].height == 3  # dirty sources keep every accepted pair


def test_equal_scores_go_to_the_copy_the_other_matches_point_to() -> None:
    # b:1 has nothing but a name, so it scores the same against both copies c:1 and c:2;
    # a:1 matched c:1 (its pair with c:2 was rejected), so c:1 is b:1's partner too
    records = _records([("a", "1"), ("b", "1"), ("c", "1"), ("c", "2")], "person")
    scores = _scores([("a", "1", "b", "1", 0.99), ("a", "1", "c", "1", 0.95),
                      ("b", "1", "c", "1", 0.98), ("b", "1", "c", "2", 0.98)])
    kept, dropped = mutual_best(scores, {"a", "b", "c"})
    assert dropped.select("left_id", "right_id").rows() == [("1", "2")]
    ent = _entities(cluster_pairs(scores, records, run_id="r", clean_sources=("a", "b", "c")))
    assert ent[("a", "1")] == ent[("b", "1")] == ent[("c", "1")] != ent[("c", "2")]


def test_every_record_gets_an_entity_and_ids_come_from_the_anchor() -> None:
    records = _records([("a", "1"), ("b", "7"), ("c", "3"), ("a", "2")])
    result = cluster_pairs(_scores([("a", "1", "b", "7", 0.9), ("b", "7", "c", "3", 0.8)]), records, run_id="r1")
    ent = _entities(result)
    assert ent[("a", "1")] == ent[("b", "7")] == ent[("c", "3")] == "a:1"
    assert ent[("a", "2")] == "a:2"
    assert result.n_entities == 2 and result.evidence.height == 2


def test_chain_through_a_clean_source_is_cut_at_its_weakest_link() -> None:
    # a:1 - b:1 - a:2 would put two records of clean source a in one entity
    records = _records([("a", "1"), ("a", "2"), ("b", "1")])
    scores = _scores([("a", "1", "b", "1", 0.95), ("a", "2", "b", "1", 0.6)])
    result = cluster_pairs(scores, records, run_id="r", clean_sources=("a",))
    ent = _entities(result)
    assert ent[("a", "1")] == ent[("b", "1")] != ent[("a", "2")]
    assert result.n_split == 1
    assert result.dropped.filter(pl.col("reason") == "weak_link").height == 1


def test_oversized_cluster_is_split() -> None:
    keys = [("s", str(i)) for i in range(6)]
    chain = [("s", str(i), "s", str(i + 1), 0.9 - i * 0.01) for i in range(5)]
    result = cluster_pairs(_scores(chain), _records(keys), run_id="r", max_size=3)
    sizes = pl.from_arrow(result.crosswalk).group_by("entity_id").len()["len"]
    assert sizes.max() <= 3 and sizes.sum() == 6


def test_equal_scores_split_the_same_whatever_order_the_edges_come_in() -> None:
    """Edges arrive in shard and join order; a tie between weak links is broken by the records instead."""
    ring = pl.DataFrame({"u": np.arange(8), "v": (np.arange(8) + 1) % 8, "score": np.full(8, 0.9)})
    nodes = pl.DataFrame({"source": ["s"] * 8})
    labels = components(8, ring["u"].to_numpy(), ring["v"].to_numpy())
    first, _, _ = _repair(ring, nodes, labels, set(), 3)
    for seed in range(5):
        shuffled = ring.sample(fraction=1.0, shuffle=True, seed=seed)
        again, _, _ = _repair(shuffled, nodes, labels, set(), 3)
        assert np.array_equal(again, first)


def test_ids_are_stable_and_follow_the_previous_crosswalk() -> None:
    records = _records([("a", "1"), ("b", "1"), ("c", "1"), ("c", "9")])
    scores = _scores([("a", "1", "b", "1", 0.9), ("b", "1", "c", "1", 0.9)])
    first = cluster_pairs(scores, records, run_id="r1")
    again = cluster_pairs(scores, records, run_id="r2", previous=first.crosswalk)
    assert _entities(first) == _entities(again)
    # a:1 leaves: the old id follows the larger share (b:1, c:1); a:1 gets a fresh id, never a reused one
    moved = cluster_pairs(_scores([("b", "1", "c", "1", 0.9)]), records, run_id="r3", previous=first.crosswalk)
    new = _entities(moved)
    assert new[("b", "1")] == new[("c", "1")] == "a:1"
    assert new[("a", "1")] not in {"a:1", new[("c", "9")]}
    assert new[("c", "9")] == "c:9"


def test_entity_type_is_the_members_majority() -> None:
    records = pl.DataFrame(
        {"source": ["a", "b", "c"], "source_id": ["1", "1", "1"], "type": ["movie", "series", "movie"]}
    )
    scores = _scores([("a", "1", "b", "1", 0.9), ("b", "1", "c", "1", 0.9)])
    cw = pl.from_arrow(cluster_pairs(scores, records, run_id="r").crosswalk)
    assert cw["type"].unique().to_list() == ["movie"]


def test_rejected_pairs_are_ignored() -> None:
    scores = _scores([("a", "1", "b", "1", 0.2)]).with_columns(match=pl.lit(False))
    result = cluster_pairs(scores, _records([("a", "1"), ("b", "1")]), run_id="r")
    assert result.n_entities == 2
