"""One self-contained static HTML file for a run or a comparison (no server, no CDN, offline).

CSS and JavaScript are inlined from ``evolve/report/static``, plots are PNG data URIs, and code is
highlighted at build time with pygments, so the file needs nothing but a browser. Everything is
readable with JavaScript off; the script only makes tables sortable. Every program has an anchor
(``#cand-12`` in a run report, ``#run-NAME-cand-12`` in a comparison report).
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import DiffLexer, TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

from evolve.archive import Archive, Candidate, RunMeta, Summary
from evolve.compare.comparison import Comparison
from evolve.compare.stats import BUDGET_LABELS, ComparisonStats, RunStats, compute
from evolve.compare.table import describe, num, table_cells
from evolve.numbers import duration, format_metric
from evolve.report.lineage import LineageUnavailable, lineage_svg
from evolve.report.plots import comparison_figures, run_figures
from evolve.report.show import spend_text

MAX_PROGRAMS = 500
_FORMATTER = HtmlFormatter(cssclass="hl", linenos="inline", wrapcode=True)
_DIFF_FORMATTER = HtmlFormatter(cssclass="hl", wrapcode=True)
_FIGURE_CAPTIONS = {
    "progress": "Best feasible value of each objective so far (red) over every evaluated candidate, "
                "and the hypervolume of the front.",
    "candidates": "Every evaluated candidate in the space of the first two objectives; the front in red.",
    "best_so_far": "Best feasible value of each objective so far: median over repeats (line) and "
                   "min–max (band).",
    "hypervolume": "Hypervolume of each run's front against the budget: median and min–max over repeats.",
    "fronts": "The final Pareto front of every run, coloured by group.",
    "constraints": "Each constraint metric of every evaluated candidate with its threshold (green) and "
                   "best so far (red), and the least constraint violation so far: the progress a "
                   "run makes before (or without) moving its objectives.",
}


def write_report(path: Path, document: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    return path


# --- run report ---------------------------------------------------------------------------------
def run_report(run_dir: Path, *, max_programs: int = MAX_PROGRAMS) -> str:
    """The report of one run: summary, plots, front, all candidates, lineage, every program."""
    stats = compute(Comparison.single(run_dir))
    (run,) = stats.runs
    with Archive.open(run_dir / "archive") as archive:
        meta, summary = archive.meta, archive.summary()
        candidates = list(run.history.candidates)
        front_ids = {c.id for c in run.history.front}
        shown = _programs_shown(candidates, front_ids, max_programs)
        diffs = {c.id: archive.diff(c.id) for c in candidates if c.id in shown and c.parents}
        best = archive.best()
    children: dict[int, list[int]] = {}
    for c in candidates:
        if c.parents:
            children.setdefault(c.parents[0], []).append(c.id)
    link = _Linker(shown, "cand-")
    body = [
        _section("summary", "Summary", _run_summary(meta, summary, stats, run)),
        _section("plots", "Plots", _figures(run_figures(stats))),
        _section("front", f"Pareto front ({len(front_ids)})",
                 _candidate_table("front-table", list(run.history.front), meta, link, sortable=False)),
        _section("candidates", f"All candidates ({len(candidates)})",
                 '<p class="note">Click a column header to sort (JavaScript), or add '
                 "<code>?sort=KEY&amp;order=desc</code> to the address.</p>"
                 + _candidate_table("candidates-table", candidates, meta, link, sortable=True)),
        _section("lineage", "Lineage of the front",
                 _lineage_graph(candidates, front_ids, best.id if best else None, shown)
                 + _lineage(candidates, front_ids, link)),
        _section("programs", "Programs",
                 _programs_note(len(candidates), len(shown), max_programs)
                 + "".join(_program(c, meta, front_ids, children, diffs.get(c.id), link, "cand-")
                           for c in candidates if c.id in shown)),
    ]
    nav = [("summary", "Summary"), ("plots", "Plots"), ("front", "Front"), ("candidates", "Candidates"),
           ("lineage", "Lineage"), ("programs", "Programs")]
    subtitle = f"task {meta.task} · {summary.evaluations} evaluations · generated {_now()}"
    return _page(f"evolve run {meta.run}", subtitle, nav, body)


def _programs_shown(candidates: list[Candidate], front: set[int], limit: int) -> set[int]:
    """Ids whose programs the report includes: the front always, then the others by id."""
    rest = [c.id for c in candidates if c.id not in front]
    return front | set(rest[:max(0, limit - len(front))])


def _programs_note(total: int, shown: int, limit: int) -> str:
    if shown == total:
        return ""
    return (f'<p class="note">{shown} of {total} programs are included (the front first, then by id; '
            f"limit {limit}: raise it with <code>evolve report --max-programs</code>).</p>")


def _run_summary(meta: RunMeta, summary: Summary, stats: ComparisonStats, run: RunStats) -> str:
    config = meta.config
    statuses = ", ".join(f"{n} {s}" for s, n in summary.statuses.items()) or "none"
    rows = [("task", _task(meta)),
            ("objectives", _e(", ".join(f"{o.goal} {o.name}" + (f" ({o.unit})" if o.unit else "")
                                        for o in meta.objectives))),
            ("constraints", _e(", ".join(map(str, meta.constraints)) or "none")),
            ("strategy", _e((config.get("strategy") or {}).get("name", "-"))),
            ("mutators", _e(", ".join(m.get("name", "?") for m in config.get("mutators", [])) or "-")),
            ("evaluations", _e(f"{summary.evaluations} ({statuses})")),
            ("feasible", _e(f"{summary.feasible} ({summary.feasible_pct:.1f}%)")),
            ("front", _e(f"{summary.front_size} candidates"))]
    for o in meta.objectives:
        best = summary.best.get(o.name)
        shown = f'{_e(format_metric(best["value"], o.name, o.unit))} (<a href="#cand-{int(best["id"])}">#{int(best["id"])}</a>)' \
            if best else "-"
        rows.append((_e(f"best {o.name} ({o.goal})"), shown))
    reference = stats.reference_natural()
    if reference is not None:
        point = ", ".join(f"{k}={format_metric(v)}" for k, v in reference.items())
        rows.append(("hypervolume", _e(f"{format_metric(run.hypervolume)} (reference point {point}, derived: "
                                       "worst feasible value + 10% of the range)")))
    tokens, cost = spend_text(summary)
    rows += [("tokens", _e(tokens)), ("cost", _e(cost))]
    if summary.rejected:
        rows.append(("rejected", _e(f"{summary.rejected} mutations (before evaluation)")))
    rows.append(("time", _e(f"{duration(summary.elapsed_s)} elapsed, {duration(summary.eval_wall_s)} evaluating")))
    return '<table class="kv" id="summary-table">' + "".join(
        f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _task(meta: RunMeta) -> str:
    """``adder`` and its options one per line (``digits = 10``), not a Python dict."""
    options = "".join(f"<li><code>{_e(k)}</code> = {_e(_option(v))}</li>"
                      for k, v in meta.task_options.items())
    return f"<strong>{_e(meta.task)}</strong>" + (f'<ul class="options">{options}</ul>' if options else "")


def _option(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(_option, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_option(v)}" for k, v in value.items())
    return format_metric(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _lineage_graph(candidates: list[Candidate], front: set[int], best: int | None, shown: set[int]) -> str:
    if not front and best is None:
        return ""
    try:
        svg = lineage_svg(candidates, front, best, {i: f"#cand-{i}" for i in shown})
    except LineageUnavailable as exc:
        return f'<p class="bad" id="lineage-graph-missing">{_e(str(exc))}; the text tree follows.</p>'
    return (f'<figure class="lineage-graph" id="lineage-graph">{svg}<figcaption>Every ancestor of '
            "the front (red); the best candidate has a thick outline; click a node for its "
            "program.</figcaption></figure>")


def _candidate_table(table_id: str, rows: Sequence[Candidate], meta: RunMeta, link: "_Linker",
                     *, sortable: bool) -> str:
    """Objectives, constraint metrics, status and provenance; numeric cells carry data-value."""
    metric_names = [o.name for o in meta.objectives] + [c.metric for c in meta.constraints
                                                        if c.metric not in {o.name for o in meta.objectives}]
    units = {o.name: o.unit for o in meta.objectives}
    head = ['<th data-key="id" data-type="num">#</th>']
    for o in meta.objectives:
        arrow = "↓" if o.goal == "min" else "↑"
        best = "high" if o.goal == "max" else "low"
        head.append(f'<th data-key="{_e(o.name)}" data-type="num" data-best="{best}">'
                    f"{_breakable(o.name)} {arrow}</th>")
    for name in metric_names[len(meta.objectives):]:
        head.append(f'<th data-key="{_e(name)}" data-type="num">{_breakable(name)}</th>')
    head += ['<th data-key="status" class="text">status</th>',
             '<th data-key="mutator" class="text">mutator</th>',
             '<th data-key="parents" class="text">parents</th>',
             '<th data-key="generation" data-type="num">gen</th>',
             '<th data-key="wall_s" data-type="num">eval&nbsp;s</th>',
             '<th data-key="description" class="text intent">intent</th>']
    body = []
    for c in rows:
        cells = [f'<td data-value="{c.id}">{link(c.id)}</td>']
        for name in metric_names:
            value = c.metrics.get(name)
            cells.append(f'<td data-value="{_num_attr(value)}">{_e(format_metric(value, name, units.get(name, "")))}</td>')
        status = _status(c, meta)
        cells += [f'<td class="text status {status[1]}">{_e(status[0])}</td>',
                  f'<td class="text">{_e(c.mutator)}{(" · " + _e(c.usage.model)) if c.usage.model else ""}</td>',
                  f'<td class="text">{" ".join(link(p) for p in c.parents) or "seed"}</td>',
                  f'<td data-value="{c.generation}">{c.generation}</td>',
                  f'<td data-value="{c.result.wall_s:.6g}">{c.result.wall_s:.2f}</td>',
                  f'<td class="text intent">{_e(_short(c.description, 160))}</td>']
        body.append(f'<tr data-id="{c.id}">{"".join(cells)}</tr>')
    cls = ' class="sortable"' if sortable else ""
    return (f'<div class="scroll"><table id="{table_id}"{cls}><thead><tr>{"".join(head)}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _status(c: Candidate, meta: RunMeta) -> tuple[str, str]:
    if c.feasible:
        return "feasible", "ok"
    if c.status == "ok":
        broken = [str(k) for k in meta.constraints if not k.satisfied(c.metrics)]
        return "infeasible" + (f" ({', '.join(broken)})" if broken else ""), "warn"
    return c.status, "bad"


def _lineage(candidates: list[Candidate], front: set[int], link: "_Linker") -> str:
    """The first-parent ancestry of the front as a tree; a chain of only children stays on one
    line, so the indentation grows only where lineages branch."""
    if not front:
        return '<p class="muted">No candidate is on the front yet, so there is no lineage to show.</p>'
    by_id = {c.id: c for c in candidates}
    nodes: set[int] = set()
    for i in front:
        while i not in nodes:
            nodes.add(i)
            if not by_id[i].parents:
                break
            i = by_id[i].parents[0]
    children: dict[int, list[int]] = {}
    for i in sorted(nodes):
        if by_id[i].parents and by_id[i].parents[0] in nodes:
            children.setdefault(by_id[i].parents[0], []).append(i)
    roots = sorted(i for i in nodes if not by_id[i].parents or by_id[i].parents[0] not in nodes)

    def label(i: int) -> str:
        text = link(i)
        return f'<span class="on-front" title="on the front">{text} ★</span>' if i in front else text

    def branch(i: int) -> str:
        chain = [i]
        while len(children.get(chain[-1], [])) == 1:
            chain.append(children[chain[-1]][0])
        kids = children.get(chain[-1], [])
        below = f'<ul>{"".join(f"<li>{branch(k)}</li>" for k in kids)}</ul>' if kids else ""
        return " → ".join(label(n) for n in chain) + below

    return ('<p class="note">First parents only; ★ marks candidates on the front.</p>'
            f'<ul class="tree">{"".join(f"<li>{branch(r)}</li>" for r in roots)}</ul>')


def _program(c: Candidate, meta: RunMeta, front: set[int], children: dict[int, list[int]] | None,
             diff: str | None, link: "_Linker", prefix: str) -> str:
    """One program's section: facts, metrics, source, and the diff to its parent when given."""
    status, css = _status(c, meta)
    badges = f'<span class="badge {css}">{_e(status)}</span>'
    if c.id in front:
        badges += '<span class="badge ok">on the front</span>'
    facts = [("mutator", _e(c.mutator) + (f" ({_e(c.usage.model)})" if c.usage.model else "")),
             ("parents", " ".join(link(p) for p in c.parents) or "none (seed)")]
    if children is not None:
        facts.append(("children", " ".join(link(k) for k in children.get(c.id, [])) or "none"))
    where = f"generation {c.generation}" + (f", island {c.island}" if c.island is not None else "")
    facts += [("origin", where), ("intent", _e(c.description or "-"))]
    if c.result.error:
        facts.append(("error", f'<span class="bad">{_e(c.result.error)}</span>'))
    facts += [("llm", f"{c.usage.prompt_tokens} + {c.usage.completion_tokens} tokens, ${c.usage.cost_usd:.4f}"),
              ("evaluated", f"{_e(time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(c.created_at)))} "
                            f"in {_e(duration(c.result.wall_s))}"),
              ("commit", f"<code>{_e(c.sha[:12])}</code>")]
    declared = [o.name for o in meta.objectives] + [k.metric for k in meta.constraints]
    names = [n for n in dict.fromkeys([*declared, *c.metrics]) if n in c.metrics]
    units = {o.name: o.unit for o in meta.objectives}
    metrics = "".join(f"<tr><th>{_e(n)}</th><td>{_e(format_metric(c.metrics[n], n, units.get(n, '')))}</td></tr>"
                      for n in names)
    parts = [f'<article class="program" id="{prefix}{c.id}">',
             f"<h3>#{c.id}{badges}</h3>",
             "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"]
    if metrics:
        parts.append(f'<table class="kv metrics">{metrics}</table>')
    if c.result.traceback:
        parts.append(f"<details><summary>Traceback</summary><pre>{_e(c.result.traceback)}</pre></details>")
    parts.append(f'<details open class="source"><summary>Source</summary>'
                 f"{_code(c.source, meta.program_file)}</details>")
    if c.parents and diff is not None:
        shown = _diff_html(diff) if diff else '<p class="muted">(identical to its parent)</p>'
        parts.append(f'<details open class="diff"><summary>Diff to parent #{c.parents[0]}</summary>'
                     f"{shown}</details>")
    parts.append("</article>")
    return "".join(parts)


