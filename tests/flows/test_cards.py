"""The cards' own logic, on hand-made reports (the flow tests render them from real runs)."""

from flows.cards import train_card

_REPORT = {
    "model_id": "m-test", "protocol": "held out", "threshold": 0.5,
    "pairwise": {"precision": 0.99, "recall": 0.98, "f1": 0.985},
    "pr_curve": [], "feature_gain": [], "worst_errors": [],
}  # fmt: skip
_META = {"train_pairs": 100, "train_matches": 40, "valid_f1": 0.99, "trees": 50}


def _figures(components: list) -> dict[str, str]:
    rendered = [c.render() for c in components]
    tables = [t for t in rendered if t["type"] == "table" and t["columns"] == ["figure", "value"]]
    return {name: value for table in tables for name, value in table["data"]}


def test_train_card_shows_the_model_s_screen_where_training_fitted_one() -> None:
    screen = {"features": 15, "trees": 33, "cut": 0.00042, "valid_rejected": 0.75747}
    figures = _figures(train_card(_REPORT, {"records": 800}, {**_META, "screen": screen}))
    assert figures["screen trees"] == "33"
    assert figures["validation pairs the screen rejects"] == "75.7%"
    assert "screen trees" not in _figures(train_card(_REPORT, {"records": 800}, _META))
