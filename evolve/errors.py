"""The one base class of every error a user can cause and fix: :class:`UserError`.

The CLI catches this class only (plus Ctrl-C): its ``str()`` is printed as one line and the exit
code is 2. Anything else is a bug and reaches the user as a traceback with exit code 1, so a broken
mutator constructor is never dressed up as "config error". Each concept keeps its own subclass
(``ConfigError``, ``TaskError``, ``ArchiveError``...), which also keeps its old builtin base
(``ValueError``...) so existing ``except`` clauses still hold. A leaf module: imports nothing.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or an unmet precondition; ``str()`` is the first line of the message."""

    def __str__(self) -> str:
        text = super().__str__()
        return text.splitlines()[0] if text else type(self).__name__
