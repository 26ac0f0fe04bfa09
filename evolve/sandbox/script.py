"""Running a script job inside a forked, confined worker of the script zygote, as ``python -s`` would.

A fresh script job execs a new interpreter (~20 ms of start-up on this machine, ~85 ms per toy
candidate in all); the script zygote (:func:`evolve.sandbox.zygote.bootstrap`) forks one that has
already started. What the fork could carry that a fresh interpreter would not, and what removes it:

- trusted frames (the zygote's configuration, the job's spec, the channels): unwound before this
  runs (:class:`~evolve.sandbox.supervise.RunScript`);
- descriptors: closed by the worker's set-up, as in fresh mode (only 0, 1 and 2 stay open);
- environment: the job's own (scrubbed) one, as in fresh mode;
- memory: the zygote is a ``python -s`` that imported the standard library and evolve's sandbox
  modules only, with the scrubbed environment; it never receives a job (the parent hands each job
  to its worker directly, and tells the zygote only the worker's pid, its timeout and its report
  pipe), so there is nothing of another job, of the task or
  of evolve's parent process in it;
- ``sys.modules``: evolve's modules are removed, so the script imports its own ``evolve`` (or a
  same-named file of its own) like a fresh interpreter would. Standard-library modules the sandbox
  imported stay loaded: a script's ``json.py`` next to it does not shadow the standard ``json`` here,
  as it would in a fresh interpreter.

Memory figures: the worker starts holding the zygote's pages, so its peak RSS comes with a baseline
(``ProcessResult.baseline_rss_mib``) and the memory cgroup charges only the pages the script adds
(the interpreter's own ~10 MiB are the zygote's). Tasks whose objective is the peak memory of a
whole program (``microgpt``) stay on fresh mode, comparable with ``/usr/bin/time``.
"""

from __future__ import annotations

import builtins
import gc
import os
import sys
import types

_TRUSTED = ("evolve", "evaluators")


def run(argv: list[str]) -> None:
    """Run ``argv[0]`` as ``__main__`` with ``sys.argv = argv``; an uncaught exception is printed
    (without this function's frame) and exits with status 1, like the interpreter does."""
    for name in [n for n in sys.modules if n.split(".")[0] in _TRUSTED]:
        del sys.modules[name]
    gc.collect()
    path = argv[0]
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(path))
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=path, __builtins__=builtins, __cached__=None)
    sys.modules["__main__"] = main
    try:
        with open(path, "rb") as f:
            code = compile(f.read(), path, "exec")
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        if exc.__traceback__ is not None:  # without this function's frame
            exc.__traceback__ = exc.__traceback__.tb_next
        sys.excepthook(type(exc), exc, exc.__traceback__)
        raise SystemExit(1) from None
