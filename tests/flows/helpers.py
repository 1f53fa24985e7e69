"""What the flow tests share: how to run a flow, the small sizes they use, and how to read a card back."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path

from metaflow import Runner
from metaflow.cards import get_cards

FLOWS = Path(__file__).resolve().parents[2] / "flows"
SMALL = {"sample_entities": 400, "bootstrap_entities": 400, "partitions": 3}
"""Small enough to keep each flow run short, large enough for the model to learn (about 800 records)."""


@dataclass(frozen=True)
class FlowEnv:
    root: Path  # output root of every run
    cwd: Path  # the datastore folder the flows run in

    def runner(self, flow: str, *, env: dict[str, str] | None = None, **top_level) -> Runner:
        """A Runner for ``flows/<flow>.py``; ``top_level`` are options before ``run`` (branch=, production=)."""
        return Runner(str(FLOWS / f"{flow}.py"), show_output=False, cwd=str(self.cwd),
                      env={"KG_OUTPUT_ROOT": str(self.root), **(env or {})}, **top_level)


def card_components(task) -> list[dict]:
    """The components of a task's report card, flattened: the card page embeds them as base64 JSON."""
    html = get_cards(task, id="report")[0].get()
    encoded = re.search(r'__MF_DATA__\["[^"]+"\] = "([^"]+)"', html)
    assert encoded, "no component data in the card"
    out: list[dict] = []

    def walk(items: list[dict]) -> None:
        for item in items:
            out.append(item)
            walk(item.get("contents", []))

    walk(json.loads(base64.b64decode(encoded.group(1)))["components"])
    return out
