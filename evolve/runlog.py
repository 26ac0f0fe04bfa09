"""The run log: ``runs/<name>/run.log``, one JSON object per line, appended across resumes.

Retries, fault kinds and rejection reasons used to leave no trace a user could read; the archive
keeps what was evaluated, the run log keeps what happened on the way. Each line is
``{"t": <unix time>, "event": <name>, ...fields}``. The LLM client writes ``llm.request``,
``llm.retry`` (``cause``: the fault kind, ``wait_s``), ``llm.failed`` (``error``), ``llm.cancelled``,
``llm.model_mismatch`` and ``llm.endpoint_lost``; the run writes ``run.start``, ``run.resume``,
``rejection`` (``kind``, ``reason``), ``evaluation`` and ``run.stop``; on a Ray cluster the
evaluator writes ``ray.start`` (each node's slots), ``ray.node_lost`` and ``evaluation.retry``.

Writers are threads of one process (the run's mutation pool, abandoned LLM attempts), so every line
is written whole under a lock and flushed; a line torn by a SIGKILL is closed off on the next open
and skipped by the reader, never glued to the next line. :func:`llm_summary` turns a log into the
end-of-run line, over every session of the run.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

FILE_NAME = "run.log"
#: Fault kinds in the order the summary lists them (others follow alphabetically).
RETRY_ORDER = ("429", "5xx", "timeout", "connection", "bad body", "408/409")


class RunLog:
    """An append-only, thread-safe JSON-lines writer; ``write`` is an LLM client's ``on_event``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None  # opened by the first write: a run that never starts writes nothing
        self._closed = False

    def write(self, event: str, **fields: Any) -> None:
        """Append one event; a no-op once closed (late events of abandoned requests are dropped)."""
        line = json.dumps({"t": round(time.time(), 3), "event": event, **fields}, ensure_ascii=False, default=str)
        with self._lock:
            if self._closed:
                return
            if self._file is None:
                self._file = self._open()
            self._file.write(line + "\n")
            self._file.flush()

    def _open(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a", encoding="utf-8")
        if f.tell() > 0 and not self.path.read_bytes().endswith(b"\n"):
            f.write("\n")  # a line torn by a kill stays alone (and is skipped by the reader)
        return f

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """The events of a run log in order; unreadable lines (torn by a kill) are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            yield event


@dataclass
class LLMTally:
    """What a run log says about the LLM: requests, retries by fault kind, rejections by reason."""

    requests: int = 0
    cached: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_events(cls, events: Iterable[dict[str, Any]]) -> "LLMTally":
        tally = cls()
        for event in events:
            name = event["event"]
            if name == "llm.request":
                tally.requests += 1
                tally.cached += bool(event.get("cached"))
            elif name == "llm.failed" and event.get("error") != "cancelled":
                tally.requests += 1
                tally.failures[str(event.get("error", "?"))] += 1
            elif name == "llm.retry":
                tally.retries[str(event.get("cause", "?"))] += 1
            elif name == "rejection":
                tally.rejections[str(event.get("kind", "other"))] += 1
        return tally

    def summary(self) -> str:
        """E.g. ``LLM: 53 requests, 20 retries (429×5, 5xx×6); 4 rejected (2 unparseable, 2 retries exhausted)``."""
        requests = f"{self.requests} request{'s' * (self.requests != 1)}"
        if self.cached:
            requests += f" ({self.cached} from cache)"
        kinds = sorted(self.retries, key=lambda k: (RETRY_ORDER.index(k) if k in RETRY_ORDER else len(RETRY_ORDER), k))
        retries = f"{sum(self.retries.values())} retries"
        if kinds:
            retries += " (" + ", ".join(f"{k}×{self.retries[k]}" for k in kinds) + ")"
        rejected = f"{sum(self.rejections.values())} rejected"
        if self.rejections:
            rejected += " (" + ", ".join(f"{n} {k}" for k, n in self.rejections.most_common()) + ")"
        return f"LLM: {requests}, {retries}; {rejected}"


def llm_summary(path: str | Path) -> str:
    """The end-of-run line for the run log at ``path``, over all its sessions."""
    return LLMTally.from_events(read_events(path)).summary()
