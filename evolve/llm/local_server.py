"""Child process: serve one GGUF with llama.cpp's OpenAI-compatible server (``xllamacpp``).

Started by :class:`evolve.llm.local.LocalServer` as ``python -m evolve.llm.local_server ...``. It
binds 127.0.0.1 on a port the kernel picks (no race for a "free" port), prints ``READY <address>``
on its stdout, then serves until SIGTERM, or until its parent is gone: stdin is a pipe only the
parent holds, so its EOF means the parent exited (even by SIGKILL), and a changed parent pid means
the same when the pipe leaked to another process. PR_SET_PDEATHSIG is not used: it fires when the
parent *thread* that started us exits, which would kill a server started from a worker thread.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import threading
import traceback

POLL_S = 0.5


def _watch_parent(parent: int) -> None:
    """Exit the whole process as soon as the parent is gone."""
    stdin = sys.stdin.fileno()
    while True:
        readable, _, _ = select.select([stdin], [], [], POLL_S)
        if readable and not os.read(stdin, 4096):
            os._exit(0)
        if os.getppid() != parent:
            os._exit(0)


def main(argv: list[str] | None = None) -> None:
    try:
        serve(argv)
    except BaseException:  # noqa: BLE001 - the runtime's own threads would keep a failed process alive
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


def serve(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(prog="python -m evolve.llm.local_server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)
    if os.getppid() != args.parent:  # the parent died before we got here
        os._exit(0)
    threading.Thread(target=_watch_parent, args=(args.parent,), daemon=True).start()
    ready = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything the runtime prints goes to the log, not into our READY channel

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.n_ctx = args.ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    server = xllamacpp.Server(params)
    ready.write(f"READY {server.listening_address}\n")
    ready.flush()
    threading.Event().wait()  # serve until a signal or the watchdog ends the process


if __name__ == "__main__":
    main()
