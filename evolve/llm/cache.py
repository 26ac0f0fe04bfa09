"""On-disk LLM response cache: one JSON file per request, so a run can be replayed without the endpoint.

The key is a SHA-256 of the canonical JSON of everything that determines the answer (model, messages,
sampling parameters including the per-request seed, tools). Files are written to a temporary name
and renamed into place, so concurrent writers (threads or processes) never leave a torn entry and a
reader sees either nothing or a complete answer.

A request that failed for its own reasons (HTTP 400, retries exhausted) is stored too, as a
``failure`` entry: a replay then fails the same request the same way, so a run with faults replays
exactly. Live runs ask again instead (a transient fault may be gone); a later answer replaces it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def request_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """The cache key of one chat request."""
    canonical = json.dumps(
        {"model": model, "messages": messages, "params": params},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """A directory of ``<key[:2]>/<key>.json`` entries, each ``{"request": ..., "response": ...}``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)  # created by the first put: a run that never starts writes nothing

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def _entry(self, key: str) -> dict[str, Any]:
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return entry if isinstance(entry, dict) else {}

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response for ``key``, or None (a missing, unreadable or failure entry is a miss)."""
        response = self._entry(key).get("response")
        return response if isinstance(response, dict) else None

    def get_failure(self, key: str) -> dict[str, Any] | None:
        """The stored failure for ``key`` (``{"error": ..., "message": ..., ...}``), or None."""
        failure = self._entry(key).get("failure")
        return failure if isinstance(failure, dict) else None

    def put(self, key: str, request: dict[str, Any], response: dict[str, Any]) -> None:
        self._write(key, {"request": request, "response": response})

    def put_failure(self, key: str, request: dict[str, Any], failure: dict[str, Any]) -> None:
        self._write(key, {"request": request, "failure": failure})

    def _write(self, key: str, entry: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(entry, indent=1, ensure_ascii=False, default=str)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:8]}-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("??/*.json"))
