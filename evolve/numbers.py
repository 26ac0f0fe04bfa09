"""Numbers for people: one format per kind of metric, the same in the terminal, the report and
the comparison tables (a leaf: ``report/`` and ``compare/`` both read it, neither imports the other).

Accuracies (a metric named ``*accuracy*`` with a value in [0, 1]) read as percentages, counts as
integers, everything else with three or four significant digits and never in Python's ``repr``
exponent style (``9.99001e-05`` becomes ``9.99e-5``).
"""

from __future__ import annotations

import math
from typing import Any


def format_metric(value: Any, name: str = "", unit: str = "") -> str:
    """``value`` of metric ``name`` (in ``unit``) as a short table cell; ``-`` when missing."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else "nan"
    if "accuracy" in name.lower() and 0.0 <= value <= 1.0 and not unit:
        return percent(value)
    return number(value)


def percent(fraction: float) -> str:
    """``0.99361`` -> ``99.36%``; only an exact 1 reads ``100%`` (no rounding up to perfect)."""
    if fraction == 1.0:
        return "100%"
    shown = f"{100 * fraction:.2f}"
    return ("99.99" if shown == "100.00" else shown) + "%"


def number(value: float) -> str:
    """Integers in full, large values without decimals, small ones to 3-4 significant digits."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    size = abs(value)
    if size >= 1e15 or size < 1e-3:
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    if size >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}" if size >= 1 else f"{value:.3g}"


def duration(seconds: float) -> str:
    """``42.0`` -> ``42.0 s``, ``125`` -> ``2m 05s``, ``7300`` -> ``2h 01m``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    return f"{minutes // 60}h {minutes % 60:02d}m"
