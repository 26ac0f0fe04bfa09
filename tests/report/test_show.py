"""``evolve show`` rendering: front + summary, all candidates, one candidate, JSON variants."""

from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path

import pytest
from rich.console import Console

from evolve.archive import Archive, ArchiveError, RunMeta
from evolve.candidate import Candidate
from evolve.evaluation import EvalResult
from evolve.report import show
from evolve.tasks import Constraint, Objective
from evolve.usage import Usage

ACCURACY = Constraint("accuracy", ">=", 0.99)
META = RunMeta(run="demo", task="adder",
               objectives=(Objective("params_unique", "min", "params"), Objective("speed", "max", "it/s")),
               constraints=(ACCURACY,))
SEED = "def model():\n    return 58\n"
CHILD = "def model():\n    return 46\n"
GRANDCHILD = "def model():\n    # shared weights\n    return 40\n"


def rec(source: str, params: int, speed: float, accuracy: float, *, status: str = "ok",
        **fields) -> Candidate:
    metrics = {"params_unique": params, "speed": speed, "accuracy": accuracy}
    ok = status == "ok"
    result = EvalResult(status=status, metrics=metrics if ok else {},  # type: ignore[arg-type]
                        feasible=ok and ACCURACY.satisfied(metrics),
                        violation=ACCURACY.violation(metrics) if ok else math.inf,
                        error=None if ok else "MemoryError: limit", wall_s=2.0)
    return Candidate(source=source, result=result, **fields)


@pytest.fixture
def run_dir(tmp_path) -> Path:
    with Archive.create(tmp_path / "demo" / "archive", META) as a:
        a.add_batch([rec(SEED, 58, 100.0, 0.9194, description="seed 000")], {})
        a.add_batch([rec(CHILD, 46, 90.0, 1.0, parents=(0,), mutator="llm-diff",
                         description="tie the head", usage=Usage(700, 80, 0.01, "qwen")),
                     rec(SEED, 95, 300.0, 1.0, parents=(0,), mutator="rewrite")], {})
        a.add_batch([rec(GRANDCHILD, 40, 95.0, 1.0, parents=(1,), mutator="numeric"),
                     rec(CHILD, 0, 0.0, 0.0, status="limit", parents=(1,), mutator="llm-diff")], {})
    return tmp_path / "demo"


def render(fn, archive: Archive, *args, **kwargs) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    fn(archive, console, *args, **kwargs)
    return console.file.getvalue()


def run_main(run_dir: Path, args: argparse.Namespace) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    assert show.main(run_dir, args, console) == 0
    return console.file.getvalue()


def first_column(out: str) -> list[str]:
    """The ids of a rendered candidates table (rows whose first cell is a number)."""
    ids, body = [], False
    for line in out.splitlines():
        if line.strip() and set(line.strip()) == {"─"}:
            body = True  # the rule under a table's header
        elif body and line[:1].isdigit():
            ids.append(line.split()[0])
        elif body:
            body = bool(line[:1].isspace() and line.strip())  # a wrapped cell continues the row
    return ids


def strict_json(text: str):
    def reject(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=reject)


def namespace(**given) -> argparse.Namespace:
    defaults = dict(id=None, diff=False, diff_seed=False, all=False, sort=None, limit=None, json=False)
    return argparse.Namespace(**{**defaults, **given})


def test_front_table_and_summary(run_dir):
    with Archive.open(run_dir / "archive") as a:
        out = render(show.print_front, a)
    assert "Pareto front: 2 of 2 candidates" in out
    assert "params_" in out and "unique ↓" in out and "speed ↑" in out  # headers break at "_"
    assert "accuracy" in out and ">= 0.99" in out
    assert "evaluations" in out and "5 (1 limit, 4 ok)" in out and "3 (60.0%)" in out
    assert "40 params  (#3)" in out and "300 it/s  (#2)" in out and "$0.0100" in out
    # best params first; #3 (40 params) and #2 (300 it/s) are on the front, #1 is dominated by #3
    assert first_column(out) == ["3", "2"]


def test_front_json(run_dir):
    with Archive.open(run_dir / "archive") as a:
        data = strict_json(render(show.print_front, a, as_json=True))
    assert [c["id"] for c in data["front"]] == [3, 2]
    assert data["summary"]["evaluations"] == 5 and data["summary"]["feasible_pct"] == 60.0
    assert data["meta"]["objectives"][1] == {"name": "speed", "goal": "max", "unit": "it/s"}