# --- comparison report --------------------------------------------------------------------------
def comparison_report(stats: ComparisonStats, figures: dict[str, bytes] | None = None) -> str:
    """The report of a comparison: the table, the verdicts, the plots (``figures`` if already
    drawn), and each run's front."""
    headers, rows = table_cells(stats)
    head = "".join(('<th class="text">' if i == 0 else "<th>") + f"{_e(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    table = (f'<div class="scroll"><table id="compare-table"><thead><tr>{head}</tr></thead>'
             f"<tbody>{body}</tbody></table></div>"
             + "".join(f'<p class="note">{_e(line)}</p>' for line in describe(stats)))
    verdicts = ('<ul class="verdicts">' + "".join(f"<li>{_e(v.text())}</li>" for v in stats.verdicts)
                + "</ul>") if stats.verdicts else '<p class="muted">Only one group: nothing to test.</p>'
    anchors = _run_anchors(stats.runs)
    sections = [
        _section("table", "Results", table),
        _section("differences", "Differences", verdicts),
        _section("plots", "Plots", _figures(figures or comparison_figures(stats))),
        _section("runs", f"Runs ({len(stats.runs)})", _runs_table(stats, anchors) + "".join(
            _run_front(run, anchor) for run, anchor in zip(stats.runs, anchors))),
    ]
    nav = [("table", "Results"), ("differences", "Differences"), ("plots", "Plots"), ("runs", "Runs")]
    c = stats.comparison
    budget = f"{format_metric(c.budget)} {BUDGET_LABELS[c.budget_kind]}" if c.budget is not None else "unequal budgets"
    subtitle = f"task {stats.task} · {budget} per run · generated {_now()}"
    return _page(f"evolve comparison: {c.title}", subtitle, nav, sections)


