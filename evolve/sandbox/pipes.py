"""The parent's side of one job's pipes: feed stdin, drain everything else, never block the job.

stdout and stderr are read continuously and only their heads are kept, so an output flood can
neither fill a pipe (which would stall the job) nor the parent's memory.
"""

from __future__ import annotations

import os
import selectors
import time
from collections.abc import Callable

from .supervise import FD_ROLES

_CAPS = {"result": 64 << 20, "report": 1 << 20}  # stdout/stderr: the job's output_bytes
_CHUNK = 1 << 16
_AFTER_BACKSTOP_S = 5.0


class Stream:
    """The head of one stream, up to ``cap`` bytes."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.truncated = False

    def feed(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if len(chunk) > room:
            self.truncated = True
            chunk = chunk[: max(room, 0)]
        self.data += chunk

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


class JobPipes:
    """stdin (a pipe, or /dev/null) plus one pipe per output role; ``child_ends`` (in
    :data:`FD_ROLES` order) are handed to the supervisor, the parent keeps the other ends."""

    def __init__(self, stdin: str | None) -> None:
        self._pending = memoryview(stdin.encode() if stdin is not None else b"")
        self._stdin: int | None
        if stdin is None:
            stdin_child, self._stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), None
        else:
            stdin_child, self._stdin = os.pipe()
        self.child_ends = [stdin_child]
        self._readers: dict[str, int] = {}
        for role in FD_ROLES[1:]:
            self._readers[role], write_end = os.pipe()
            self.child_ends.append(write_end)

    def close_child_ends(self) -> None:
        for fd in self.child_ends:
            os.close(fd)
        self.child_ends = []

    def close(self) -> None:
        self.close_child_ends()
        for fd in [*self._readers.values(), self._stdin]:
            if fd is not None:
                os.close(fd)
        self._readers, self._stdin = {}, None

    def drain(self, output_cap: int, deadline: float, backstop: Callable[[], None]) -> tuple[dict[str, Stream], bool]:
        """Read every stream to EOF, feeding stdin meanwhile; returns the streams and whether the
        backstop fired. At ``deadline`` the backstop runs; a few seconds later, whatever is still
        open is abandoned."""
        streams = {role: Stream(_CAPS.get(role, output_cap)) for role in self._readers}
        fired = False
        with selectors.DefaultSelector() as selector:
            for role, fd in self._readers.items():
                selector.register(fd, selectors.EVENT_READ, role)
            if self._stdin is not None:
                os.set_blocking(self._stdin, False)
                selector.register(self._stdin, selectors.EVENT_WRITE, None)
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if fired:
                        break
                    backstop()
                    fired, deadline = True, time.monotonic() + _AFTER_BACKSTOP_S
                    continue
                for key, _ in selector.select(remaining):
                    if key.data is None:
                        self._feed_stdin(selector)
                    elif chunk := os.read(key.fd, _CHUNK):
                        streams[key.data].feed(chunk)
                    else:
                        selector.unregister(key.fd)
        self.close()
        return streams, fired

    def _feed_stdin(self, selector: selectors.BaseSelector) -> None:
        assert self._stdin is not None
        try:
            self._pending = self._pending[os.write(self._stdin, self._pending[:_CHUNK]) :]
        except BlockingIOError:
            return
        except OSError:  # the job closed its stdin: the rest is not wanted
            self._pending = self._pending[:0]
        if not self._pending:
            selector.unregister(self._stdin)
            os.close(self._stdin)
            self._stdin = None
