"""Compare search strategies (or mutators, models) at an equal budget over repeated seeds.

``config`` reads COMPARE.yaml into run configs, ``matrix`` runs the cells resumably, ``comparison``
says which runs form which groups, ``stats`` computes the numbers, ``table`` prints them and
``progress`` shows the matrix running. Plots and HTML live in :mod:`evolve.report`, which may import
this package, never the reverse (number formats come from the leaf :mod:`evolve.numbers`).
"""

from evolve.compare.comparison import CompareError, Comparison, Group, is_comparison
from evolve.compare.config import Cell, CompareSpec, load_compare, parse_compare

__all__ = ["Cell", "CompareError", "CompareSpec", "Comparison", "Group", "is_comparison", "load_compare",
           "parse_compare"]
