import numpy as np
import polars as pl

from matching.evaluate import (
    bcubed,
    by_source_pair,
    errors_by_case,
    forgive_twins,
    pairwise_metrics,
    pr_curve,
)
from matching.labels import crosswalk_pairs


def _pairs(rows):
    return pl.DataFrame(rows, schema=["left_source", "left_id", "right_source", "right_id"], orient="row")


def test_pairwise_ignores_orientation() -> None:
    truth = _pairs([("a", "1", "b", "1"), ("a", "2", "b", "2")])
    predicted = _pairs([("b", "1", "a", "1"), ("a", "3", "b", "3")])
    m = pairwise_metrics(predicted, truth)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 1) and m["f1"] == 0.5


def test_by_source_pair_splits_figures() -> None:
    truth = _pairs([("a", "1", "b", "1"), ("a", "1", "c", "1")])
    out = by_source_pair(_pairs([("a", "1", "b", "1")]), truth)
    assert out["a-b"]["f1"] == 1.0 and out["a-c"]["recall"] == 0.0


def test_bcubed_on_a_known_case() -> None:
    truth = pl.DataFrame({"source": ["s"] * 4, "source_id": list("1234"), "entity_id": ["x", "x", "y", "y"]})
    predicted = truth.with_columns(entity_id=pl.Series(["p", "p", "p", "q"]))
    b = bcubed(predicted, truth)
    # records 1,2: precision 2/3; record 3: 1/3; record 4: 1 -> 2/3 ; recall: 1,1,1/2,1/2 -> 3/4
    assert b["precision"] == round(2 / 3, 5) and b["recall"] == 0.75


def test_crosswalk_pairs_are_cross_source() -> None:
    cw = pl.DataFrame({"source": ["a", "a", "b"], "source_id": ["1", "2", "1"], "entity_id": ["e", "e", "e"]})
    assert crosswalk_pairs(cw).height == 2


def test_pr_curve_runs_from_strict_to_loose() -> None:
    curve = pr_curve(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1]), points=4)
    assert curve["recall"].to_list() == [0.5, 0.5, 1.0, 1.0]
    assert curve["precision"][0] == 1.0


def test_forgive_twins_swaps_only_indistinguishable_copies() -> None:
    truth = _pairs([("a", "1", "b", "x1")])
    vectors = _pairs([("a", "1", "b", "x1"), ("a", "1", "b", "x2"), ("a", "1", "b", "y")]).with_columns(
        vec=pl.Series([7, 7, 8], dtype=pl.UInt64)
    )
    twin = forgive_twins(_pairs([("a", "1", "b", "x2")]), truth, vectors)
    assert pairwise_metrics(twin, truth)["f1"] == 1.0
    other = forgive_twins(_pairs([("a", "1", "b", "y")]), truth, vectors)
    assert pairwise_metrics(other, truth)["f1"] == 0.0


def test_errors_by_case_counts_each_tag() -> None:
    truth = _pairs([("a", "1", "b", "1"), ("a", "2", "b", "2")])
    predicted = _pairs([("a", "1", "b", "1"), ("a", "2", "b", "3")])
    cases = pl.DataFrame({"source": ["a", "a", "b"], "source_id": ["1", "2", "3"],
                          "cases": [["typo"], ["sequel"], ["sequel", "remake"]]})
    out = {r["case"]: r for r in errors_by_case(predicted, truth, cases).iter_rows(named=True)}
    assert out["typo"] == {"case": "typo", "true_pairs": 1, "missed": 0, "false_matches": 0}
    assert out["sequel"]["missed"] == 1 and out["sequel"]["false_matches"] == 1
    assert out["remake"]["false_matches"] == 1
