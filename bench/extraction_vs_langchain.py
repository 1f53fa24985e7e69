"""Our extraction (open and guided) against LangChain's ``LLMGraphTransformer``, same model, same documents.

Both talk to the same bundled Gemma 3 270M server (``open_client`` starts it;
the peer gets its ``base_url``), on the same seeded documents of WebNLG and
the moviegraph abstracts, and both are scored by ``extraction.evaluate``:
relation P/R/F1, grounding, tokens and seconds per document.

The peer is given what a LangChain user would give it: our concrete entity
types as ``allowed_nodes`` and our relation names as
``allowed_relationships`` (strict mode filters its output to them), the
same ``max_tokens`` as our open mode (1024) and temperature 0. It gives no
evidence, so its grounding is the proxy "both names occur in the text";
everything it returns counts as accepted (it has no gates).

LangChain lives in its own virtual environment (installing it next to our
lock would move the pinned openai 3.3.0 that instructor 1.17 is tested with,
and add the LangChain stack to the project): build it once with

    python3.11 -m venv /tmp/peer-venv
    /tmp/peer-venv/bin/pip install -r bench/requirements-peer-langchain.txt

and run, on a machine shared with other jobs, with one server thread:

    KG_LLM_THREADS=1 .venv/bin/python bench/extraction_vs_langchain.py -n 40 --out bench-extraction.json

This file is also the peer's worker: the peer venv runs it as
``python bench/extraction_vs_langchain.py --peer-worker ...`` (stdlib and
LangChain imports only on that path).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEER_PYTHON = "/tmp/peer-venv/bin/python"
MAX_TOKENS = 1024  # = ExtractOptions.max_tokens_open


# -- the peer side (runs in the peer venv: stdlib + LangChain only) --------------------------------


def peer_worker(docs_path: str, out_path: str, base_url: str, model: str, schema_json: str, method: str) -> None:
    """Run LLMGraphTransformer on every document of ``docs_path`` (JSONL: doc_id, text); write one JSON line per
    document: doc_id, relations [(head, relation, tail)], seconds, llm_seconds, tokens in/out, error."""
    import warnings

    warnings.filterwarnings("ignore")
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.documents import Document
    from langchain_experimental.graph_transformers import LLMGraphTransformer
    from langchain_openai import ChatOpenAI

    class Meter(BaseCallbackHandler):
        """Tokens and seconds of every LLM call LangChain makes."""

        def __init__(self) -> None:
            self.started: float | None = None
            self.llm_seconds = 0.0
            self.tokens_in = 0
            self.tokens_out = 0

        def on_chat_model_start(self, *args, **kwargs) -> None:
            self.started = time.perf_counter()

        def on_llm_end(self, response, **kwargs) -> None:
            if self.started is not None:
                self.llm_seconds += time.perf_counter() - self.started
                self.started = None
            usage = (response.llm_output or {}).get("token_usage") or {}
            self.tokens_in += usage.get("prompt_tokens", 0) or 0
            self.tokens_out += usage.get("completion_tokens", 0) or 0

        def on_llm_error(self, error, **kwargs) -> None:
            if self.started is not None:
                self.llm_seconds += time.perf_counter() - self.started
                self.started = None

    schema = json.loads(schema_json)
    llm = ChatOpenAI(base_url=base_url, api_key="no-key-needed", model=model, temperature=0, max_tokens=MAX_TOKENS,
                     timeout=600, max_retries=2)
    transformer = LLMGraphTransformer(
        llm=llm, allowed_nodes=schema["nodes"], allowed_relationships=schema["relationships"],
        ignore_tool_usage=(method == "prompt"),
    )
    with open(docs_path, encoding="utf-8") as f, open(out_path, "w", encoding="utf-8") as out:
        for line in f:
            doc = json.loads(line)
            meter = Meter()
            t0 = time.perf_counter()
            error, relations = None, []
            try:
                graph = transformer.convert_to_graph_documents(
                    [Document(page_content=doc["text"])], config={"callbacks": [meter]}
                )[0]
                relations = [(r.source.id, r.type, r.target.id) for r in graph.relationships]
            except Exception as e:  # the peer's failure on one document is counted, the run goes on
                error = f"{type(e).__name__}: {str(e)[:300]}"
            row = {"doc_id": doc["doc_id"], "relations": relations, "seconds": time.perf_counter() - t0,
                   "llm_seconds": meter.llm_seconds, "tokens_in": meter.tokens_in, "tokens_out": meter.tokens_out,
                   "error": error}
            out.write(json.dumps(row) + "\n")
            out.flush()


# -- our side ---------------------------------------------------------------------------------------


def run_peer(evalset, base_url: str, model: str, peer_python: str, method: str, ontology) -> dict:
    """The peer on ``evalset``'s documents in a subprocess; its predictions scored like ours."""
    import polars as pl

    from extraction.evaluate import endpoint_grounding, relation_scores, symmetric_relations

    schema = {"nodes": list(ontology.concrete_types), "relationships": list(ontology.relation_types)}
    with tempfile.TemporaryDirectory() as tmp:
        docs_path, out_path = Path(tmp) / "docs.jsonl", Path(tmp) / "peer.jsonl"
        docs_path.write_text("".join(json.dumps({"doc_id": d, "text": t}) + "\n" for d, t in evalset.documents))
        t0 = time.perf_counter()
        proc = subprocess.run(
            [peer_python, __file__, "--peer-worker", str(docs_path), str(out_path), base_url, model,
             json.dumps(schema), method],
            capture_output=True, text=True,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"peer worker failed ({proc.returncode}): {proc.stderr[-2000:]}")
        rows = [json.loads(x) for x in out_path.read_text().splitlines()]
    predicted = pl.DataFrame(
        [{"doc_id": r["doc_id"], "subject": str(h), "relation": str(rel).lower(), "object": str(t)}
         for r in rows for h, rel, t in r["relations"]],
        schema={"doc_id": pl.String, "subject": pl.String, "relation": pl.String, "object": pl.String},
    )
    texts = dict(evalset.documents)
    scores = relation_scores(predicted, evalset.gold, symmetric=symmetric_relations(ontology))
    docs = max(len(rows), 1)
    seconds = sum(r["seconds"] for r in rows)
    llm_seconds = sum(r["llm_seconds"] for r in rows)
    errors = [r["error"] for r in rows if r["error"]]
    return {
        **scores,
        "grounding_proxy": endpoint_grounding(predicted, texts),
        "failed_documents": len(errors),
        "errors": errors[:5],
        "tokens_per_doc": sum(r["tokens_in"] + r["tokens_out"] for r in rows) / docs,
        "seconds_per_doc": seconds / docs,
        "outside_llm_share": (seconds - llm_seconds) / seconds if seconds else None,
        "subprocess_wall_seconds": wall,
        "relations": predicted.rows(),
    }


