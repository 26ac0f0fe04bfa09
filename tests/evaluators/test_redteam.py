"""Red-team suite for the toy, sorter and microgpt scores (issues #12, #13): hostile candidates the
adder cheat suite (``test_cheats.py``) and the sandbox catalogue (``evolve/sandbox/hostile.py``) do
not cover, each run end to end through the real sandbox, each assertion naming the rule that
catches it (documented in the task's docstring)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from evaluators.microgpt import fingerprint
from evolve.evaluation import evaluate
from evolve.sandbox import Job, Sandbox
from evolve.new_task import write_skeleton
from evolve.tasks import get_task, load_task_file

HERE = Path(__file__).parent
CHEATS = HERE / "cheats"
ROOT = HERE.parents[1]
KEYRING = ROOT / "tests" / "sandbox" / "programs" / "keyring.py"


def clear_key_store(box: Sandbox) -> None:
    """Empty the jobs' uid's user keyring (what the key-store cheats planted)."""
    assert box.run(Job.script("keyring.py", "clear", files={"keyring.py": str(KEYRING)})).ok


# --- toy: the judged figures are the candidate's output and its size ---------------------------
@pytest.fixture(scope="module")
def fresh():
    with Sandbox() as box:
        yield box


def test_packing_two_bytes_to_a_character_does_not_shrink_chars(fresh):
    cheat = CHEATS / "toy_utf16_packed.py"
    r = evaluate(get_task("toy"), cheat, fresh)
    assert r.status == "ok" and r.metrics["error"] == 0.0, r.error
    # rule chars-are-bytes: the figure is the file's UTF-8 size, not its (halved) count of characters
    assert r.metrics["chars"] == len(cheat.read_bytes()) > 1.5 * len(cheat.read_text(encoding="utf-8"))


def test_a_new_task_skeleton_counts_chars_in_bytes_too(fresh, tmp_path):
    write_skeleton("half", tmp_path)
    task = load_task_file(tmp_path / "half.py")()
    body = "print(3.14159)  # the skeleton's target" + "; a longer program packs better" * 4 + "\n"  # even: pairs
    program = tmp_path / "packed.py"
    program.write_text(f"exec(bytes({body.encode().decode('utf-16-le')!r},'utf-16-le'))\n", encoding="utf-8")
    r = evaluate(task, program, fresh)
    assert r.status == "ok" and r.metrics["error"] < 1e-9, r.error
    # rule chars-are-bytes, in the template every file task starts from
    assert r.metrics["chars"] == len(program.read_bytes()) > len(body) > len(program.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("output", "status", "error"),
    [
        ("[1" + "0" * 400 + "]", "error", "not a JSON list of numbers"),  # int too big for a float: OverflowError
        ("[" * 20000 + "]" * 20000, "error", "not a JSON list of numbers"),  # RecursionError in the parser
        ("[1e200, 0, 0, 0]", "ok", None),  # (1e200 - 3) ** 2 raises OverflowError; the product is inf
    ],
    ids=["huge-int", "deep-nesting", "square-overflows"],
)
def test_output_that_breaks_the_parser_fails_the_candidate_not_the_run(fresh, tmp_path, output, status, error):
    program = tmp_path / "program.py"
    program.write_text(f"print({output!r})\n")
    r = evaluate(get_task("toy"), program, fresh)  # rule output-is-data: no exception escapes the evaluator
    assert r.status == status and not r.feasible, (r.status, r.error)
    assert (error is None and r.metrics["error"] == float("inf")) or error in r.error


# --- sorter: train_s is timed on builds whose artefact must be the checked one -----------------
@pytest.mark.slow
def test_repeats_that_do_not_rebuild_the_checked_model_are_refused(tmp_path):
    task = get_task("sorter", repeats=2)
    program = tmp_path / "candidate.py"
    program.write_text((ROOT / "seeds" / "sorter" / "zepto.py").read_text() + "\n\n" + (CHEATS / "unrepeatable_build.py").read_text())
    with Sandbox(mode=task.isolation, preload=task.preload, warmup=task.warmup) as box:
        r = evaluate(task, program, box)
    assert r.status == "invalid" and not r.feasible, (r.status, r.error)
    assert r.error.startswith("timed-build-is-checked-build: build repeat 2 wrote another artefact"), r.error


@pytest.mark.slow
def test_a_repeat_cannot_load_what_the_first_build_trained(tmp_path):
    task = get_task("sorter", repeats=2)
    program = tmp_path / "candidate.py"
    cheat = (CHEATS / "keyring_cache.py").read_text()
    found = "    model = ZeptoGPT(alphabet + 1, 2 * length + 1)"
    assert found in cheat  # the repeat fails loudly where it would load the cached weights
    cheat = cheat.replace(found, '    raise RuntimeError("found the weights an earlier build stored")\n' + found)
    program.write_text((ROOT / "seeds" / "sorter" / "zepto.py").read_text() + "\n\n" + cheat)
    with Sandbox(mode=task.isolation, preload=task.preload, warmup=task.warmup) as box:
        clear_key_store(box)
        try:
            r = evaluate(task, program, box)
        finally:  # the planted weights must not outlive the test
            clear_key_store(box)
    # rule seccomp-no-key-store: no state outlives a job, so every timed build trains
    assert "found the weights an earlier build stored" not in str(r.error), r.error
    assert r.status == "ok", (r.status, r.error)


# --- microgpt: a secret run must not talk back ---------------------------------------------------
MICROGPT = {"steps": 2, "full_steps": 0, "hidden_seed": 7, "hidden_names": 3000}


@pytest.fixture(scope="module")
def stdlib_only():
    with Sandbox(stdlib_only=True) as box:  # microgpt's own sandbox (evolve.evaluation.task_sandbox)
        yield box


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["crash", "print"])
def test_a_secret_run_cannot_send_the_secret_back_through_its_output(stdlib_only, tmp_path_factory, mode):
    cache = tmp_path_factory.getbasetemp() / "redteam-microgpt-cache"  # shared by both modes: one reference run each
    task = get_task("microgpt", cache_dir=str(cache), **MICROGPT)
    program = tmp_path_factory.mktemp(mode) / "leak.py"
    leak = (HERE / "microgpt_cheats" / "leak.py").read_text().replace('MODE = "crash"', f"MODE = {mode!r}")
    program.write_text(leak + "\n\n" + (ROOT / "seeds" / "microgpt" / "optimized.py").read_text())
    r = evaluate(task, program, stdlib_only)
    assert not r.feasible and r.info["stage"] == "hidden", (r.status, r.error)
    if mode == "print":
        assert r.status == "ok" and r.metrics["output_match"] == 0.0 and r.metrics["steps_checked"] == 2
    else:
        assert r.status == "error"
    # rule secret-output-withheld: no word of the candidate's own from a secret run reaches the caller
    text = f"{r.error} {r.traceback} {r.info}"
    assert "LEAK" not in text and "seed=" not in text, text
    assert r.error.startswith("hidden run") and "withheld" in r.error, r.error


@pytest.mark.slow
def test_a_run_cannot_replay_an_output_an_earlier_evaluation_stored(fresh, tmp_path):
    # microgpt refuses ctypes (rule stdlib-only), which this cheat needs to reach the key store; the
    # rule under test here guards every task that allows it, so it is lifted for this task alone
    task = get_task("microgpt", cache_dir=str(tmp_path / "cache"), **MICROGPT)
    task.stdlib_only = False  # type: ignore[misc]
    honest = (ROOT / "seeds" / "microgpt" / "optimized.py").read_text().rstrip()
    tail = 'if __name__ == "__main__":\n    main()'
    assert honest.endswith(tail)
    cheat = (HERE / "microgpt_cheats" / "keyring_replay.py").read_text()
    replay = "        _sys.stdout.write(_zlib.decompress(buf.raw[:size]).decode())"
    assert replay in cheat  # the replay fails loudly where it would print the stored output
    program = tmp_path / "replay.py"
    program.write_text(honest[: -len(tail)] + "\n\n" + cheat.replace(replay, '        raise SystemExit("replayed")'))
    clear_key_store(fresh)
    try:
        first, second = evaluate(task, program, fresh), evaluate(task, program, fresh)
    finally:  # the stored outputs must not outlive the test
        clear_key_store(fresh)
    assert first.feasible, first.error  # the honest first evaluation stored its outputs
    assert "replayed" not in str(second.error), second.error  # rule seccomp-no-key-store: no state outlives a job
    assert second.feasible, second.error


def test_the_hidden_variant_fingerprint_cannot_be_inverted_by_trying_seeds(tmp_path):
    tasks = [get_task("microgpt", cache_dir=str(tmp_path), hidden_seed=7, hidden_names=n) for n in (3000, 3001)]
    stages = [task.stages()[1] for task in tasks]  # (the tasks own the hidden names files: kept alive)
    assert stages[0].seed == stages[1].seed  # the program seed comes first from the secret, whatever the count
    # rule fingerprint-hides-seed: the names enter the hash, so hashing each of the 2**31 seeds finds nothing
    assert fingerprint(stages[0]) != fingerprint(stages[1])
    assert fingerprint(stages[0]) != hashlib.sha256(str(stages[0].seed).encode()).hexdigest()[:12]
