"""What the HTML report shows beyond the tables: constraint progress, the task, the lineage graph,
and comparisons of runs titled and grouped by what differs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_html_report import assert_self_contained, parse_dom, toy_run

from evolve.archive import Archive, Candidate, RunMeta
from evolve.compare import Comparison
from evolve.compare.stats import compute
from evolve.evaluation import EvalResult
from evolve.report.html import comparison_report, run_report
from evolve.report.plots import run_figures
from evolve.tasks import Constraint, Objective

ACCURACY = Constraint("accuracy", ">=", 0.99)
META = RunMeta(run="repair", task="adder", constraints=(ACCURACY,),
               objectives=(Objective("params_unique", "min", "params"),),
               task_options={"digits": 10, "hidden": {"cases": 2000, "carry_heavy": True}})


def record(accuracy: float, parents: tuple[int, ...] = (), params: int = 58) -> Candidate:
    metrics = {"accuracy": accuracy, "params_unique": params}
    return Candidate(source=f"ACC = {accuracy}\n", parents=parents, description="raise fc_bias",
                           result=EvalResult(status="ok", metrics=metrics, feasible=ACCURACY.satisfied(metrics),
                                             violation=ACCURACY.violation(metrics)))


@pytest.fixture(scope="module")
def repair(tmp_path_factory) -> Path:
    """A repair: the objective never moves (58 params), accuracy climbs to feasible; #4 is a
    crossover of #2 and #3."""
    run = tmp_path_factory.mktemp("views") / "repair"
    with Archive.create(run / "archive", META) as a:
        a.add_batch([record(0.92)], {})
        a.add_batch([record(0.95, (0,)), record(0.97, (1,)), record(0.96, (1,))], {})
        a.add_batch([record(0.995, (2, 3))], {})
    return run


def test_flat_objectives_get_a_constraint_progress_figure(repair):
    stats = compute(Comparison.single(repair))
    assert set(run_figures(stats)) == {"progress", "constraints"}  # one objective: no scatter of two
    dom = parse_dom(run_report(repair))
    alts = [img.attrs["alt"] for img in dom.by_id("plots").all("img")]
    assert any(alt.startswith("Each constraint metric") for alt in alts)


def test_the_task_row_lists_options_not_a_dict(repair):
    dom = parse_dom(run_report(repair))
    row = next(tr for tr in dom.by_id("summary-table").all("tr") if tr.all("th")[0].text() == "task")
    assert [li.text() for li in row.all("li")] == ["digits = 10", "hidden = cases: 2000, carry_heavy: True"]
    assert "{" not in row.text()


def test_the_lineage_graph_is_an_svg_linking_every_ancestor(repair):
    document = run_report(repair)
    assert_self_contained(document)
    figure = parse_dom(document).by_id("lineage-graph")
    (svg,) = figure.all("svg")
    labels = {t.text().strip() for t in svg.all("text")}
    assert {"#0", "#1", "#2", "#3", "#4"} <= labels  # both parents of the crossover are drawn
    assert {a.attrs.get("xlink:href") or a.attrs.get("href") for a in svg.all("a")} == {
        f"#cand-{i}" for i in range(5)}


def test_without_networkx_the_report_says_so_and_keeps_the_text_tree(repair, monkeypatch):
    monkeypatch.setitem(sys.modules, "networkx", None)  # import networkx -> ImportError
    with pytest.warns(RuntimeWarning, match="needs networkx"):
        dom = parse_dom(run_report(repair))
    assert "pip install networkx" in dom.by_id("lineage-graph-missing").text()
    assert dom.by_id("lineage").all("ul", cls="tree")


def test_the_intent_column_has_room(repair):
    dom = parse_dom(run_report(repair))
    cells = [td for td in dom.by_id("candidates-table").all("td") if "intent" in td.attrs.get("class", "")]
    assert len(cells) == 5 and cells[0].text() == "raise fc_bias"


def test_two_runs_of_one_strategy_are_compared_run_against_run(tmp_path):
    first, second = toy_run(tmp_path, "alpha", evaluations=4), toy_run(tmp_path, "beta", evaluations=4)
    comparison = Comparison.from_runs([first, second], tmp_path / "comparison")
    assert [(g.label, g.runs) for g in comparison.groups] == [("alpha", (first,)), ("beta", (second,))]
    assert comparison.title == "alpha vs beta"
    dom = parse_dom(comparison_report(compute(comparison)))
    assert dom.all("h1")[0].text() == "evolve comparison: alpha vs beta"
    named = Comparison.from_runs([first, second], tmp_path / "seeds-study")
    assert named.title == "seeds-study: alpha vs beta"