def ours(evalset, client, mode: str, ontology) -> dict:
    from extraction.evaluate import endpoint_grounding, score_result, symmetric_relations
    from extraction.linking import LinkConfig
    from extraction.run import extract

    result = extract(evalset.documents, client, mode=mode, ontology=ontology,
                     gazetteer=evalset.gazetteer if mode == "guided" else None, linking=LinkConfig(margin=0.0))
    figures = score_result(result, evalset, symmetric=symmetric_relations(ontology))
    import polars as pl

    accepted = pl.from_arrow(result.accepted())
    figures["grounding_proxy"] = endpoint_grounding(accepted, dict(evalset.documents))
    figures["relations"] = accepted.select("doc_id", "subject", "relation", "object", "confidence").rows()
    return figures


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def print_side_by_side(name: str, runs: dict[str, dict]) -> None:
    cols = list(runs)
    print(f"\n== {name} ==")
    print(f"{'':34}" + "".join(f"{c:>18}" for c in cols))
    rows = [
        ("precision", lambda m: m["precision"]), ("recall", lambda m: m["recall"]), ("F1", lambda m: m["f1"]),
        ("precision (labelled)", lambda m: m["precision_labelled"]),
        ("accepted relations", lambda m: m["predicted"]), ("true positives", lambda m: m["tp"]),
        ("names not in text (accepted)", lambda m: m["grounding_proxy"]["ungrounded"]),
        ("evidence grounded (accepted)", lambda m: f"{m['grounding']['grounded']}/{m['grounding']['accepted']}"
         if "grounding" in m else "no evidence"),
        ("tokens / doc", lambda m: round(m["tokens_per_doc"], 1)),
        ("seconds / doc", lambda m: round(m["seconds_per_doc"], 2)),
        ("share outside the LLM", lambda m: m["outside_llm_share"]),
        ("failed (questions | documents)", lambda m: m.get("failed_requests", m.get("failed_documents"))),
    ]  # fmt: skip
    for label, get in rows:
        print(f"{label:34}" + "".join(f"{_fmt(get(runs[c])):>18}" for c in cols))
    peer = runs.get("langchain")
    if peer:
        for c in cols:
            if c != "langchain" and peer["f1"]:
                print(f"F1 ratio {c} / langchain: {runs[c]['f1'] / peer['f1']:.2f}")
            elif c != "langchain":
                print(f"F1 ratio {c} / langchain: undefined (langchain F1 = 0; {c} F1 = {runs[c]['f1']:.3f})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--dataset", nargs="+", default=["webnlg", "moviegraph"])
    parser.add_argument("-n", "--sample", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", nargs="*", default=["open", "guided"])
    parser.add_argument("--peer-python", default=PEER_PYTHON)
    parser.add_argument("--peer-method", choices=["structured", "prompt"], default="structured",
                        help="structured: LangChain's with_structured_output (default); prompt: ignore_tool_usage")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    from extraction.eval_cli import build_sets
    from extraction.llm import Endpoint, open_client
    from schemas.ontology import load_ontology

    if not args.no_peer and not Path(args.peer_python).exists():
        sys.exit(f"peer interpreter {args.peer_python} not found: build it (see this file's docstring) or --no-peer")
    ontology = load_ontology()
    sets = build_sets(args.data, args.dataset, args.sample, args.seed)
    report: dict = {"sample": args.sample, "seed": args.seed, "sets": {}}
    with open_client(Endpoint(concurrency=1), use_cache=False) as client:
        report["model"] = client.model_name
        report["threads"] = client.server.threads if client.server else None
        for s in sets:
            runs: dict[str, dict] = {}
            for mode in args.modes:
                runs[f"ours-{mode}"] = ours(s, client, mode, ontology)
                print(f"{s.name} ours-{mode}: F1 {runs[f'ours-{mode}']['f1']:.3f}", flush=True)
            if not args.no_peer:
                runs["langchain"] = run_peer(s, client.base_url, client.model_name, args.peer_python,
                                             args.peer_method, ontology)
                print(f"{s.name} langchain: F1 {runs['langchain']['f1']:.3f}", flush=True)
            report["sets"][s.name] = {"documents": len(s.documents), "gold_items": s.gold["gold_id"].n_unique(),
                                      "protocol": s.protocol, "out_of_scope": s.out_of_scope, "runs": runs}
            print_side_by_side(f"{s.name}: {len(s.documents)} documents, {s.gold['gold_id'].n_unique()} gold items",
                               runs)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nreport → {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--peer-worker":
        peer_worker(*sys.argv[2:8])
    else:
        main()
