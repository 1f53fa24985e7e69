import json

import numpy as np
import polars as pl
import pytest

from kg.errors import KGError
from matching.labels import label_pairs
from matching.model import ModelError, best_threshold, conflicting_negatives, load_model, score_pairs, train_model
from matching.train import candidate_features, train_on_truth


@pytest.fixture(scope="module")
def model(training_run):
    return train_on_truth(training_run.records, training_run.truth_pairs)


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
