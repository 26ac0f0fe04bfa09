"""A real comparison on the toy task: an LLM-mutator hill climber (fake OpenAI-compatible server)
against numeric islands, 2 seeds each, interrupted once and resumed; then its numbers and plots."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from compare_helpers import ROOT
from PIL import Image
from rich.console import Console

from evaluators.toy import TARGET
from evolve.archive import Archive
from evolve.pareto import hypervolume
from evolve.cli import main
from evolve.compare import CompareError, Comparison, parse_compare
from evolve.compare.matrix import run_matrix
from evolve.compare.stats import compute
from evolve.compare.table import num, print_table
from evolve.testing import FakeLLMServer

BUDGET = 10
INTERRUPT_AT = 4  # evaluations into the second cell


def fake_model(request: dict[str, Any]) -> str:
    """Moves the program's values part of the way to the toy target, by a prompt-derived step."""
    prompt = request["messages"][-1]["content"]
    line = re.search(r"^values = \[.*\]$", prompt, re.M).group(0)
    values = json.loads(line.removeprefix("values = "))
    step = 0.2 + 0.6 * hashlib.sha256(prompt.encode()).digest()[0] / 255
    moved = [round(v + step * (t - v), 4) for v, t in zip(values, TARGET)]
    return (f"Move the values a step toward the target.\n<<<<<<< SEARCH\n{line}\n=======\n"
            f"values = {json.dumps(moved)}\n>>>>>>> REPLACE\n")


def compare_data(tmp: Path, base_url: str) -> dict[str, Any]:
    return {
        "name": "duel",
        "output_dir": str(tmp / "runs"),
        "base": {"task": {"name": "toy", "constraints": ["error <= 12"]},
                 "seeds": [str(ROOT / "seeds/toy/start.py")], "parallel": {"evaluations": 2}},
        "variants": [
            {"name": "llm", "strategy": {"name": "hillclimb"}, "mutators": [{"name": "llm-diff"}],
             "llm": {"base_url": base_url, "api_key_env": None, "models": [{"name": "fake-model"}],
                     "retries": 0, "timeout_s": 10}},
            {"name": "islands", "strategy": {"name": "islands", "params": {"islands": 2}},
             "mutators": [{"name": "numeric"}]},
        ],
        "repeats": 2,
        "budget": {"evaluations": BUDGET},
        "target": ["error <= 8"],
    }


class Recorder:
    """Records the matrix's events; interrupts once, in the middle of the second cell."""

    def __init__(self, interrupt: bool) -> None:
        self.interrupt = interrupt
        self.actions: list[tuple[str, str]] = []
        self.batches: dict[str, int] = {}

    def cell_started(self, index, total, cell, run, action) -> None:
        self.actions.append((cell.name, action))

    def batch(self, cell, run) -> None:
        self.batches[cell.name] = self.batches.get(cell.name, 0) + 1
        if self.interrupt and cell.name == "llm-s1" and run.counters.evaluations >= INTERRUPT_AT:
            raise KeyboardInterrupt

    def cell_finished(self, cell, run, outcome) -> None:
        pass


