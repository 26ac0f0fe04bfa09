"""``evolve show``: the front, all candidates, or one candidate, as rich tables or JSON.

Reads the archive only. Every view has a ``*_data`` function building a JSON-able dict (for
``--json`` and for other reports) and a ``print_*`` function rendering it for people.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any, Literal

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from evolve.archive import Archive, ArchiveError, Candidate, RunMeta, Summary
from evolve.report.console import make_console
from evolve.numbers import duration, format_metric

Diff = Literal["parent", "seed"]


def main(run_dir: Path, args: argparse.Namespace, console: Console | None = None) -> int:
    """Dispatch ``evolve show RUN [ID] [--diff|--diff-seed] [--all] [--sort M] [--limit N] [--json]``."""
    if args.diff and args.diff_seed:
        raise ArchiveError("--diff and --diff-seed cannot be combined")
    if (args.diff or args.diff_seed) and args.id is None:
        raise ArchiveError("--diff and --diff-seed need a candidate id")
    console = console or make_console()
    with Archive.open(run_dir / "archive") as archive:
        if args.id is not None:
            diff: Diff | None = "parent" if args.diff else "seed" if args.diff_seed else None
            print_candidate(archive, console, args.id, diff=diff, as_json=args.json)
        elif args.all:
            print_candidates(archive, console, sort=args.sort, limit=args.limit, as_json=args.json)
        else:
            print_front(archive, console, sort=args.sort, limit=args.limit, as_json=args.json)
    return 0


# --- data (JSON-able) -------------------------------------------------------------------------
def front_data(archive: Archive, *, sort: str | None = None, limit: int | None = None) -> dict[str, Any]:
    front = archive.front(sort or _default_sort(archive.meta), limit=limit)
    return _json_object({"summary": archive.summary().to_dict(), "meta": archive.meta.to_dict(),
                      "front": [_row(c) for c in front]})


def candidates_data(archive: Archive, *, sort: str | None = None,
                    limit: int | None = None) -> dict[str, Any]:
    rows = archive.candidates(sort, limit=limit)
    return _json_object({"sort": sort or "id", "candidates": [_row(c) for c in rows]})


def candidate_data(archive: Archive, key: int | str, *, diff: Diff | None = None) -> dict[str, Any]:
    lineage = archive.lineage(key)
    data: dict[str, Any] = {"candidate": lineage[0].to_dict(),
                            "lineage": [_row(c) for c in lineage],
                            "on_front": lineage[0].id in {c.id for c in archive.front()}}
    if diff is not None:
        data["diff"] = _diff(archive, lineage[0], diff)
    return _json_object(data)


def _row(c: Candidate) -> dict[str, Any]:
    """The compact view of a candidate used by tables and JSON lists."""
    return {"id": c.id, "sha": c.sha, "status": c.status, "feasible": c.feasible,
            "violation": c.violation, "metrics": c.metrics, "mutator": c.mutator,
            "model": c.usage.model, "parents": list(c.parents), "generation": c.generation,
            "island": c.island, "description": c.description, "error": c.result.error}


def _diff(archive: Archive, c: Candidate, diff: Diff) -> str:
    return archive.diff(c.id) if diff == "parent" else archive.diff_seed(c.id)


# --- rendering ----------------------------------------------------------------------------------
def print_front(archive: Archive, console: Console, *, sort: str | None = None,
                limit: int | None = None, as_json: bool = False) -> None:
    """The run summary and the Pareto front (best first on the first objective by default)."""
    if as_json:
        _print_json(console, front_data(archive, sort=sort, limit=limit))
        return
    front = archive.front(sort or _default_sort(archive.meta), limit=limit)
    console.print(summary_panel(archive.summary(), archive.meta))
    if not front and sort is None and limit is None:
        _print_closest(archive, console)
        return
    title = f"Pareto front: {len(front)} of {len(archive.front())} candidates"
    console.print(candidates_table(front, archive.meta, title=title, status=False))


def _print_closest(archive: Archive, console: Console) -> None:
    """No feasible candidate: the least-violating one and its constraint values, not an empty front."""
    from evolve.report.closest import closest, constraint_values

    cand = closest(archive.candidates())
    if cand is None:
        console.print("No feasible candidate, and none that ran to the end (see evolve show RUN --all).",
                      highlight=False)
        return
    console.print(f"No feasible candidate yet. Closest: #{cand.id} "
                  f"(total violation {format_metric(cand.violation)}): "
                  f"{constraint_values(cand, archive.meta.constraints)}", highlight=False, markup=False)
    console.print(candidates_table([cand], archive.meta, title="closest candidate", status=True))


def print_candidates(archive: Archive, console: Console, *, sort: str | None = None,
                     limit: int | None = None, as_json: bool = False) -> None:
    """Every candidate (feasible or not), by id or sorted by a metric, best first."""
    if as_json:
        _print_json(console, candidates_data(archive, sort=sort, limit=limit))
        return
    rows = archive.candidates(sort, limit=limit)
    title = f"{len(rows)} of {len(archive)} candidates" + (f", by {sort}" if sort else "")
    console.print(candidates_table(rows, archive.meta, title=title, status=True))


def print_candidate(archive: Archive, console: Console, key: int | str, *,
                    diff: Diff | None = None, as_json: bool = False) -> None:
    """One candidate: header, metrics, lineage to its seed, then its source or a diff."""
    if as_json:
        _print_json(console, candidate_data(archive, key, diff=diff))
        return
    from rich.syntax import Syntax  # here: pygments is not needed for the front a run ends with

    lineage = archive.lineage(key)
    c, meta = lineage[0], archive.meta
    console.print(Panel(Group(_header(c), _metrics_table(c, meta)),
                        title=f"candidate #{c.id}  {c.sha[:12]}", title_align="left"))
    console.print(candidates_table(lineage, meta, title="lineage (first parents, down to the seed)",
                                   status=True))
    if diff is None:
        console.print(Syntax(c.source.rstrip("\n"), Syntax.guess_lexer(meta.program_file, c.source),
                             line_numbers=True, word_wrap=False))
        return
    text = _diff(archive, c, diff)
    console.print(Syntax(text, "diff") if text else Text("(no changes)", style="dim"))


def summary_panel(summary: Summary, meta: RunMeta) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    statuses = ", ".join(f"{n} {s}" for s, n in summary.statuses.items())
    grid.add_row("evaluations", f"{summary.evaluations} ({statuses or 'none'})")
    grid.add_row("feasible", f"{summary.feasible} ({summary.feasible_pct:.1f}%)")
    grid.add_row("front", f"{summary.front_size} candidates")
    for o in meta.objectives:
        best = summary.best.get(o.name)
        shown = f"{format_metric(best['value'], o.name, o.unit)} {o.unit}".rstrip() + f"  (#{best['id']})" if best else "-"
        grid.add_row(f"best {o.name} ({o.goal})", shown)
    tokens, cost = spend_text(summary)
    grid.add_row("tokens", tokens)
    grid.add_row("cost", cost)
    if summary.rejected:
        grid.add_row("rejected", f"{summary.rejected} mutations (before evaluation)")
    grid.add_row("time", f"{duration(summary.elapsed_s)} elapsed, "
                         f"{duration(summary.eval_wall_s)} evaluating")
    return Panel(grid, title=f"run {summary.run}  task {summary.task}", title_align="left")


def spend_text(summary: Summary) -> tuple[str, str]:
    """The tokens and cost lines: the run's totals, and how much of them no candidate carries."""
    tokens = f"{summary.spent.prompt_tokens} prompt + {summary.spent.completion_tokens} completion"
    cost = f"${summary.spent.cost_usd:.4f}"
    if summary.other_tokens:
        tokens += f" ({summary.other_tokens} on rejected mutations and agent turns)"
    if summary.other_cost_usd > 5e-5:
        cost += f" (${summary.other_cost_usd:.4f} on rejected mutations and agent turns)"
    return tokens, cost


