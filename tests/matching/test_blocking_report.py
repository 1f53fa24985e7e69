import polars as pl

from matching.blocking import all_candidate_pairs, plan_partitions, prepare_for, record_units, title_exact
from matching.blocking_report import block_size_histogram, blocking_report
from tests.matching.builders import movie, records


def test_report_figures() -> None:
    recs = records([
        movie("a", "1", "Heat", 1995), movie("b", "1", "Heat", 1995),
        movie("a", "2", "Alien", 1979), movie("b", "2", "Aliens", 1986),
    ])  # fmt: skip
    plan = plan_partitions(recs, [title_exact()], n_partitions=2)
    pairs = all_candidate_pairs(recs, plan)
    truth = pl.DataFrame({"left_source": ["b", "a"], "left_id": ["1", "2"],
                          "right_source": ["a", "b"], "right_id": ["1", "2"]})  # fmt: skip
    report = blocking_report(pairs, recs, truth)
    assert report.n_pairs == 1
    assert report.pair_completeness == 0.5  # truth orientation does not matter
    assert report.reduction_ratio == 1 - 1 / 4
    assert report.candidates_per_record == 0.5
    assert report.by_source_pair["true_pairs"].to_list() == [2]
    hist = block_size_histogram(record_units(prepare_for(plan, recs), plan))
    assert hist["records"].sum() == 4