def test_all_sorted_and_limited(run_dir):
    with Archive.open(run_dir / "archive") as a:
        out = render(show.print_candidates, a, sort="speed", limit=3)
        data = strict_json(render(show.print_candidates, a, sort="params_unique", as_json=True))
    assert "3 of 5 candidates, by speed" in out
    assert first_column(out) == ["2", "0", "3"]  # fastest first
    assert "violation" in out and " 0.0706 " in out
    assert [c["id"] for c in data["candidates"]] == [3, 1, 0, 2, 4]  # no metrics: last
    assert data["candidates"][-1]["violation"] is None  # inf is not JSON


def test_one_candidate_with_source_metrics_and_lineage(run_dir):
    with Archive.open(run_dir / "archive") as a:
        out = render(show.print_candidate, a, "3")
        failed = render(show.print_candidate, a, 4)
    assert "candidate #3" in out and "# shared weights" in out
    assert "objective, min" in out and "accuracy >= 0.99 ok" in out
    assert "lineage" in out
    assert first_column(out) == ["3", "1", "0"]
    assert "MemoryError: limit" in failed and "limit" in failed


def test_markup_in_an_intent_or_a_model_id_is_shown_as_text(tmp_path):
    # Rule: words written by an LLM, an agent or an endpoint are text, never rich markup -- "[/]"
    # raised MarkupError (evolve show crashed) and "[bold red]" restyled the terminal
    intent, model = "drop [/] the bias [bold red]now[/]", "[link=https://example.invalid]qwen[/link]"
    with Archive.create(tmp_path / "x" / "archive", META) as a:
        a.add_batch([rec(SEED, 58, 100.0, 1.0, description=intent, usage=Usage(1, 1, 0.0, model))], {})
        out = render(show.print_candidate, a, 0)
    assert intent in out and model in out


def test_candidate_diffs(run_dir):
    with Archive.open(run_dir / "archive") as a:
        to_parent = render(show.print_candidate, a, 3, diff="parent")
        to_seed = render(show.print_candidate, a, 3, diff="seed")
        unchanged = render(show.print_candidate, a, 2, diff="parent")
        data = strict_json(render(show.print_candidate, a, 3, diff="seed", as_json=True))
    assert "--- #1/program.py" in to_parent and "-    return 46" in to_parent
    assert "+    # shared weights" in to_parent
    assert "--- #0/program.py" in to_seed and "-    return 58" in to_seed
    assert "(no changes)" in unchanged  # #2 kept its parent's source
    assert data["candidate"]["source"] == GRANDCHILD and data["on_front"] is True
    assert [c["id"] for c in data["lineage"]] == [3, 1, 0]
    assert data["diff"].startswith("--- #0/program.py\n+++ #3/program.py\n")


def test_main_dispatches_and_reports_bad_input_in_one_line(run_dir):
    out = run_main(run_dir, namespace(all=True, sort="params_unique", limit=1, json=True))
    assert [c["id"] for c in strict_json(out)["candidates"]] == [3]
    assert "candidate #1" in run_main(run_dir, namespace(id="1"))
    for args, message in [(namespace(id="99"), "no candidate #99"),
                          (namespace(all=True, sort="speeed"), "unknown sort key 'speeed'"),
                          (namespace(diff=True), "need a candidate id"),
                          (namespace(id="1", diff=True, diff_seed=True), "cannot be combined")]:
        with pytest.raises(ArchiveError, match=message) as caught:
            run_main(run_dir, args)
        assert "\n" not in str(caught.value)


def test_show_never_writes_the_repository(run_dir):
    git_dir = run_dir / "archive" / ".git"

    def snapshot():
        return sorted((str(p.relative_to(git_dir)), p.stat().st_mtime_ns)
                      for p in git_dir.rglob("*") if p.is_file() and p.name != "evolve-writer.lock")

    before = snapshot()
    for args in (namespace(), namespace(all=True), namespace(id="3", diff_seed=True),
                 namespace(id="2", json=True)):
        run_main(run_dir, args)
    assert snapshot() == before


def test_the_summary_shows_the_runs_spend_with_what_no_candidate_carries(tmp_path) -> None:
    with Archive.create(tmp_path / "r" / "archive", META) as a:
        a.add_batch([rec(SEED, 58, 100.0, 0.9194, usage=Usage(700, 80, 0.01))],
                    {"counters": {"prompt_tokens": 1000, "completion_tokens": 100, "cost_usd": 0.02, "rejected": 2}})
        out = render(show.print_front, a)
    assert "1000 prompt + 100 completion (320 on rejected mutations and agent turns)" in out
    assert "$0.0200 ($0.0100 on rejected mutations and agent turns)" in out
    assert "2 mutations (before evaluation)" in out
