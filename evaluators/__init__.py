"""Task plugins: one module per task, each exposing ``TASK`` (a :class:`evolve.tasks.Task` subclass)."""