@pytest.fixture(scope="module")
def duel(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("duel")
    with FakeLLMServer(fake_model) as server:
        spec = parse_compare(compare_data(tmp, server.base_url), "duel.yaml")
        first = Recorder(interrupt=True)
        interrupted = run_matrix(spec, first)
        partial_dir = spec.cells[1].run_dir
        with Archive.open(partial_dir / "archive") as archive:
            partial = [(c.id, c.source) for c in archive.candidates()]
        second = Recorder(interrupt=False)
        finished = run_matrix(spec, second)
        requests = len(server.requests)
    return {"spec": spec, "first": first, "interrupted": interrupted, "second": second,
            "finished": finished, "partial": partial, "stats": compute(finished.comparison),
            "requests": requests}


def test_an_interrupted_comparison_resumes_reusing_finished_cells(duel: dict[str, Any]) -> None:
    assert duel["interrupted"].interrupted
    assert duel["first"].actions == [("llm-s0", "started"), ("llm-s1", "started")]
    assert not duel["finished"].interrupted
    assert duel["second"].actions == [("llm-s0", "reused"), ("llm-s1", "resumed"),
                                      ("islands-s0", "started"), ("islands-s1", "started")]
    assert "llm-s0" not in duel["second"].batches  # a reused cell does no work
    assert 0 < len(duel["partial"]) < BUDGET
    for cell in duel["spec"].cells:  # every cell is an ordinary, complete run at the same budget
        with Archive.open(cell.run_dir / "archive") as archive:
            cands = archive.candidates()
            assert [c.id for c in cands] == list(range(BUDGET))
            assert archive.meta.config["run"]["name"] == cell.name
            if cell.name == "llm-s1":  # resumed: what was archived before the interrupt is kept
                assert [(c.id, c.source) for c in cands[:len(duel["partial"])]] == duel["partial"]


def test_the_llm_cells_really_used_the_fake_model(duel: dict[str, Any]) -> None:
    assert duel["requests"] >= 2 * (BUDGET - 1)
    llm = next(g for g in duel["stats"].groups if g.label == "llm")
    assert all(r.final.tokens > 0 for r in llm.runs)
    for run in llm.runs:
        assert {c.mutator for c in run.history.candidates} == {"seed", "llm-diff"}
    tokens_to_target = next(m for m in duel["stats"].measures if m.key == "to_target:tokens")
    reached = [r for r in llm.runs if r.to_target is not None]
    assert reached and all(0 < tokens_to_target.value(r) <= r.final.tokens for r in reached)


def test_hypervolume_in_the_table_is_the_archive_front_through_the_pareto_function(duel: dict[str, Any]) -> None:
    stats = duel["stats"]
    every_feasible = []
    direct = {}
    for cell in duel["spec"].cells:
        with Archive.open(cell.run_dir / "archive") as archive:
            meta = archive.meta
            every_feasible += [meta.point(c.metrics) for c in archive.candidates() if c.feasible]
            direct[cell.name] = [meta.point(c.metrics) for c in archive.front()]
    reference = tuple(max(p[k] for p in every_feasible) + 0.1 * (max(p[k] for p in every_feasible)
                                                                 - min(p[k] for p in every_feasible))
                      for k in range(2))
    assert stats.reference == pytest.approx(reference)
    for run in stats.runs:
        expected = hypervolume(direct[run.name], stats.reference)
        assert expected > 0
        assert run.hypervolume == expected
        assert run.trajectory.hypervolume[-1] == pytest.approx(expected)
    console = Console(file=io.StringIO(), width=250, color_system=None)
    print_table(stats, console)
    out = console.file.getvalue()
    for group in stats.groups:
        values = sorted(hypervolume(direct[r.name], stats.reference) for r in group.runs)
        median = (values[0] + values[1]) / 2
        shown = num(median) if values[0] == values[1] else f"{num(median)} [{num(values[0])}–{num(values[1])}]"
        assert re.search(rf"│ {group.label} +│ 2 │ +{re.escape(shown)} │", out), out


def test_verdicts_with_two_repeats_say_within_noise(duel: dict[str, Any]) -> None:
    stats = duel["stats"]
    assert stats.verdicts and all(v.better is None for v in stats.verdicts)
    assert all("within noise" in v.text() and "n=2 vs 2" in v.text() for v in stats.verdicts)
    console = Console(file=io.StringIO(), width=250, color_system=None)
    print_table(stats, console)
    assert "with n=2 vs 2 the smallest possible p is 0.33" in console.file.getvalue()


def test_cli_on_the_comparison_writes_results_and_non_trivial_plots(duel: dict[str, Any], capsys) -> None:
    directory = duel["spec"].directory
    assert main(["compare", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "comparison duel" in out and "hypervolume" in out
    saved = json.loads((directory / "comparison.json").read_text())
    runs = {r["name"]: r for g in saved["results"]["groups"] for r in g["runs"]}
    for run in duel["stats"].runs:
        assert runs[run.name]["hypervolume"] == run.hypervolume
    for name in ("best_so_far", "hypervolume", "fronts"):
        image = Image.open(directory / f"{name}.png")
        assert image.format == "PNG" and image.width >= 400 and image.height >= 300
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert len(colours) > 50, name  # lines, bands and text, not a blank canvas
    again = compute(Comparison.load(directory))
    assert [r.hypervolume for r in again.runs] == [r.hypervolume for r in duel["stats"].runs]


def test_a_cell_started_with_other_settings_is_refused(duel: dict[str, Any]) -> None:
    spec = duel["spec"]
    data = compare_data(Path(spec.config.output_dir).parent, "http://127.0.0.1:9/v1")
    data["variants"][1]["strategy"] = {"name": "random"}
    data["variants"] = data["variants"][1:]
    with pytest.raises(CompareError, match=r"cell islands-s0: .* was started with different strategy"):
        run_matrix(parse_compare(data, "other.yaml"))
    smaller = compare_data(Path(spec.config.output_dir).parent, "http://127.0.0.1:9/v1")
    smaller["variants"] = smaller["variants"][1:]
    smaller["budget"] = {"evaluations": BUDGET - 1}
    with pytest.raises(CompareError, match=rf"cell islands-s0: .* already finished with max_evaluations {BUDGET}"):
        run_matrix(parse_compare(smaller, "smaller.yaml"))


def test_a_token_budget_ends_each_cell_and_is_the_x_axis(tmp_path: Path) -> None:
    with FakeLLMServer(fake_model) as server:
        data = compare_data(tmp_path, server.base_url)
        data.update(variants=data["variants"][:1], repeats=1, budget={"tokens": 1500})
        outcome = run_matrix(parse_compare(data, "tokens.yaml"))
    (cell,) = outcome.cells
    assert cell.stop_reason.startswith("token budget spent")
    stats = compute(outcome.comparison)
    assert stats.comparison.budget_kind == "tokens"
    x = stats.runs[0].trajectory.x("tokens")
    assert x == sorted(x) and x[0] == 0 and 1500 <= x[-1] < 1500 * 2
    assert stats.runs[0].final.evaluations < BUDGET * 3
