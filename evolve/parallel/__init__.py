"""Where candidates are evaluated: this machine's sandbox (:mod:`.local`) or a cluster.

The run hands an :class:`Evaluator` sources and gets futures back; it never knows where they ran.
"""

from evolve.parallel.base import Evaluator, gather

__all__ = ["Evaluator", "gather"]
