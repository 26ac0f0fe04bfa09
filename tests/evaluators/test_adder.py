"""The adder task: prompt formats, cases, and the seeds and cheats end to end through the real sandbox."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from evaluators._adder_phases import (
    FormatError,
    parse_format,
    random_cases,
    reference_cases,
)
from evolve.evaluation import EvalResult, evaluate
from evolve.sandbox import Sandbox
from evolve.tasks import TaskError, get_task

torch.set_num_threads(1)  # as in every evaluating process: 2 threads on a busy 2-core box crawl
ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds" / "adder"
CHEATS = Path(__file__).with_name("cheats")
HIDDEN_SEED = 424242
DIGITS = {
    "kind": "digits", "base": 10, "width": 10, "operand_order": "msb", "prefix": [], "plus": [0],
    "equals": [0], "answer_len": 11, "answer_order": "lsb",
}
BITS = {"kind": "bit-pairs", "width": 35, "suffix": [0], "answer_len": 35, "answer_order": "lsb"}


# --- formats (pure) -----------------------------------------------------------------------------
def test_digit_prompt_layout():
    fmt = parse_format({**DIGITS, "prefix": [11], "plus": [13], "equals": [10], "operand_order": "msb"})
    prompt = fmt.encode(torch.tensor([1234567890]), torch.tensor([42]))[0].tolist()
    assert prompt == [11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 13, 0, 0, 0, 0, 0, 0, 0, 0, 4, 2, 10]
    assert fmt.prompt_len == 23
    lsb = parse_format({**DIGITS, "operand_order": "lsb", "plus": [], "equals": [0, 0]})
    assert lsb.encode(torch.tensor([12]), torch.tensor([3]))[0].tolist() == [2, 1] + [0] * 8 + [3] + [0] * 9 + [0, 0]


def test_bit_pair_prompt_layout():
    fmt = parse_format(BITS)
    prompt = fmt.encode(torch.tensor([0b1011]), torch.tensor([0b0110]))[0].tolist()
    assert prompt[:5] == [2, 3, 1, 2, 0] and prompt[5:35] == [0] * 30 and prompt[35:] == [0]
    assert fmt.prompt_len == 36


@pytest.mark.parametrize(
    "fmt", [DIGITS, {**DIGITS, "answer_order": "msb", "answer_len": 13}, BITS, {**BITS, "answer_order": "msb"}]
)
def test_decode_reads_what_an_exact_adder_would_emit(fmt):
    f = parse_format(fmt)
    base = f.base
    sums = [a + b for a, b in random_cases(3, 200)] + [0, 19_999_999_998]
    rows = []
    for s in sums:
        digits = [(s // base**i) % base for i in range(f.answer_len)]  # least significant first
        rows.append(digits if f.answer_order == "lsb" else digits[::-1])
    tokens = torch.tensor(rows) + base * torch.randint(0, 3, (len(rows), f.answer_len))  # token mod base
    assert f.decode(tokens).tolist() == sums


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([1, 2], "must be a dict"),
        ({**DIGITS, "kind": "roman"}, "FORMAT['kind']"),
        ({**DIGITS, "colour": "red"}, "unknown key 'colour'"),
        ({k: v for k, v in DIGITS.items() if k != "equals"}, "missing 'equals'"),
        ({**DIGITS, "base": 16}, "FORMAT['base']"),
        ({**DIGITS, "width": "10"}, "FORMAT['width']"),
        ({**DIGITS, "answer_len": True}, "FORMAT['answer_len']"),
        ({**DIGITS, "answer_len": 10}, "FORMAT['answer_len']"),
        ({**DIGITS, "operand_order": "middle"}, "FORMAT['operand_order']"),
        ({**DIGITS, "prefix": [-1]}, "token id -1"),
        ({**DIGITS, "plus": [1024]}, "token id 1024"),
        ({**DIGITS, "equals": 10}, "FORMAT['equals']"),
        ({**DIGITS, "prefix": [0.0]}, "token id 0.0"),
        ({**BITS, "width": 34}, "FORMAT['width']"),
        ({**BITS, "prefix": [1]}, "unknown key 'prefix'"),
    ],
)
def test_bad_formats_are_rejected_with_the_key(bad, message):
    with pytest.raises(FormatError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        parse_format(bad)
    assert "\n" not in str(info.value)


def test_format_round_trips_through_json():
    for fmt in (DIGITS, BITS, {**DIGITS, "prefix": [11], "plus": [13], "equals": [10], "answer_order": "msb"}):
        assert parse_format(parse_format(fmt).to_json()) == parse_format(fmt)


# --- cases and options --------------------------------------------------------------------------
def test_reference_cases_are_the_adderboard_set():
    cases = reference_cases()
    assert len(cases) == 10_010
    assert cases[:3] == [(0, 0), (0, 1), (9_999_999_999, 0)] and cases[9] == (1, 9_999_999_999)
    assert cases[10:12] == [(2395527356, 9334186774), (4296888873, 8475224721)]


def test_hidden_cases_depend_on_the_seed():
    assert random_cases(1, 50) == random_cases(1, 50) != random_cases(2, 50)
    assert all(0 <= x <= 9_999_999_999 for pair in random_cases(5, 100) for x in pair)


@pytest.mark.parametrize(
    "options", [{"colour": 1}, {"hidden_cases": 0}, {"hidden_seed": "7"}, {"build_timeout_s": 0}, {"hard_share": 1.5}]
)
def test_bad_task_options(options):
    with pytest.raises(TaskError):
        get_task("adder", **options)


# --- end to end through the sandbox -------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox():
    task = get_task("adder")
    with Sandbox(mode=task.isolation, preload=task.preload, warmup=task.warmup) as box:
        yield box


def run(sandbox: Sandbox, program: Path, **options) -> EvalResult:
    return evaluate(get_task("adder", **{"hidden_seed": HIDDEN_SEED, **options}), program, sandbox)


@pytest.mark.slow
def test_nanogpt58_as_published_scores_9203(sandbox):
    r = run(sandbox, SEEDS / "nanogpt58.py")
    assert r.status == "ok", r.error
    m = r.metrics
    assert (m["correct"], m["params_adderboard"], m["params_numel"], m["constants_numel"]) == (9203, 58, 58, 0)
    # strict: 58 stored + 25 folded: the position code's generator (19: its 10 nodes, the literals 21,
    # 100.0, 1.0, the phase step and the stack dim, 4 list entries), arange(10) and its square in the
    # head (4), two zeros_like (2). Literals inside them are not counted again: 0 value literals.
    assert (m["params"], r.info["stored_units"], r.info["value_literals"], r.info["folded_units"]) == (83, 58, 0, 25)
    assert m["hard_accuracy"] < m["hidden_accuracy"] and r.info["hard_cases"] == 500
    assert m["accuracy"] == pytest.approx(9203 / 10010)
    assert 0.85 < m["hidden_accuracy"] < 0.97 and m["attention_ops"] == 1
    assert not r.feasible and r.violation > 0
    assert r.info["hidden_seed"] == HIDDEN_SEED and r.info["export"] == "dynamic"
    assert r.info["adderboard_eligible"] is True
    assert {"build", "check"} <= set(r.phases) and m["build_s"] > 0 and m["check_s"] > 0 and m["peak_rss_mib"] > 0


@pytest.mark.slow
def test_nanogpt58_with_repaired_thresholds_is_feasible(sandbox, tmp_path):
    source = (SEEDS / "nanogpt58.py").read_text()
    assert source.count("-9005.0, -9015.0") == 1
    fixed = tmp_path / "fixed.py"
    fixed.write_text(source.replace("-9005.0, -9015.0", "-9045.0, -9055.0"))
    r = run(sandbox, fixed)
    assert r.feasible, (r.status, r.error, r.metrics)
    m = r.metrics
    assert m["correct"] == 10010 and m["hidden_accuracy"] == m["hard_accuracy"] == 1.0
    assert (m["params"], m["params_adderboard"]) == (83, 58)


@pytest.mark.slow
def test_binary46_counts_46_and_adds_exactly(sandbox):
    r = run(sandbox, SEEDS / "binary46.py")
    assert r.feasible, (r.status, r.error, r.metrics)
    m = r.metrics
    assert (m["params_adderboard"], m["params_numel"], m["correct"], m["hidden_accuracy"]) == (46, 46, 10010, 1.0)
    assert m["mask_numel"] == m["constants_numel"] == 70 * 70 and m["hard_accuracy"] == 1.0
    # strict: 46 float32 + the 4900-byte bool mask in float32 units (1225) + 1 value literal + the
    # zeros_like that turns the mask into -inf scores (1 folded)
    assert (m["params"], r.info["stored_units"], r.info["folded_units"]) == (46 + 1225 + 1 + 1, 46 + 1225, 1)
    assert r.info["adderboard_eligible"] is False and len(r.info["ineligible_because"]) == 2


@pytest.mark.slow
def test_tinyadder_is_exact_on_the_reference_set_but_misses_hard_carries(sandbox):
    r = run(sandbox, SEEDS / "tinyadder.py")
    assert r.status == "ok", r.error
    m = r.metrics
    assert (m["params_nonzero"], m["params_numel"], m["constants_numel"], m["params_adderboard"]) == (95, 1306, 70, 1376)
    # float64 storage: 2 float32 units per element; 4 value literals; folded: the ALiBi bias (20) and
    # the two causal masks (8 each), each costing its generator, the arange they share counted once
    assert (m["params"], r.info["value_literals"], r.info["folded_units"]) == (2 * 1376 + 4 + 35, 4, 35)
    assert m["correct"] == 10010 and m["attention_ops"] == 2
    # A true finding, not a test artefact: long runs of 9s round away in its place-value sums.
    assert m["hard_accuracy"] < 0.99 and not r.feasible


def test_binary46_solves_the_same_weights_every_build():
    spec = importlib.util.spec_from_file_location("binary46", SEEDS / "binary46.py")
    seed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed)
    first, second = seed.build_model().state_dict(), seed.build_model().state_dict()
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def write(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "candidate.py"
    path.write_text(source)
    return path


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def build_model(:\n    pass\n", "syntax error"),
        ("import torch\ndef build_model():\n    return torch.nn.Linear(1, 1)\n", "no FORMAT"),
        (f"FORMAT = {DIGITS!r}\n", "no build_model"),
        (f"FORMAT = {{**{DIGITS!r}, 'answer_len': 'eleven'}}\ndef build_model():\n    pass\n", "FORMAT['answer_len']"),
        (f"FORMAT = {DIGITS!r}\ndef build_model():\n    return 42\n", "expected a torch.nn.Module"),
    ],
)
def test_programs_without_the_interface_are_invalid(sandbox, tmp_path, source, message):
    r = run(sandbox, write(tmp_path, source))
    assert r.status == "invalid" and message in r.error, (r.status, r.error)
    assert "\n" not in r.error


def test_a_model_that_cannot_be_exported_is_an_error(sandbox, tmp_path):
    r = run(sandbox, CHEATS / "python_adder.py")
    assert r.status == "error" and "torch.export failed" in r.error and not r.feasible
    assert "\n" not in r.error


@pytest.mark.slow
def test_memorizer_fails_the_hidden_set_and_snooping_for_its_seed_gains_nothing(sandbox):
    """Rule: hidden cases drawn from a secret seed the candidate's processes never hold. A lookup
    table of the reference set passes it and fails the hidden one; a snooper that searches the
    sandbox for the seed a checker just used (the memorizer's check ran in this sandbox) does no
    better. One test, so the snooper always has that check job to look for."""
    r = run(sandbox, CHEATS / "memorizer.py", hidden_cases=500)
    assert r.status == "ok", r.error
    assert r.metrics["accuracy"] == 1.0 and r.metrics["hidden_accuracy"] < 0.05 and not r.feasible
    snooped = run(sandbox, CHEATS / "snooper.py", hidden_cases=500)
    assert snooped.status == "ok", snooped.error
    assert snooped.metrics["accuracy"] == 1.0 and snooped.metrics["hidden_accuracy"] < 0.05 and not snooped.feasible
    again = run(sandbox, CHEATS / "memorizer.py", hidden_cases=500)
    assert again.info["hidden_case_seed"] == r.info["hidden_case_seed"]  # same artefact, same seed
    fresh = run(sandbox, CHEATS / "memorizer.py", hidden_cases=500, hidden_seed=None)
    assert isinstance(fresh.info["hidden_seed"], int) and fresh.info["hidden_seed"] != HIDDEN_SEED


@pytest.mark.slow
def test_monkey_patches_in_the_build_do_not_reach_the_checker(sandbox):
    r = run(sandbox, CHEATS / "monkeypatch.py", hidden_cases=200)
    assert r.status == "ok", r.error
    assert r.metrics["params"] == r.metrics["params_adderboard"] == 10
    assert r.metrics["accuracy"] < 0.01 and not r.feasible


def test_a_fake_result_on_the_result_pipe_is_not_a_result(sandbox):
    r = run(sandbox, CHEATS / "fake_result.py", hidden_cases=200)
    assert r.status == "error" and not r.metrics and not r.feasible


@pytest.mark.slow
def test_fake_output_and_metric_files_are_ignored(sandbox):
    r = run(sandbox, CHEATS / "fake_files.py", hidden_cases=200)
    assert r.status == "ok", r.error
    assert r.metrics["params"] == r.metrics["params_adderboard"] == 10
    assert r.metrics["accuracy"] < 0.01 and not r.feasible
