"""``kg extract`` through typer, with the scripted client in place of the endpoint layer's ``open_client``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

import extraction.llm
from extraction.cli import register
from kg.graph import Graph
from tests.extraction.fakes import ScriptedClient, document_text, open_answer
from tests.store.helpers import build

TEXT = "Knives Out is a 2019 mystery film written and directed by Rian Johnson."


def responder(request):
    text = document_text(request)
    relations = []
    if "directed by Rian Johnson" in text:
        relations.append(
            {
                "evidence": "directed by Rian Johnson",
                "subject": "Rian Johnson",
                "subject_type": "person",
                "relation": "directed",
                "object": "Knives Out",
                "object_type": "movie",
            }
        )
    return open_answer(request, [{"text": "Knives Out", "type": "movie"}], relations)


@pytest.fixture
def endpoints(monkeypatch: pytest.MonkeyPatch) -> list:
    """Replace the real client factory; returns the Endpoints the command asked for."""
    asked = []

    @contextmanager
    def fake_open_client(endpoint=None, *, cache_dir=None):
        asked.append(endpoint)
        yield ScriptedClient(responder, endpoint=endpoint)

    monkeypatch.setattr(extraction.llm, "open_client", fake_open_client)
    return asked


@pytest.fixture
def kg() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def main() -> None:
        """A stand-in for the kg app."""

    register(app)
    return app


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"id": "knives", "text": TEXT}) + "\n", encoding="utf-8")
    return path


def test_extract_writes_outputs_with_no_configuration(kg, endpoints, docs, tmp_path: Path) -> None:
    out = tmp_path / "rel.jsonl"
    done = CliRunner().invoke(kg, ["extract", str(docs), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert endpoints[0].is_bundled and endpoints[0].temperature == 0.0  # the bundled model by default
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["subject"], r["relation"], r["object"], r["status"]) for r in rows] == [
        ("Rian Johnson", "directed", "Knives Out", "accepted")
    ]
    assert TEXT[rows[0]["start"] : rows[0]["end"]] == rows[0]["evidence"]
    assert (tmp_path / "rel.mentions.jsonl").exists() and (tmp_path / "rel.report.json").exists()
    assert "relations accepted" in done.output


def test_endpoint_flags_graph_merge_and_compare(kg, endpoints, docs, tmp_path: Path) -> None:
    store = build(tmp_path / "graph.duckdb")
    out = tmp_path / "rel.parquet"
    done = CliRunner().invoke(
        kg,
        [
            "extract",
            str(docs),
            "--out",
            str(out),
            "--base-url",
            "http://vllm.local/v1",
            "--model",
            "big-model",
            "--graph",
            str(store),
            "--compare",
            "small-model",
            "--samples",
            "2",
            "--concurrency",
            "3",
        ],
    )
    assert done.exit_code == 0, done.output
    first, second = endpoints
    assert (first.model, first.base_url, first.concurrency, first.temperature) == (
        "big-model",
        "http://vllm.local/v1",
        3,
        0.7,
    )
    assert (second.model, second.base_url) == ("small-model", "http://vllm.local/v1")
    assert "merged into" in done.output and "Jaccard" in done.output
    assert "A: scripted-big-model" in done.output and "B: scripted-small-model" in done.output
    assert pl.read_parquet(out)["subject_id"].to_list() == ["P-rian"]  # linked against the store's names
    assert (tmp_path / "rel.compare.parquet").exists()
    with Graph.open(store) as g:
        claims = g.sql("SELECT model, evidence FROM claims WHERE model = 'scripted-big-model'")
        assert claims.rows() == [("scripted-big-model", "directed by Rian Johnson")]


def test_staged_merge_goes_through_while_another_process_reads_the_graph(kg, endpoints, docs, tmp_path: Path) -> None:
    store = build(tmp_path / "graph.duckdb")
    root = Path(__file__).resolve().parents[2]
    reader = subprocess.Popen(
        [sys.executable, "-c", "import sys; from kg.graph import Graph; g = Graph.open(sys.argv[1]); "
         "print(g.sql('SELECT count(*) AS n FROM claims')['n'][0], flush=True); sys.stdin.readline()", str(store)],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert reader.stdout is not None
        claims = int(reader.stdout.readline())
        args = ["extract", str(docs), "--out", str(tmp_path / "rel.jsonl"), "--graph", str(store)]
        in_place = CliRunner().invoke(kg, args)
        assert in_place.exit_code != 0 and "locked by process" in in_place.output
        done = CliRunner().invoke(kg, [*args, "--staged"])
        assert done.exit_code == 0, done.output
    finally:
        reader.communicate("\n", timeout=60)
    with Graph.open(store) as g:
        assert g.sql("SELECT count(*) AS n FROM claims")["n"][0] == claims + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "rel.csv"], "output must end in one of"),
        (["--out", "rel.jsonl", "--text-field", "body"], "docs.jsonl:1: field 'body': missing"),
        (["--out", "rel.jsonl", "--base-url", "http://x/v1"], "--base-url needs --model"),
        (["--out", "rel.jsonl", "--mode", "creative"], "--mode must be one of"),
        (["--out", "rel.jsonl", "--model", "bundled", "--base-url", "http://x/v1"], "give the served model's name"),
    ],
)
def test_bad_input_is_one_clear_line(kg, endpoints, docs, tmp_path: Path, args: list, message: str) -> None:
    args = [str(tmp_path / a) if a.startswith("rel.") else a for a in args]
    done = CliRunner().invoke(kg, ["extract", str(docs), *args])
    assert done.exit_code == 2
    assert message in done.output and "Traceback" not in done.output
    assert endpoints == []  # nothing was asked


def test_compare_against_the_bundled_model(kg, endpoints, docs, tmp_path: Path) -> None:
    done = CliRunner().invoke(kg, ["extract", str(docs), "--out", str(tmp_path / "r.jsonl"), "--base-url",
                                   "http://vllm.local/v1", "--model", "big-model", "--compare", "bundled"])
    assert done.exit_code == 0, done.output
    assert endpoints[0].base_url == "http://vllm.local/v1" and endpoints[1].is_bundled
