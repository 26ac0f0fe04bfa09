"""Benchmark: the fault table. Each fault kind the fake server can inject, what the run did, and
where it is counted.

For each fault, a short run of the toy task (hill climbing, ``llm-diff``, 4 evaluations, one
request at a time) talks to the fake server, which answers sensibly except for the fault on the
second request (or, for the "every ... from the 2nd" rows, on every request from the second on).
Prints a Markdown table: the fault, the run's exit code (as the CLI would return it) and stop
reason, the rejected count, and the run log's end-of-run line (retries by fault kind, rejections
by reason).

    python bench/fault_table.py
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluators.toy import TARGET  # noqa: E402
from evolve.config import parse_config  # noqa: E402
from evolve.run import EvolutionRun  # noqa: E402
from evolve.runlog import llm_summary, read_events  # noqa: E402
from evolve.testing import (  # noqa: E402
    Die,
    FakeLLMServer,
    Garbage,
    HTTPFault,
    Reply,
    Slow,
    Truncated,
    forbidden,
    model_not_found,
    rate_limited,
    server_error,
    unauthorized,
)

VALUES = re.compile(r"^values = \[([^\]\n]*)\]$", re.MULTILINE)


def good(body: dict[str, Any]) -> str:
    parent = VALUES.search(body["messages"][-1]["content"])
    assert parent is not None
    new = [round(float(o) + (t - float(o)) / 2, 4) for o, t in zip(parent.group(1).split(","), TARGET)]
    return f"Halfway.\n<<<<<<< SEARCH\n{parent.group(0)}\n=======\nvalues = {json.dumps(new)}\n>>>>>>> REPLACE\n"


#: (row label, fault, from the 2nd request on every time?)
FAULTS: list[tuple[str, Any, bool]] = [
    ("429 rate limit (Retry-After 0)", rate_limited(0.0), False),
    ("500 server error", server_error(500), False),
    ("timeout (answer after 3 s, timeout_s 1)", Slow(3.0), False),
    ("garbage body (HTML, 200)", Garbage(), False),
    ("truncated body", Truncated(), False),
    ("unparseable reply", "I would not change anything.", False),
    ("400 context length exceeded", HTTPFault(400, message="context length exceeded"), False),
    ("503 on every attempt of one request", "exhaust", False),
    ("503 on every request from the 2nd", server_error(503), True),
    ("401 key revoked", unauthorized(), False),
    ("403 forbidden", forbidden(), False),
    ("404 model not found", model_not_found("fake-model"), False),
    ("400 model_not_found", model_not_found("fake-model", status=400), False),
    ("429 insufficient_quota", HTTPFault(429, message="You exceeded your current quota", code="insufficient_quota"), False),
    ("reply from another model", Reply(model="fake-model-2026-12-01"), False),
    ("server dies mid-run", Die(), False),
]


def script_for(fault: Any, every: bool) -> Callable[[dict[str, Any]], Any]:
    lock, seen, exhausted = threading.Lock(), [0], {"key": None}

    def script(body: dict[str, Any]) -> Any:
        with lock:
            seen[0] += 1
            n = seen[0]
        if fault == "exhaust":  # every attempt of the 2nd request (same seed) fails
            if n == 2:
                exhausted["key"] = body.get("seed")
            return server_error(503) if body.get("seed") == exhausted["key"] else good(body)
        if n == 2 or (every and n >= 2):
            if isinstance(fault, Reply):
                return Reply(content=good(body), model=fault.model)
            return fault
        return good(body)

    return script


def one(out: Path, label: str, fault: Any, every: bool) -> dict[str, Any]:
    with FakeLLMServer(script_for(fault, every)) as server:
        data = {
            "run": {"name": re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-"), "output_dir": str(out), "seed": 1},
            "task": {"name": "toy"},
            "seeds": [str(ROOT / "seeds/toy/start.py")],
            "strategy": {"name": "hillclimb"},
            "mutators": [{"name": "llm-diff"}],
            "llm": {"base_url": server.base_url, "api_key_env": None, "timeout_s": 1.0, "retries": 2,
                    "models": [{"name": "fake-model"}]},
            "budget": {"max_evaluations": 4},
            "parallel": {"evaluations": 1, "llm_requests": 1},
        }
        run = EvolutionRun(parse_config(data))
        outcome = run.execute()
    code = 3 if outcome.failure else (130 if outcome.interrupted else 0)
    models = {e.get("model") for e in read_events(run.log.path) if e["event"] == "evaluation"} - {None}
    mismatches = sum(e["event"] == "llm.model_mismatch" for e in read_events(run.log.path))
    return {"label": label, "exit": code, "stop": outcome.stop_reason, "rejected": outcome.counters.rejected,
            "summary": llm_summary(run.log.path), "models": sorted(models), "mismatches": mismatches}


def main() -> None:
    print("| fault | exit | what the run did | rejected | run log: end-of-run line | archived model |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, fault, every in FAULTS:
            r = one(Path(tmp), label, fault, every)
            stop = r["stop"] if len(r["stop"]) < 140 else r["stop"][:137] + "..."
            model = ", ".join(r["models"]) + (f" (mismatch logged {r['mismatches']}×)" if r["mismatches"] else "")
            print(f"| {label} | {r['exit']} | {stop} | {r['rejected']} | {r['summary']} | {model} |", flush=True)


if __name__ == "__main__":
    main()
