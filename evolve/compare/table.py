"""The comparison table: one row per group, each cell "median [min-max]" over the repeats.

The cells are built once as strings (:func:`table_cells`) and rendered by rich here and as HTML by
the report, so the terminal and the report never disagree about a number.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from evolve.compare.stats import ALPHA, BUDGET_LABELS, ComparisonStats, Spread
from evolve.numbers import format_metric

SIGNIFICANT = 4

MISSING_NOTE = ("(k/n): only k of the n runs have a value (no feasible candidate, or the target "
                "was never met); the median and range are over those k")


def num(value: float | None) -> str:
    """A table number: integers whole, everything else to 4 significant digits."""
    if value is None:
        return "-"
    if float(value).is_integer() or abs(value) >= 10 ** SIGNIFICANT:
        return format_metric(round(value)) if abs(value) < 1e15 else f"{value:.{SIGNIFICANT}g}"
    return f"{value:.{SIGNIFICANT}g}"


def spread_text(spread: Spread) -> str:
    """``median [min-max]``; a single value alone; ``(k/n)`` when runs lack a value."""
    if not spread.values:
        return "-"
    if spread.low == spread.high:
        text = num(spread.median)
    else:
        text = f"{num(spread.median)} [{num(spread.low)}–{num(spread.high)}]"
    if len(spread.values) < spread.n:
        text += f" ({len(spread.values)}/{spread.n})"
    return text


def table_cells(stats: ComparisonStats) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the comparison table."""
    headers = ["group", "n", *(_header(stats, m.key, m.label) for m in stats.measures)]
    rows = [[g.label, str(len(g.runs)), *(spread_text(g.spread(m)) for m in stats.measures)]
            for g in stats.groups]
    return headers, rows


def _header(stats: ComparisonStats, key: str, label: str) -> str:
    for o in stats.objectives:
        if key == f"best:{o.name}":
            unit = f" ({o.unit})" if o.unit and o.unit != o.name else ""
            return f"{label} {'↓' if o.goal == 'min' else '↑'}{unit}"
    return f"{label} ↑" if key == "hypervolume" else label


def describe(stats: ComparisonStats) -> list[str]:
    """The lines a reader needs to interpret the table: budget, reference point, target, test."""
    c = stats.comparison
    budget = f"{format_metric(c.budget)} {BUDGET_LABELS[c.budget_kind]}" if c.budget is not None \
        else f"not equal across runs (plotted against {BUDGET_LABELS[c.budget_kind]})"
    lines = [f"task {stats.task}; budget per run: {budget}; "
             f"{len(stats.runs)} runs in {len(stats.groups)} groups"]
    reference = stats.reference_natural()
    if reference is None:
        lines.append("hypervolume: undefined (no run has a feasible candidate)")
    else:
        point = ", ".join(f"{k}={format_metric(v)}" for k, v in reference.items())
        how = ("derived from these runs: worst feasible value + 10% of the range; "
               "comparable only within this comparison") if stats.reference_derived else "from the config"
        lines.append(f"hypervolume reference point: {point} ({how})")
    if stats.target:
        lines.append("target: " + ", ".join(map(str, stats.target)) + " (feasible candidates only)")
    lines.append("cells: median [min–max] over repeats; " + MISSING_NOTE)
    lines.append(f"differences: two-sided permutation test of the Mann-Whitney U statistic, "
                 f"called real only at p < {ALPHA:g}")
    small = sorted({(len(v.a.runs), len(v.b.runs), v.smallest_p) for v in stats.verdicts
                    if v.smallest_p >= ALPHA})
    for n_a, n_b, smallest in small:
        lines.append(f"with n={n_a} vs {n_b} the smallest possible p is {smallest:.2g}: no difference "
                     f"can be shown at p < {ALPHA:g}, whatever the numbers; add repeats (4 vs 4 can)")
    return lines


def print_table(stats: ComparisonStats, console: Console) -> None:
    headers, rows = table_cells(stats)
    table = Table(title=f"comparison {stats.comparison.name}", title_justify="left")
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # cells hold brackets, not markup
    console.print(table)
    for line in describe(stats):
        console.print(Text(line))
    if stats.verdicts:
        console.print("[bold]differences[/]")
        for v in stats.verdicts:
            console.print(Text(f"  {v.text()}"))
