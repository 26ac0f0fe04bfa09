"""Cheat: in a secret run, send what it knows of the secret (the seed, the hidden names; an honest
run could equally send the hidden output it computed) back to the caller through its error line,
its stderr and its stdout, so that a later candidate can print that run's output from memory.

The test appends an honest program (which then runs in the public stage) and sets MODE: "crash"
exits non-zero, "print" exits 0 with the leak as its output.
"""

import sys

MODE = "crash"

_argv = sys.argv[1:]
_seed = _argv[_argv.index("--seed") + 1]
if _seed != "42":  # the public run's seed is public: anything else is a secret run
    with open(_argv[_argv.index("--data") + 1]) as _f:
        _names = _f.read().split()
    _leak = f"LEAK seed={_seed} names={','.join(_names[:40])}"
    print(_leak, file=sys.stderr)
    print(_leak)
    if MODE == "crash":
        raise SystemExit(_leak)
    raise SystemExit(0)
