"""The cheat suite: one hostile candidate per known way to game the adder and sorter scores, each
run end to end through the real sandbox. Each test names, in its assertion, the rule that caught
the cheat (or checks that the strict count counts what the cheat tried to hide)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evaluators._phases import REFUSED
from evolve.evaluation import EvalResult, evaluate
from evolve.sandbox import Sandbox
from evolve.tasks import get_task

torch.set_num_threads(1)
CHEATS = Path(__file__).with_name("cheats")
SEEDS = Path(__file__).resolve().parents[2] / "seeds" / "adder"


@pytest.fixture(scope="module")
def sandbox():
    task = get_task("adder")
    with Sandbox(mode=task.isolation, preload=("torch", "evaluators._adder_phases", "evaluators._sorter_phases"), warmup=task.warmup) as box:
        yield box


def adder(sandbox: Sandbox, program: Path, **options) -> EvalResult:
    return evaluate(get_task("adder", **{"hidden_seed": 7, "hidden_cases": 200, **options}), program, sandbox)


#: Cheats written as an addition to the 58-weight seed (a candidate can read no file but itself).
ON_NANOGPT58 = {"literal_weights.py", "bool_packed.py", "f64_packed.py", "hidden_storage.py", "size_literals.py",
                "structure_numbers.py", "dead_attention.py"}


def candidate(tmp_path: Path, cheat: str, *edits: tuple[str, str]) -> Path:
    """The cheat as one candidate file (appended to nanogpt58.py where it builds on it)."""
    source = (CHEATS / cheat).read_text()
    for old, new in edits:
        assert old in source
        source = source.replace(old, new)
    if cheat in ON_NANOGPT58:
        source = (SEEDS / "nanogpt58.py").read_text() + "\n\n" + source
    path = tmp_path / "candidate.py"
    path.write_text(source)
    return path


def refused_by(result: EvalResult, rule: str) -> bool:
    return result.status == "invalid" and result.error.startswith(f"{REFUSED}: {rule}:") and not result.feasible


@pytest.mark.parametrize(
    ("cheat", "rule"),
    [
        ("token_arith_adder.py", "allow-list"),  # floor division and remainder on token ids
        ("f64_packed.py", "allow-list"),  # view(torch.float32) of a float64 parameter
        ("export_replaced.py", "allow-list"),  # its own artefact, reading past a tensor with _reshape_alias
        ("hidden_storage.py", "storage"),  # 58 floats behind a 1-element parameter
    ],
)
def test_cheats_refused_by_a_named_rule(sandbox, tmp_path, cheat, rule):
    r = adder(sandbox, candidate(tmp_path, cheat))
    assert refused_by(r, rule), (r.status, r.error)
    assert "\n" not in r.error and "check" in r.phases


def test_a_zero_parameter_sorter_computing_on_token_ids_is_refused(sandbox):
    r = evaluate(get_task("sorter"), CHEATS / "token_compare_sorter.py", sandbox)
    assert refused_by(r, "token-lookup"), (r.status, r.error)


#: The strict count of the repaired 58-weight seed: 58 stored + 25 folded (its position code, digit
#: range and zeros; see tests/evaluators/test_adder.py). A cheat must never come out cheaper.
HONEST = 83


@pytest.mark.slow
@pytest.mark.parametrize(("ratios", "params"), [(False, 215), (True, 237)])
def test_weights_written_as_literals_are_counted(sandbox, tmp_path, ratios, params):
    r = adder(sandbox, candidate(tmp_path, "literal_weights.py", ("RATIOS = False", f"RATIOS = {ratios}")))
    assert r.status == "ok", r.error
    m = r.metrics
    assert m["accuracy"] == 1.0 and m["params_adderboard"] == 0  # the old convention saw nothing
    # rule folded-constant: weights built from literals are constants; each value the model reads costs
    # its elements or its generator (the query matrix built from 3 angles is read as 16 numbers)
    assert m["params"] == r.info["folded_units"] == params > HONEST and r.info["value_literals"] == 0, r.info


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ones", "expand", "pad"])
def test_weights_smuggled_through_sizes_are_counted(sandbox, tmp_path, how):
    r = adder(sandbox, candidate(tmp_path, "size_literals.py", ('HOW = "ones"', f"HOW = {how!r}")))
    assert r.status == "ok", r.error
    m = r.metrics
    assert m["accuracy"] == 1.0 and m["params_adderboard"] == 54  # the old convention missed 4 weights
    # rule folded-constant: the four thresholds made from sizes are one constant of 4 elements
    assert m["params"] == HONEST and r.info["folded_units"] == 25 + 4, (m, r.info)
    assert "neg: 4 (elements)" in r.info["folded"]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["doubling", "w_over_w", "cat", "eye", "shape", "arange_index", "ones_sum"])
def test_numbers_built_from_structure_are_counted(sandbox, tmp_path, how):
    r = adder(sandbox, candidate(tmp_path, "structure_numbers.py", ('HOW = "doubling"', f"HOW = {how!r}")))
    assert r.status == "ok", r.error
    m = r.metrics
    assert m["accuracy"] == 1.0 and m["params_adderboard"] == 54  # the thresholds are stored nowhere
    # rule folded-constant: the same whatever the tokens and stored values, so the four thresholds are
    # counted as the 4 numbers the model reads: no cheaper than storing them
    assert m["params"] == HONEST and r.info["folded_units"] == 25 + 4 and r.info["value_literals"] == 0, r.info
    assert "neg: 4 (elements)" in r.info["folded"]


def test_new_ones_on_an_activation_is_refused(sandbox, tmp_path):
    r = adder(sandbox, candidate(tmp_path, "structure_numbers.py", ('HOW = "doubling"', 'HOW = "new_ones"')))
    assert refused_by(r, "allow-list"), (r.status, r.error)  # aten.new_ones is not on the allow-list


@pytest.mark.slow
def test_weights_packed_into_a_bool_buffer_are_counted_by_bytes(sandbox, tmp_path):
    r = adder(sandbox, candidate(tmp_path, "bool_packed.py"))
    assert r.status == "ok", r.error
    m = r.metrics
    assert m["accuracy"] == 1.0 and m["params_adderboard"] == 14 and m["mask_numel"] == 44 * 32
    assert r.info["stored_units"] == 14 + 44 * 32 // 4 and m["params"] > 14 + 352


@pytest.mark.slow
def test_a_softmax_on_the_logits_is_not_attention(sandbox):
    r = adder(sandbox, CHEATS / "memorizer.py")
    assert r.status == "ok", r.error
    assert r.metrics["accuracy"] == 1.0 and r.metrics["attention_ops"] == 0 and not r.feasible
    assert "no self-attention found in the graph" in r.info["ineligible_because"]


def test_an_attention_that_cannot_change_the_logits_is_not_counted(sandbox, tmp_path):
    r = adder(sandbox, candidate(tmp_path, "dead_attention.py"))
    assert r.status == "ok", r.error
    # rule ``attention-ablation``: each query reading only itself leaves the probe's logits unchanged
    assert r.metrics["attention_ops"] == 0 and not r.feasible
    assert "no self-attention found in the graph" in r.info["ineligible_because"]


def test_a_checker_that_is_killed_refuses_the_candidate(sandbox):
    r = adder(sandbox, SEEDS / "nanogpt58.py", check_timeout_s=0.5)
    assert r.status == "invalid" and r.error.startswith(f"{REFUSED}: the check timeout"), (r.status, r.error)
    assert not r.feasible and r.phases["check"]["status"] == "timeout"
