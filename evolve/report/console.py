"""The rich console evolve prints with.

Piped or redirected output (CI logs, ``evolve show RUN > front.txt``) has no terminal width, and
rich's 80-column fallback squeezes the front table's metric columns into ellipses. Such output gets
a wide fixed width instead; a real terminal keeps its own.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

PIPE_WIDTH = 160


def make_console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or "COLUMNS" in os.environ else PIPE_WIDTH
    return Console(stderr=stderr, width=width)