def _run_anchors(runs: list[RunStats]) -> list[str]:
    """``run-NAME`` per run, numbered where runs from different directories share a name."""
    names = [r.name for r in runs]
    return [f"run-{name}" if names.count(name) == 1 else f"run-{name}-{i + 1}" for i, name in enumerate(names)]


def _runs_table(stats: ComparisonStats, anchors: list[str]) -> str:
    measures = stats.measures
    head = "".join(f"<th>{_e(m.label)}</th>" for m in measures)
    rows = []
    for run, anchor in zip(stats.runs, anchors):
        cells = "".join(f"<td>{_e(num(m.value(run)))}</td>" for m in measures)
        rows.append(f'<tr><td class="text">{_e(run.group)}</td>'
                    f'<td class="text"><a href="#{_e(anchor)}">{_e(run.name)}</a></td>{cells}</tr>')
    return (f'<div class="scroll"><table id="runs-table"><thead><tr><th class="text">group</th>'
            f'<th class="text">run</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def _run_front(run: RunStats, anchor: str) -> str:
    """A run's front in a comparison report, with its programs (anchors ``<anchor>-cand-ID``)."""
    meta = run.history.meta
    front = list(run.history.front)
    prefix = f"{_e(anchor)}-cand-"
    link = _Linker({c.id for c in front}, prefix)
    programs = "".join(_program(c, meta, {c.id for c in front}, None, None, link, prefix) for c in front)
    return (f'<article class="run" id="{_e(anchor)}"><h3>{_e(run.name)} '
            f'<span class="muted">({_e(run.group)}, {_e(str(run.history.path))})</span></h3>'
            + (_candidate_table(f"{_e(anchor)}-front", front, meta, link, sortable=False) if front
               else '<p class="muted">No feasible candidate.</p>')
            + (f"<details open><summary>Front programs</summary>{programs}</details>" if front else "")
            + "</article>")


# --- shared pieces ------------------------------------------------------------------------------
class _Linker:
    """Renders a candidate id as a link to its program when the report includes it."""

    def __init__(self, shown: set[int], prefix: str) -> None:
        self.shown, self.prefix = shown, prefix

    def __call__(self, i: int) -> str:
        return f'<a href="#{self.prefix}{i}">#{i}</a>' if i in self.shown else f"#{i}"


def _page(title: str, subtitle: str, nav: Iterable[tuple[str, str]], sections: Iterable[str]) -> str:
    links = "".join(f'<a href="#{anchor}">{_e(text)}</a>' for anchor, text in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        f"<style>{_asset('report.css')}\n{_pygments_css()}</style></head>"
        f"<body><header><h1>{_e(title)}</h1><p class=\"muted\">{_e(subtitle)}</p></header>"
        f"<nav>{links}</nav><main>{''.join(sections)}</main>"
        f"<script>{_asset('report.js')}</script></body></html>\n"
    )


def _section(anchor: str, title: str, content: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{content}</section>'


def _figures(figures: dict[str, bytes]) -> str:
    parts = []
    for name, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        caption = _FIGURE_CAPTIONS.get(name, name)
        parts.append(f'<figure id="plot-{name}"><img src="data:image/png;base64,{data}" '
                     f'alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>')
    return "".join(parts)


def _code(source: str, filename: str) -> str:
    return str(highlight(source, _lexer(filename), _FORMATTER))


@lru_cache(maxsize=None)
def _lexer(filename: str) -> Lexer:
    """By file name, once: pygments' lookup scans every lexer it knows."""
    try:
        return get_lexer_for_filename(filename)
    except ClassNotFound:
        return TextLexer()


def _diff_html(diff: str) -> str:
    return str(highlight(diff, DiffLexer(), _DIFF_FORMATTER))


@lru_cache(maxsize=None)
def _asset(name: str) -> str:
    text = resources.files("evolve.report").joinpath("static", name).read_text(encoding="utf-8")
    return text.replace("</", "<\\/") if name.endswith(".js") else text


@lru_cache(maxsize=None)
def _pygments_css() -> str:
    return str(_FORMATTER.get_style_defs(".hl"))


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num_attr(value: object) -> str:
    """A numeric sort key for data-value ("" for missing or non-finite values)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return ""
    return "" if value in (float("inf"), float("-inf")) else repr(float(value))


def _breakable(name: str) -> str:
    """A metric name for a header that may wrap after its underscores (``hidden_<wbr>accuracy``)."""
    return _e(name).replace("_", "_<wbr>")


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M")
