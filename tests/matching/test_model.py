import json

import numpy as np
import polars as pl
import pytest

from kg.errors import KGError
from matching.explain import explain_pair
from matching.features import FEATURE_REGISTRY
from matching.labels import label_pairs
from matching.model import (
    SCREEN_MIN_ACCEPTED,
    ModelError,
    best_threshold,
    conflicting_negatives,
    load_model,
    score_pairs,
    screen_cut,
    train_model,
)
from matching.train import candidate_features, train_on_truth

_PAIR_KEYS = ["left_source", "left_id", "right_source", "right_id"]


@pytest.fixture(scope="module")
def model(training_run):
    return train_on_truth(training_run.records, training_run.truth_pairs)


@pytest.fixture(scope="module")
def screened(training_run):
    """A model with a screen, though the sample is too small to trust one (``SCREEN_MIN_ACCEPTED``)."""
    return train_on_truth(training_run.records, training_run.truth_pairs, screen_min_accepted=1)


def test_model_separates_matches_on_unseen_records(model, sample_run) -> None:
    features = candidate_features(sample_run.records)
    y = label_pairs(features, sample_run.truth_pairs)
    p = model.predict(features)
    assert p[y == 1].mean() > 0.8 > 0.2 > p[y == 0].mean()
    assert 0.05 < model.threshold < 0.99
    assert model.metadata["valid_pairs"] > 0 and model.metadata["trees"] >= 1


def test_save_load_round_trip_keeps_scores_and_id(model, sample_run, tmp_path) -> None:
    features = candidate_features(sample_run.records)
    loaded = load_model(model.save(tmp_path / "m.json"))
    assert loaded.model_id == model.model_id
    np.testing.assert_allclose(loaded.predict(features), model.predict(features), rtol=1e-6)
    scores = pl.from_arrow(score_pairs(features, loaded))
    assert scores["model_id"].unique().to_list() == [model.model_id]
    assert (scores["match"] == (scores["score"] >= loaded.threshold)).all()


def test_refuses_features_it_was_not_trained_on(model, sample_run) -> None:
    features = pl.from_arrow(candidate_features(sample_run.records))
    with pytest.raises(ModelError, match="missing here: \\['title_ratio'\\]"):
        model.predict(features.drop("title_ratio"))
    with pytest.raises(ModelError, match="not trained on: \\['extra'\\]"):
        model.predict(features.with_columns(extra=pl.lit(1.0, pl.Float32)))


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"format": "other"}, "not a kg-pair-model file"),
        ({"format_version": 99}, "model format version 99"),
        ({"features_schema": ["features", 0]}, "trained on features schema"),
    ],
)
def test_load_refuses_other_formats_and_versions(model, tmp_path, patch, message) -> None:
    path = model.save(tmp_path / "m.json")
    doc = json.loads(path.read_text()) | patch
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match=message):
        load_model(path)


def test_load_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "absent.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ModelError, match="junk.json: not a model file"):
        load_model(tmp_path / "junk.json")


def test_contributions_add_up_to_the_log_odds(model, sample_run) -> None:
    features = pl.from_arrow(candidate_features(sample_run.records)).head(50)
    contrib = model.contributions(features)
    p = model.predict(features)
    np.testing.assert_allclose(1 / (1 + np.exp(-contrib["log_odds"].to_numpy())), p, rtol=1e-4, atol=1e-6)
    assert set(model.features) < set(contrib.columns)


def test_best_threshold_maximises_f1() -> None:
    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])
    threshold, f1 = best_threshold(y, p)
    # the best cut accepts down to 0.6; any threshold in (0.2, 0.6] gives that F1, and the middle is taken
    assert threshold == pytest.approx(0.4) and f1 == pytest.approx(2 * 0.75 / 1.75)


def test_ties_are_never_split_by_the_threshold() -> None:
    p = np.array([0.5, 0.5, 0.1])
    threshold, _ = best_threshold(np.array([1, 0, 1]), p)
    accepted = p >= threshold
    assert accepted[0] == accepted[1]


def test_indistinguishable_negatives_are_dropped_from_training() -> None:
    keys = {"left_source": ["a", "a", "a"], "left_id": ["1", "1", "1"], "right_source": ["b"] * 3,
            "right_id": ["x", "x2", "y"], "partition": [0, 0, 0]}
    df = pl.DataFrame({**keys, "f": [1.0, 1.0, 0.3]}, schema_overrides={"partition": pl.Int32, "f": pl.Float32})
    assert conflicting_negatives(df, np.array([1.0, 0.0, 0.0])).tolist() == [False, True, False]