def candidates_table(rows: list[Candidate], meta: RunMeta, *, title: str, status: bool) -> Table:
    """Objectives, constraint metrics, then provenance; ``status`` adds status/feasibility columns
    (pointless on the front, where everything is feasible). Numbers are never cut: their columns
    keep their width and their headers break at underscores; only the text columns shrink."""
    objective_cells = [[format_metric(c.metrics.get(o.name), o.name, o.unit) for c in rows] for o in meta.objectives]
    constraint_cells = [[format_metric(c.metrics.get(con.metric), con.metric) for c in rows]
                        for con in meta.constraints]
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  show_edge=False, padding=(0, 1, 0, 0))
    table.add_column("#", justify="right", style="bold", no_wrap=True)
    for o, cells in zip(meta.objectives, objective_cells):
        arrow = "↓" if o.goal == "min" else "↑"
        _number_column(table, f"{_breakable(o.name)} {arrow}" + (f"\n{o.unit}" if o.unit else ""), cells)
    for con, cells in zip(meta.constraints, constraint_cells):
        _number_column(table, f"{_breakable(con.metric)}\n{con.op} {format_metric(con.value)}", cells)
    if status:
        table.add_column("violation", justify="right", no_wrap=True)
    table.add_column("mutator", overflow="ellipsis", min_width=4)
    table.add_column("from", overflow="fold", min_width=4)
    for i, c in enumerate(rows):
        row: list[Any] = [str(c.id)]
        row += [column[i] for column in objective_cells]
        row += [Text(column[i], style="green" if con.satisfied(c.metrics) else "red")
                for con, column in zip(meta.constraints, constraint_cells)]
        if status:
            row.append(_short_status(c))
        row += [c.mutator, " ".join(f"#{p}" for p in c.parents) or "seed"]
        table.add_row(*row)
    return table


