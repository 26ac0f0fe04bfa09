"""``evolve compare`` and ``evolve report`` from the command line: results, files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from compare_helpers import ROOT, build_run

from evolve.archive import Archive
from evolve.cli import main


def error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("evolve: ") and err.count("\n") == 1, err
    return err.strip()


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    return {"h": build_run(tmp_path / "h", [[(4, 4)], [(2, 8)]]),
            "i": build_run(tmp_path / "i", [[(4, 4)], [(8, 2)]], strategy="islands"),
            "adder": build_run(tmp_path / "adder", [[(4, 4)]], task="adder")}


def test_comparing_existing_runs_writes_results_plots_and_a_report(runs, tmp_path, capsys) -> None:
    out = tmp_path / "cmp"
    code = main(["compare", str(runs["h"]), str(runs["i"]), "--out", str(out), "--report",
                 "--target", "error <= 3", "--reference", "error=10", "--reference", "chars=10"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "hillclimb" in printed and "islands" in printed and "from the config" in printed
    results = json.loads((out / "comparison.json").read_text())["results"]
    hv = {g["label"]: g["measures"]["hypervolume"]["median"] for g in results["groups"]}
    assert hv == {"hillclimb": 36 + 4, "islands": 36 + 4}
    assert results["reference"] == {"error": 10, "chars": 10}
    assert {p.name for p in out.iterdir()} >= {"best_so_far.png", "hypervolume.png", "fronts.png", "report.html"}
    assert main(["report", str(out), "-o", str(tmp_path / "c.html")]) == 0
    assert 'id="compare-table"' in (tmp_path / "c.html").read_text()


def test_report_of_a_run_defaults_to_a_file_in_the_run(runs, capsys) -> None:
    assert main(["report", str(runs["h"])]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {runs['h'] / 'report.html'}"
    assert 'id="cand-1"' in (runs["h"] / "report.html").read_text()


def test_compare_yaml_from_the_command_line(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = {"name": "tiny", "base": {"task": {"name": "toy", "constraints": ["error <= 12"]},
                                       "seeds": [str(ROOT / "seeds/toy/start.py")]},
              "variants": [{"name": "hill", "strategy": {"name": "hillclimb"}},
                           {"name": "rand", "strategy": {"name": "random"}}],
              "repeats": 1, "budget": {"evaluations": 3}}
    Path("tiny.yaml").write_text(yaml.safe_dump(config))
    assert main(["compare", "tiny.yaml", "--report"]) == 0
    captured = capsys.readouterr()
    assert "[1/2] hill-s0: started" in captured.err and "comparison tiny" in captured.out
    assert (tmp_path / "runs/tiny/report.html").is_file()
    assert main(["compare", "tiny.yaml"]) == 0
    assert "[2/2] rand-s0: reused" in capsys.readouterr().err
    assert main(["show", "runs/tiny/hill-s0"]) == 0  # each cell is an ordinary run


def test_bad_input_is_one_line_and_exit_2(runs, tmp_path: Path, capsys) -> None:
    h, i = str(runs["h"]), str(runs["i"])
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    (tmp_path / "plain").mkdir()
    assert "invalid YAML" in error(capsys, "compare", str(tmp_path / "bad.yaml"))
    assert "no such comparison file" in error(capsys, "compare", str(tmp_path / "none.yaml"))
    assert "no such run 'nope'" in error(capsys, "compare", h, "nope")
    assert "runs of different tasks cannot be compared" in error(capsys, "compare", h, str(runs["adder"]))
    assert "is not an evolve run (no archive/ inside)" in error(capsys, "compare", h, str(tmp_path / "plain"))
    assert "not a comparison" in error(capsys, "compare", h)
    assert "not both" in error(capsys, "compare", str(tmp_path / "bad.yaml"), h)
    assert "--out: only for comparing existing runs" in error(
        capsys, "compare", str(tmp_path / "bad.yaml"), "--out", "x")
    assert "--budget 'steps'" in error(capsys, "compare", h, i, "--budget", "steps")
    assert "--reference 'error=lots'" in error(capsys, "compare", h, i, "--reference", "error=lots")
    assert "reference point: give one value per objective" in error(
        capsys, "compare", h, i, "--out", str(tmp_path / "o"), "--reference", "error=3")
    assert "cannot parse constraint" in error(capsys, "compare", h, i, "--out", str(tmp_path / "o"),
                                              "--target", "error about 3")
    assert "neither a run (no archive/) nor a comparison" in error(capsys, "report", str(tmp_path / "plain"))
    assert "no such run" in error(capsys, "report", str(tmp_path / "missing"))


def tiny_compare(tmp_path: Path, budget: dict | None = None) -> Path:
    config = {"name": "tiny", "base": {"task": {"name": "toy", "constraints": ["error <= 12"]},
                                       "seeds": [str(ROOT / "seeds/toy/start.py")]},
              "variants": [{"name": "hill", "strategy": {"name": "hillclimb"}},
                           {"name": "rand", "strategy": {"name": "random"}}],
              "repeats": 1, "budget": budget or {"evaluations": 5}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_compare_yaml_takes_overrides_from_the_command_line(tmp_path: Path, capsys, monkeypatch) -> None:
    """--set and --max-evaluations change the COMPARE.yaml before validation: every cell gets them."""
    monkeypatch.chdir(tmp_path)
    tiny_compare(tmp_path)
    argv = ["compare", "tiny.yaml", "--max-evaluations", "2", "--set", "variants.1.name=rnd",
            "--set", "base.parallel.evaluations=1"]
    assert main(argv) == 0
    assert "[2/2] rnd-s0: started" in capsys.readouterr().err
    for cell in ("hill-s0", "rnd-s0"):
        with Archive.open(tmp_path / "runs/tiny" / cell / "archive") as archive:
            config, n = archive.meta.config, len(archive)
        assert n == 2 and config["budget"] == {"max_evaluations": 2} and config["parallel"]["evaluations"] == 1
    assert not (tmp_path / "runs/tiny/rand-s0").exists()
    assert main(argv) == 0  # the same command again reuses the finished cells
    assert "[2/2] rnd-s0: reused" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "fragment"), [
    # rule: CompareConfig (validated like the file), blamed on the --set
    (["--set", "repeats=0"], "--set repeats=0: repeats: "),
    (["--set", "base.seeds.0=missing.py"], "--set base.seeds.0=missing.py: base.seeds.0: no such seed file"),
    (["--set", "base.budget.max_evaluations=3"], "--set base.budget.max_evaluations=3: base.budget: set the budget at the top level"),
    # rule: CompareBudget._one_kind (a COMPARE.yaml budgets one kind)
    (["--max-evaluations", "3"], "--set budget.evaluations=3: budget: set exactly one of"),
])
def test_bad_compare_override_is_one_line_and_exit_2(tmp_path: Path, capsys, monkeypatch, extra: list[str],
                                                     fragment: str) -> None:
    monkeypatch.chdir(tmp_path)
    tiny_compare(tmp_path, budget={"wall_s": 60} if "--max-evaluations" in extra else None)
    assert error(capsys, "compare", "tiny.yaml", *extra).startswith(f"evolve: {fragment}")
    assert not (tmp_path / "runs").exists()


def test_overrides_are_refused_when_comparing_existing_runs(runs, capsys) -> None:
    """Rule: cli._comparison (existing runs are compared as they are)."""
    assert "--set: only with a COMPARE.yaml" in error(capsys, "compare", str(runs["h"]), str(runs["i"]),
                                                      "--set", "repeats=2")
    assert "--max-evaluations: only with a COMPARE.yaml" in error(capsys, "compare", str(runs["h"]),
                                                                  str(runs["i"]), "--max-evaluations", "2")