def test_training_needs_both_classes(sample_run) -> None:
    features = candidate_features(sample_run.records)
    with pytest.raises(KGError, match="both matches and non-matches"):
        train_model(features, np.zeros(features.num_rows))


def test_the_same_labelled_pairs_give_the_same_model_in_any_order(training_run) -> None:
    """Partitions list pairs in their own order; bagging draws rows by position, so training sorts them first."""
    features = pl.from_arrow(candidate_features(training_run.records))
    y = label_pairs(features, training_run.truth_pairs)
    order = np.random.default_rng(3).permutation(features.height)
    first = train_model(features, y)
    again = train_model(features[order], y[order])
    assert again.model_id == first.model_id


def test_screen_cut_rejects_nothing_the_full_model_accepted_on_validation() -> None:
    p = np.array([0.01, 0.2, 0.4, 0.6, 0.7, 0.95], dtype=np.float32)
    accepted = np.array([False, False, True, False, True, True])
    assert screen_cut(p, accepted) == pytest.approx(0.4)
    assert screen_cut(p, np.zeros(6, bool)) == 0.0  # nothing accepted: no evidence, reject nothing


def test_no_screen_without_enough_accepted_validation_pairs(model) -> None:
    assert model.screen is None and "screen" not in model.metadata
    assert model.metadata["valid_matches"] < SCREEN_MIN_ACCEPTED


def test_screen_reads_only_cheap_features_and_survives_a_round_trip(screened, sample_run, tmp_path) -> None:
    screen = screened.screen
    assert screen is not None and 0 < screen.cut < 1
    costly = {f.name for f in FEATURE_REGISTRY if f.costly}
    assert screen.features and not costly & set(screen.features) and costly <= set(screened.features)
    assert 0 < screened.metadata["screen"]["valid_rejected"] < 1
    loaded = load_model(screened.save(tmp_path / "m.json"))
    assert (loaded.screen.features, loaded.screen.cut) == (screen.features, screen.cut)
    assert loaded.model_id == screened.model_id
    features = candidate_features(sample_run.records)
    assert score_pairs(features, loaded).equals(score_pairs(features, screened))


def test_the_screen_rejects_below_its_cut_and_the_full_model_scores_the_rest(screened, sample_run) -> None:
    features = pl.from_arrow(candidate_features(sample_run.records))
    scores = pl.from_arrow(score_pairs(features, screened))
    rejected = screened.screen.probability(features) < screened.screen.cut
    full = screened.predict(features)
    assert 0 < rejected.mean() < 1
    np.testing.assert_array_equal(scores["score"].to_numpy()[~rejected], full[~rejected])
    assert not scores["match"].to_numpy()[rejected].any()
    assert (scores["match"] == (scores["score"] >= screened.threshold)).all()


def test_explain_says_whether_the_screen_rejected_the_pair(screened, sample_run) -> None:
    features = pl.from_arrow(candidate_features(sample_run.records))
    rejected = screened.screen.probability(features) < screened.screen.cut
    for row in (int(np.flatnonzero(rejected)[0]), int(np.flatnonzero(~rejected)[0])):
        pair = features.row(row, named=True)
        left, right = (pair["left_source"], pair["left_id"]), (pair["right_source"], pair["right_id"])
        result = explain_pair(sample_run.records, screened, left, right)
        assert result["screen"]["rejected"] == rejected[row] and result["screen"]["cut"] == screened.screen.cut
        assert result["match"] == (result["score"] >= screened.threshold)


def test_a_model_without_a_screen_scores_every_pair_with_the_full_model(screened, sample_run, tmp_path) -> None:
    path = screened.save(tmp_path / "m.json")
    path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "screen"}))
    older = load_model(path)  # a file written before screens existed
    assert older.screen is None and older.model_id != screened.model_id
    features = candidate_features(sample_run.records)
    scores = pl.from_arrow(score_pairs(features, older))
    np.testing.assert_array_equal(scores["score"].to_numpy(), screened.predict(features))


def test_training_without_a_screen(training_run) -> None:
    features = candidate_features(training_run.records)
    y = label_pairs(features, training_run.truth_pairs)
    assert train_model(features, y, screen=False, screen_min_accepted=1).screen is None
    assert train_model(features, y, screen_min_accepted=1).screen is not None
    cheap = pl.from_arrow(features).select(*_PAIR_KEYS, "partition", "title_ratio", "year_diff")
    assert train_model(cheap, y, screen_min_accepted=1).screen is None  # nothing costly to save