def _number_column(table: Table, header: str, cells: list[str]) -> None:
    widest = max([len(cell) for cell in cells] + [len(line) for line in header.splitlines()])
    table.add_column(header, justify="right", no_wrap=True, min_width=widest)


def _breakable(name: str) -> str:
    """``hidden_accuracy`` -> ``hidden_`` / ``accuracy`` on two header lines."""
    return name.replace("_", "_\n")


def _header(c: Candidate) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("status", _status_text(c))
    if c.result.error:
        grid.add_row("error", Text(c.result.error, style="red"))
    # Text, not markup: the model id is the endpoint's, the intent an LLM's or an agent's
    grid.add_row("mutator", Text(c.mutator + (f"  ({c.usage.model})" if c.usage.model else "")))
    grid.add_row("parents", " ".join(f"#{p}" for p in c.parents) or "none (seed)")
    where = f"generation {c.generation}" + (f", island {c.island}" if c.island is not None else "")
    grid.add_row("origin", where)
    grid.add_row("intent", Text(c.description or "-"))
    u = c.usage
    grid.add_row("llm", f"{u.prompt_tokens} + {u.completion_tokens} tokens, ${u.cost_usd:.4f}")
    grid.add_row("evaluated", f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(c.created_at))}"
                              f" in {duration(c.result.wall_s)}")
    return grid


def _metrics_table(c: Candidate, meta: RunMeta) -> Table:
    roles: dict[str, Text] = {o.name: Text(f"objective, {o.goal}") for o in meta.objectives}
    for con in meta.constraints:
        ok = con.satisfied(c.metrics)
        roles[con.metric] = Text(f"{con} {'ok' if ok else 'violated'}", style="green" if ok else "red")
    table = Table(title="metrics", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("role")
    declared = [o.name for o in meta.objectives] + [con.metric for con in meta.constraints]
    units = {o.name: o.unit for o in meta.objectives}
    for name in dict.fromkeys([*declared, *c.metrics]):
        table.add_row(name, format_metric(c.metrics.get(name), name, units.get(name, "")), roles.get(name, Text("")))
    return table


def _status_text(c: Candidate) -> Text:
    if c.feasible:
        return Text(f"{c.status}, feasible", style="green")
    if c.status == "ok":
        return Text(f"infeasible (violation {format_metric(c.violation)})", style="yellow")
    return Text(c.status, style="red")


def _short_status(c: Candidate) -> Text:
    """The violation column: 0 (feasible), how far off the constraints, or why it has no metrics."""
    if c.feasible:
        return Text("0", style="green")
    if c.status == "ok":
        return Text(format_metric(c.violation), style="yellow")
    return Text(c.status, style="red")


def _default_sort(meta: RunMeta) -> str:
    return meta.objectives[0].name


def _print_json(console: Console, data: dict[str, Any]) -> None:
    console.out(json.dumps(data, indent=2), highlight=False)


def _json_object(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = _jsonable(data)
    return out


def _jsonable(value: Any) -> Any:
    """Strict JSON for scripts: non-finite floats (e.g. the violation of a crash) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
