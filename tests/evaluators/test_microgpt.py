"""The microgpt seeds and task, end to end through the real sandbox (short runs)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from evaluators.microgpt import NAMES, first_difference, hidden_variant
from evolve.evaluation import evaluate
from evolve.sandbox import Job, Limits, Sandbox
from evolve.tasks import TaskError, get_task

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "seeds" / "microgpt" / "baseline.py"
OPTIMIZED = ROOT / "seeds" / "microgpt" / "optimized.py"
CHEATS = Path(__file__).with_name("microgpt_cheats")
OPTIONS = {"steps": 2, "full_steps": 4, "hidden_seed": 7, "hidden_names": 3000}


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(stdlib_only=True) as box:  # the task's own rule (evolve.evaluation.task_sandbox)
        yield box


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("microgpt-cache")


@pytest.fixture(scope="module")
def first_eval(sandbox, cache_dir):
    """The optimized seed evaluated on an empty cache: computes (and caches) every reference."""
    task = get_task("microgpt", cache_dir=str(cache_dir), **OPTIONS)
    return task, evaluate(task, OPTIMIZED, sandbox)


def run_seed(sandbox: Sandbox, program: Path, steps: int):
    job = Job.script("p.py", "--data", "names.txt", "--steps", str(steps), "--seed", "42",
                     files={"p.py": str(program), "names.txt": str(NAMES)})
    proc = sandbox.run(job, limits=Limits(timeout_s=600, memory_mb=512, processes=1))
    assert proc.ok, proc.error
    return proc


# --- the seeds ------------------------------------------------------------------------------
@pytest.mark.slow
def test_seeds_print_the_same_and_optimized_needs_a_third_of_the_memory(sandbox):
    base, opt = run_seed(sandbox, BASELINE, 20), run_seed(sandbox, OPTIMIZED, 20)
    assert opt.stdout == base.stdout
    lines = base.stdout.splitlines()
    assert lines[:4] == ["num docs: 32033", "vocab size: 27", "num params: 4192", "step    1 /   20 | loss 3.3660"]
    assert sum(line.startswith("sample ") for line in lines) == 20
    assert 40 < base.peak_rss_mib < 80  # FACTS: 63 MiB over 1000 steps
    assert opt.peak_rss_mib < 25 and opt.peak_rss_mib < 0.5 * base.peak_rss_mib  # FACTS: 20.3 MiB


@pytest.mark.slow
def test_optimized_reproduces_the_full_1000_step_run(sandbox):
    proc = run_seed(sandbox, OPTIMIZED, 1000)
    lines = proc.stdout.splitlines()
    assert lines[3] == "step    1 / 1000 | loss 3.3660"
    assert lines[1002] == "step 1000 / 1000 | loss 2.6497"  # the baseline's figure (FACTS)
    assert proc.peak_rss_mib < 25


# --- the task -------------------------------------------------------------------------------
@pytest.mark.slow  # its fixture runs the reference three times
def test_optimized_seed_passes_every_stage(first_eval):
    _, result = first_eval
    assert result.status == "ok" and result.feasible, result.error
    assert result.metrics["output_match"] == 1.0
    assert result.metrics["stage"] == 3 and result.metrics["steps_checked"] == 4
    assert 0 < result.metrics["peak_rss_mib"] < result.info["reference_peak_rss_mib"]
    assert result.info["reference_runs"] == 3
    assert set(result.phases) == {"public", "hidden", "full"}


def test_second_evaluation_reuses_the_cached_references(first_eval, sandbox, cache_dir):
    files = sorted(cache_dir.glob("*.json"))
    stamps = [f.stat().st_mtime_ns for f in files]
    task = get_task("microgpt", cache_dir=str(cache_dir), **OPTIONS)  # a new instance: no memory of the first
    result = evaluate(task, OPTIMIZED, sandbox)
    assert result.feasible, result.error
    assert result.info["reference_runs"] == 0
    assert sorted(cache_dir.glob("*.json")) == files and [f.stat().st_mtime_ns for f in files] == stamps


def test_wall_s_is_the_median_of_the_repeats_and_info_says_how_many(first_eval, sandbox, cache_dir):
    task = get_task("microgpt", cache_dir=str(cache_dir), repeats=3, **OPTIONS)
    result = evaluate(task, OPTIMIZED, sandbox)
    assert result.feasible, result.error
    runs = result.info["wall_s_runs"]
    assert result.info["wall_s_repeats"] == len(runs) == 3 and all(w > 0 for w in runs)
    assert result.metrics["wall_s"] == round(sorted(runs)[1], 4)
    assert first_eval[1].info["wall_s_repeats"] == 1  # the default: one run (a run costs 10-80 s)


def test_replaying_the_public_output_fails_the_hidden_run(first_eval, sandbox, cache_dir, tmp_path):
    task, _ = first_eval
    public = task.cache.load(task._cache_key(task.stages()[0]))["stdout"]
    cheat = tmp_path / "replay.py"
    cheat.write_text((CHEATS / "replay.py").read_text().replace('OUTPUT = ""', f"OUTPUT = {public!r}"))
    result = evaluate(task, cheat, sandbox)
    assert result.status == "ok" and not result.feasible
    assert result.metrics["output_match"] == 0.0 and result.metrics["stage"] == 2
    assert result.metrics["steps_checked"] == 2  # the public run did match
    assert result.error.startswith("hidden run") and "expected and actual lines withheld" in result.error


def test_a_subtly_different_optimizer_is_rejected_with_a_diff(first_eval, sandbox, tmp_path):
    task, _ = first_eval
    source = OPTIMIZED.read_text()
    assert "LEARNING_RATE, BETA1, BETA2, EPS = 0.01," in source
    cheat = tmp_path / "lr.py"
    cheat.write_text(source.replace("LEARNING_RATE, BETA1, BETA2, EPS = 0.01,", "LEARNING_RATE, BETA1, BETA2, EPS = 0.011,"))
    result = evaluate(task, cheat, sandbox)
    assert not result.feasible and result.metrics["stage"] == 1
    # the first update happens after the step-1 loss is printed: step 2 is the first difference
    assert "line 5: expected 'step    2 /    2 | loss " in result.error
    assert ", got 'step    2 /    2 | loss " in result.error


@pytest.mark.parametrize("module", ["numpy", "ctypes"])
def test_a_trainer_that_reaches_for_native_code_fails_in_the_public_run(first_eval, sandbox, tmp_path, module):
    # Rule stdlib-only: the task times a pure-Python trainer; numpy (or torch) would make its wall_s
    # a native library's, and ctypes would call one, or jump into machine code the program wrote.
    task, _ = first_eval
    cheat = tmp_path / f"{module}.py"
    cheat.write_text(f"import {module}\n" + OPTIMIZED.read_text())
    result = evaluate(task, cheat, sandbox)
    assert result.status == "error" and not result.feasible and result.info["stage"] == "public", result.error
    expected = "ModuleNotFoundError" if module == "numpy" else "ImportError"
    assert result.error.startswith(expected), result.error


def test_exceeding_the_memory_limit_is_reported_as_a_limit(first_eval, sandbox):
    task, _ = first_eval
    result = evaluate(task, CHEATS / "memory_hog.py", sandbox)
    assert result.status == "limit" and not result.feasible
    assert result.phases["public"]["limit"] == "memory"
    assert "MemoryError" in result.error


def test_the_reference_cache_is_out_of_a_candidates_reach(first_eval, sandbox, cache_dir, tmp_path):
    task, _ = first_eval
    cheat = tmp_path / "peek.py"
    files = [str(f) for f in sorted(cache_dir.glob("*.json"))]
    cheat.write_text((CHEATS / "peek.py").read_text().replace("FILES = []", f"FILES = {files!r}"))
    result = evaluate(task, cheat, sandbox)
    # refused by Landlock/permissions, or absent from the sandbox's private view
    assert result.status == "error" and result.error.split(":")[0] in ("PermissionError", "FileNotFoundError")


def test_without_a_hidden_seed_the_secret_is_drawn_once_per_cache(tmp_path):
    first, again = (get_task("microgpt", cache_dir=str(tmp_path / "a")) for _ in range(2))
    other = get_task("microgpt", cache_dir=str(tmp_path / "b"))
    hidden = [task.stages()[1] for task in (first, again, other)]
    assert hidden[0].seed == hidden[1].seed != hidden[2].seed
    assert hidden[0].data.read_bytes() == hidden[1].data.read_bytes() != hidden[2].data.read_bytes()
    assert (tmp_path / "a" / "hidden_seed").stat().st_mode & 0o777 == 0o600


def test_bad_options_raise_task_error(tmp_path):
    for bad in ({"steps": 0}, {"steps": 50, "full_steps": 50}, {"hidden_names": 10**6}, {"hidden_seed": -1},
                {"memory_mb": "lots"}, {"timeout_s": 0}, {"reference": str(tmp_path / "missing.py")}, {"nope": 1},
                {"repeats": 0}, {"repeats": 2.0}, {"repeats": 16}):
        with pytest.raises(TaskError, match="microgpt"):
            get_task("microgpt", **bad)


# --- pieces ---------------------------------------------------------------------------------
def test_hidden_variant_is_secret_seeded_and_trains_on_a_longest_name_first():
    names = [line for line in NAMES.read_text().splitlines() if line]
    seed, chosen = hidden_variant(123, 500, names)
    assert (seed, chosen) == hidden_variant(123, 500, names)
    assert hidden_variant(124, 500, names)[1] != chosen
    assert len(chosen) == 500 and set(chosen) <= set(names)
    docs = list(chosen)
    random.Random(seed).shuffle(docs)  # = the program's random.seed(seed); random.shuffle(docs)
    assert len(docs[0]) == max(map(len, names)) == 15


def test_first_difference_names_the_line_and_withholds_secret_expectations():
    assert first_difference("a\nb\n", "a\nb\n", secret=False) is None
    assert first_difference("a\nb\n", "a\nc\n", secret=False) == "output differs from the reference at line 2: expected 'b', got 'c'"
    assert first_difference("a\nb\n", "a\n", secret=False) == "output differs from the reference at line 2: expected 'b', got ''"
    assert first_difference("a\nb", "a", secret=False) == "output differs from the reference at line 2: expected 'b', got end of output"
    hidden = first_difference("a\nsecret\n", "a\nguess\n", secret=True)
    # rule secret-output-withheld: the candidate's own line may carry the secret back, so it goes too
    assert "secret" not in hidden and "guess" not in hidden and "line 2" in hidden
