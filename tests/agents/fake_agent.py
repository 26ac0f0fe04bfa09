"""A scripted stand-in for an agent CLI such as ``codex exec --json``, for the agent-cli tests.

    fake_agent.py MODES WORKDIR ITERATION [PIDFILE]

``MODES`` is a comma-separated cycle; iteration ``i`` (1-based) plays ``MODES[(i-1) % len]``. The
prompt arrives on stdin. Every mode except ``silent`` speaks the Codex ``--json`` event format.

- ``improve``: move the toy program's ``values`` halfway to the target (a real improvement)
- ``perturb``: set ``values`` to the target shifted by a different small amount every iteration
- ``break``: make the program raise at run time, and claim a perfect score
- ``outside``: improve, but also edit outside the EVOLVE-BLOCK and write other files
- ``hang``: improve, start a child in its process group, record both pids in PIDFILE, sleep forever
- ``spend``: report token usage every 50 ms, forever (for token limits)
- ``silent``: improve without any event stream
- ``check``: run the evaluate command the prompt gives and report its output
- ``env``: report the names of its environment variables and its HOME
- ``git``: improve, commit in the worktree and point a ``refs/evolve`` ref at the commit; report its sha
- ``noop``: change nothing
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from evaluators.toy import TARGET

VALUES = re.compile(r"^values = \[([^\]\n]*)\]$", re.MULTILINE)
USAGE = {"input_tokens": 1200, "cached_input_tokens": 300, "output_tokens": 80}


def emit(event: dict) -> None:
    print(json.dumps(event), flush=True)


def message(text: str) -> None:
    emit({"type": "item.completed", "item": {"id": "item_9", "type": "agent_message", "text": text}})


def improve(program: Path) -> None:
    source = program.read_text()
    old = [float(v) for v in VALUES.search(source).group(1).split(",")]
    new = [round(o + (t - o) / 2, 4) for o, t in zip(old, TARGET)]
    program.write_text(VALUES.sub(f"values = {json.dumps(new)}", source))


def main(modes: str, workdir: str, iteration: str, pidfile: str | None = None) -> None:
    cycle = modes.split(",")
    mode = cycle[(int(iteration) - 1) % len(cycle)]
    program = Path(workdir) / "program.py"
    prompt = sys.stdin.read()
    if mode != "silent":
        emit({"type": "thread.started", "thread_id": f"fake-{iteration}"})
        emit({"type": "turn.started"})
        print("not json: a banner line some CLIs print", flush=True)
    if mode in ("improve", "outside", "hang", "silent", "git"):
        improve(program)
    if mode == "perturb":
        shifted = [t + 0.001 * int(iteration) for t in TARGET]
        program.write_text(VALUES.sub(f"values = {json.dumps(shifted)}", program.read_text()))
    if mode == "outside":
        program.write_text(program.read_text().replace('"""Seed', '"""Hacked seed'))
        (Path(workdir) / "notes.txt").write_text("scratch")
        (Path(workdir) / "sub").mkdir()
        (Path(workdir) / "sub" / "helper.py").write_text("x = 1\n")
        (Path(workdir) / "metrics.json").write_text('{"error": 0.0}')
    if mode == "break":
        program.write_text(VALUES.sub("values = [1 / 0]", program.read_text()))
        message("Done: error is now 0.0 and every check passes.")
    if mode == "check":
        command = re.search(r"^ {4}(.+ eval .+)$", prompt, re.MULTILINE).group(1)
        out = subprocess.run(command, shell=True, cwd=workdir, capture_output=True, text=True)
        message(f"evaluate exit {out.returncode}: {' '.join(out.stdout.split())[:300]}")
    if mode == "env":
        message(f"HOME={os.environ.get('HOME')} names={','.join(sorted(os.environ))}")
    if mode == "git":
        git = ["git", "-c", "user.name=agent", "-c", "user.email=agent@example.com"]
        subprocess.run([*git, "commit", "-qam", "agent commit"], cwd=workdir, check=True)
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=workdir, capture_output=True, text=True).stdout.strip()
        subprocess.run(["git", "update-ref", "refs/evolve/state", sha], cwd=workdir, check=True)
        message(f"committed {sha}")
    if mode == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        Path(pidfile).write_text(f"{child.pid} {os.getpid()}")
        emit({"type": "item.completed", "item": {"id": "c1", "type": "command_execution", "command": "sleep",
                                                 "aggregated_output": "", "exit_code": None, "status": "in_progress"}})
        time.sleep(3600)
    if mode == "spend":
        while True:
            emit({"type": "turn.completed", "usage": USAGE})
            time.sleep(0.05)
    if mode in ("improve", "outside", "perturb"):
        message("Moved every value halfway to the target; the error is now 0.0.")
    if mode != "silent":
        emit({"type": "turn.completed", "usage": USAGE})


if __name__ == "__main__":
    main(*sys.argv[1:])
