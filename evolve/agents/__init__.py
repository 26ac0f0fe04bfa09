"""Agent machinery for the ``agent`` and ``agent-cli`` strategies (see :mod:`evolve.strategies.agent`).

``session`` is the narrow interface the run loop gives an agent iteration; ``tools`` and ``loop`` are
the tool-calling agent; ``worktree``, ``process``, ``events`` and ``cli_agent`` run an external coding
agent (the Codex CLI) in a git worktree of the current best; ``notes`` is the memory carried across
iterations; ``brief`` words what an agent reads.
"""
