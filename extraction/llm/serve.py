"""The bundled model's server process: ``python -m extraction.llm.serve --model FILE.gguf``.

xllamacpp embeds llama.cpp's OpenAI-compatible server, and it stops only with its process; so it runs here, in a
child process the toolkit owns (see ``bundled.py``). Protocol with the parent: once the model is loaded and the
port listens, one line on stdout: the server's address. Then it lives until its stdin reaches end of file, which
happens when the parent closes the pipe *or dies by any means* (even SIGKILL, which runs no cleanup), or until it
gets SIGTERM. Imports nothing from the toolkit, so ``bundled.py`` runs it as a plain script and it starts fast.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="the .gguf file")
    ap.add_argument("--alias", required=True, help="the model id the server answers to (and reports in responses)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: any free port (no race with other processes)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=4096, help="context tokens per slot")
    ap.add_argument("--parallel", type=int, default=1, help="slots: requests decoded together")
    args = ap.parse_args(argv)

    import xllamacpp as xlc

    p = xlc.CommonParams()
    p.model.path = args.model
    p.model_alias = {args.alias}
    p.n_parallel = args.parallel
    p.n_ctx = args.ctx * args.parallel  # llama.cpp splits n_ctx evenly between slots
    p.port = args.port
    p.hostnames = [args.host]
    p.offline = True
    p.ui = False
    p.verbosity = 2  # errors and warnings only, to the stderr file the parent keeps for failure messages
    p.cpuparams.n_threads = p.cpuparams_batch.n_threads = args.threads
    server = xlc.Server(p)
    print(server.listening_address, flush=True)
    sys.stdin.buffer.read()
    # Leave without running the server's destructor: the process exit frees everything, and nothing can hang.
    os._exit(0)


if __name__ == "__main__":
    main()
