"""The sorter task: cases, options, and the seed and cheats end to end through the real sandbox."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from evaluators._sorter_phases import cases, prompts
from evolve.evaluation import EvalResult, evaluate
from evolve.sandbox import Sandbox
from evolve.tasks import TaskError, get_task

SEED = Path(__file__).resolve().parents[2] / "seeds" / "sorter" / "zepto.py"

#: Emits the input letters in their original order: right only on already-sorted strings.
COPY_INPUT = '''
import torch
from torch import nn

class CopyInput(nn.Module):
    def __init__(self, alphabet, length):
        super().__init__()
        self.length = length
        self.register_buffer("one_hot", torch.eye(alphabet + 1))

    def forward(self, tokens):
        letter = tokens[:, tokens.shape[1] - self.length - 1 : tokens.shape[1] - self.length]
        return nn.functional.embedding(letter, self.one_hot)

def train_model(alphabet, length, seed):
    return CopyInput(alphabet, length)
'''

#: Sorts with Python ints inside forward: torch.export cannot trace it.
PYTHON_SORT = '''
import torch
from torch import nn

class PythonSort(nn.Module):
    def __init__(self, alphabet, length):
        super().__init__()
        self.alphabet, self.length = alphabet, length

    def forward(self, tokens):
        rows = []
        for seq in tokens.tolist():
            letter = sorted(seq[:self.length])[len(seq) - self.length - 1]
            rows.append([[float(v == letter) for v in range(self.alphabet + 1)]])
        return torch.tensor(rows)

def train_model(alphabet, length, seed):
    return PythonSort(alphabet, length)
'''

#: Sorts with torch.sort inside forward: traceable, but a call to a sorting operator.
TORCH_SORT = COPY_INPUT.replace(
    "return nn.functional.embedding(letter, self.one_hot)",
    "return nn.functional.embedding(letter.sort(dim=1).values, self.one_hot)",
)


# --- cases and options (pure) --------------------------------------------------------------------
def test_cases_are_every_string_once():
    strings = cases(3, 3)
    assert strings.shape == (27, 3)
    assert len({tuple(r) for r in strings.tolist()}) == 27
    assert strings.min() == 0 and strings.max() == 2
    assert cases(2, 5).shape == (32, 5) and cases(8, 2).shape == (64, 2)


def test_prompts_end_with_the_separator():
    assert prompts(torch.tensor([[2, 0, 0], [1, 1, 0]]), 3).tolist() == [[2, 0, 0, 3], [1, 1, 0, 3]]


@pytest.mark.parametrize(
    "options",
    [{"alphabet": 1}, {"alphabet": 9}, {"alphabet": 3.0}, {"length": 1}, {"length": 7}, {"length": "3"},
     {"seed": -1}, {"seed": True}, {"build_timeout_s": 0}, {"colour": 1}, {"repeats": 0}, {"repeats": True},
     {"repeats": "3"}],
)
def test_bad_options_are_one_line_task_errors(options):
    with pytest.raises(TaskError) as info:
        get_task("sorter", **options)
    assert "\n" not in str(info.value)


# --- end to end through the sandbox -------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox():
    task = get_task("sorter")
    with Sandbox(mode=task.isolation, preload=task.preload, warmup=task.warmup) as box:
        yield box


def run(sandbox: Sandbox, program: Path, **options) -> EvalResult:
    return evaluate(get_task("sorter", **options), program, sandbox)


def write(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "candidate.py"
    path.write_text(source)
    return path


def test_seed_sorts_all_27_triples_with_319_strict_params(sandbox):
    r = run(sandbox, SEED)
    assert r.feasible, (r.status, r.error, r.metrics)
    m = r.metrics
    assert (m["accuracy"], m["correct"], r.info["cases"]) == (1.0, 27, 27)
    # strict: 318 stored + 1 folded, the arange(t) that indexes the positional embedding
    assert (m["params"], m["params_adderboard"], m["params_numel"], m["constants_numel"]) == (319, 318, 318, 0)
    assert r.info["folded"] == ["arange: 1 (generator)"]
    assert m["attention_ops"] == 1 and r.info["export"] == "dynamic"
    assert m["train_s"] > 0 and m["train_cpu_s"] > 0 and m["check_s"] > 0 and m["peak_rss_mib"] > 0
    assert {"build", "check"} <= set(r.phases)
    runs = r.info["train_s_runs"]  # the default: the median of three timed builds
    assert r.info["train_s_repeats"] == len(runs) == 3 and m["train_s"] == round(sorted(runs)[1], 4)


@pytest.mark.slow
def test_seed_evaluates_deterministically(sandbox):
    first, second = run(sandbox, SEED, seed=3), run(sandbox, SEED, seed=3)
    assert first.status == second.status == "ok", (first.error, second.error)
    keys = ("accuracy", "correct", "params", "params_nonzero")
    assert [first.metrics[k] for k in keys] == [second.metrics[k] for k in keys]


@pytest.mark.slow
def test_seed_without_positional_embedding_counts_276(sandbox, tmp_path):
    source = SEED.read_text()
    assert source.count("USE_POSITIONAL = True") == 1
    r = run(sandbox, write(tmp_path, source.replace("USE_POSITIONAL = True", "USE_POSITIONAL = False")))
    assert r.status == "ok", r.error
    assert r.metrics["params"] == r.metrics["params_adderboard"] == r.metrics["params_numel"] == 276


@pytest.mark.parametrize(("alphabet", "length"), [(2, 3), (3, 2)])
def test_alphabet_and_length_set_the_cases_checked(sandbox, alphabet, length):
    r = run(sandbox, SEED, alphabet=alphabet, length=length)
    assert r.status == "ok", r.error
    assert r.info["cases"] == alphabet**length and (r.info["alphabet"], r.info["length"]) == (alphabet, length)
    vocab, context = alphabet + 1, 2 * length + 1
    # the weights, plus 1 for the folded arange(T) indexing the positional embedding
    assert r.metrics["params"] == 6 * vocab + 6 * context + 144 + 72 + 36 + 1


@pytest.mark.parametrize(("alphabet", "length"), [(3, 3), (4, 2)])
def test_a_model_that_copies_its_input_scores_only_the_sorted_strings(sandbox, tmp_path, alphabet, length):
    r = run(sandbox, write(tmp_path, COPY_INPUT), alphabet=alphabet, length=length)
    assert r.status == "ok", r.error
    already_sorted = math.comb(alphabet + length - 1, length)
    assert r.metrics["correct"] == already_sorted and r.metrics["accuracy"] == already_sorted / alphabet**length
    assert r.metrics["params"] == (alphabet + 1) ** 2 and r.metrics["attention_ops"] == 0 and not r.feasible


def test_sorting_with_python_ints_in_forward_cannot_be_exported(sandbox, tmp_path):
    r = run(sandbox, write(tmp_path, PYTHON_SORT))
    assert r.status == "error" and "torch.export failed" in r.error and not r.feasible
    assert not r.metrics and "\n" not in r.error


def test_calling_a_sorting_operator_is_refused(sandbox, tmp_path):
    r = run(sandbox, write(tmp_path, TORCH_SORT))
    assert r.status == "invalid" and not r.feasible, (r.status, r.error)
    assert r.error.startswith("the checker refused the graph: allow-list") and "aten.sort" in r.error
    assert "check" in r.phases and "\n" not in r.error


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def train_model(:\n    pass\n", "syntax error"),
        ("import torch\ndef build_model():\n    return torch.nn.Linear(1, 1)\n", "no train_model"),
        ("train_model = 3\n", "no train_model"),
        ("def train_model(alphabet, length, seed):\n    return 42\n", "expected a torch.nn.Module"),
    ],
)
def test_programs_without_the_interface_are_invalid(sandbox, tmp_path, source, message):
    r = run(sandbox, write(tmp_path, source))
    assert r.status == "invalid" and message in r.error, (r.status, r.error)
    assert "\n" not in r.error and not r.feasible
