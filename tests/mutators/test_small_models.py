"""Small-model-aware mutation: prompt style chosen by the local model's registry entry, region-only
rewrites, reply cleaning, and rejection of unparsable children before any evaluation."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from evolve.config import parse_config
from evolve.llm import LLMClient, ModelSpec
from evolve.llm.local import MODELS, LocalLLMClient
from evolve.mutators import make_mutator
from evolve.candidate import Candidate
from evolve.evaluation import EvalResult
from evolve.mutators.base import MutationContext
from evolve.mutators.replies import extract_code
from evolve.run import EvolutionRun
from evolve.tasks import Objective
from evolve.testing import FakeLLMServer

ROOT = Path(__file__).resolve().parents[2]
TOY = (ROOT / "seeds/toy/start.py").read_text()
WEAK = MODELS["qwen2.5-coder-0.5b"]


def view(cid: int, source: str, error: float) -> Candidate:
    return Candidate(id=cid, source=source, result=EvalResult("ok", {"error": error}))


def context(source: str = TOY, inspirations: tuple[Candidate, ...] = ()) -> MutationContext:
    return MutationContext(parent=view(0, source, 10.3), inspirations=list(inspirations),
                           objectives=(Objective("error", "min"),), task_description="Print a vector.", rng=random.Random(0))


def local(server: FakeLLMServer, profile=WEAK) -> LocalLLMClient:
    """The real local client class, pointed at the fake endpoint instead of a started server."""
    return LocalLLMClient(profile, None, server.base_url)


def test_weak_local_model_gets_a_short_region_only_prompt_even_from_llm_diff() -> None:
    with FakeLLMServer(["```python\nvalues = [3.0, -1.5, 0.25, 8.0]\n```"]) as server, local(server) as client:
        mutator = make_mutator("llm-diff", llm=client)
        m = mutator.mutate(context())
        prompt = server.requests[0]["messages"]
    assert (mutator.strict, mutator.asks) == (True, "rewrite")
    assert m.source == TOY.replace("[2.0, -1.0, 0.5, 5.0]", "[3.0, -1.5, 0.25, 8.0]")
    assert m.meta["asked"] == "rewrite" and m.description.startswith("rewrite, +1/-1 lines")
    user = prompt[1]["content"]
    assert "Only this part of the program may change:\n```python\nvalues = [2.0, -1.0, 0.5, 5.0]\n```" in user
    assert "SEARCH" not in user and "Recent attempts" not in user and len(user) < 900


def test_style_overrides_and_api_models_keep_the_full_prompt() -> None:
    with FakeLLMServer([]) as server, local(server) as weak:
        assert make_mutator("llm-diff", llm=weak, style="full").asks == "diff"
        strict_diff = make_mutator("llm-diff", llm=weak, style="strict")
        assert (strict_diff.strict, strict_diff.asks) == (True, "diff")
        capable = local(server, replace(WEAK, strict=False, diffs=True))
        assert (make_mutator("llm-diff", llm=capable).strict, make_mutator("llm-diff", llm=capable).asks) == (False, "diff")
    api = LLMClient("http://127.0.0.1:9/v1", [ModelSpec("gpt")])
    auto = make_mutator("llm-rewrite", llm=api)
    assert (auto.strict, auto.asks) == (False, "rewrite")


def test_strict_prompt_shows_other_versions_of_the_region_with_their_scores() -> None:
    tried = view(1, TOY.replace("2.0, -1.0", "2.5, -1.2"), 4.0)
    same = view(2, TOY, 10.3)
    with FakeLLMServer(["```python\nvalues = [3.0]\n```"]) as server, local(server) as client:
        make_mutator("llm-rewrite", llm=client).mutate(context(inspirations=(same, tried)))
        user = server.requests[0]["messages"][1]["content"]
    assert "Other versions of that part tried before:\n```python\nvalues = [2.5, -1.2, 0.5, 5.0]\n```\nscored error=4" in user
    assert user.count("```python\n") == 3  # the program, its region, the one differing inspiration


def test_unparsable_or_unchanged_replies_are_rejected_before_evaluation() -> None:
    replies = ["```python\nvalues = [3.0, -1.5,\n```", "```python\nvalues = [2.0, -1.0, 0.5, 5.0]  # same\n```", "I cannot help."]
    with FakeLLMServer(replies) as server, local(server) as client:
        mutator = make_mutator("llm-rewrite", llm=client)
        broken, same, prose = (mutator.mutate(context()) for _ in replies)
    assert broken.source is None and broken.error.startswith("result does not parse: line ")
    assert same.error == "rewrite changes nothing (same code up to formatting and comments)"
    assert prose.error == "no program found in the reply"
    assert all(m.usage.completion_tokens > 0 and m.description == f"rejected: {m.error}" for m in (broken, same, prose))


def test_constants_a_region_rewrite_lost_but_the_program_reads_are_put_back() -> None:
    parent = "import math\n# EVOLVE-BLOCK-START\nWIDTH = 4\nDEPTH: int = 2\nUNUSED = 1\n# EVOLVE-BLOCK-END\nprint(WIDTH * DEPTH)\n"
    replies = ["```python\nWIDTH = 3\n```", "```python\nWIDTH = 4\n```", "```python\nWIDTH = 3\nDEPTH = math.floor(WIDTH / 2)\n```"]
    with FakeLLMServer(replies) as server, local(server) as client:
        mutator = make_mutator("llm-rewrite", llm=client)
        lost, only_lost, kept = (mutator.mutate(context(parent)) for _ in replies)
    assert lost.source == parent.replace("WIDTH = 4\nDEPTH: int = 2\nUNUSED = 1\n", "DEPTH: int = 2\nWIDTH = 3\n")
    assert "re-added DEPTH" in lost.description
    assert only_lost.source == parent.replace("UNUSED = 1\n", "").replace("WIDTH = 4\nDEPTH: int = 2\n", "DEPTH: int = 2\nWIDTH = 4\n")
    assert kept.source is not None and "DEPTH = math.floor(WIDTH / 2)" in kept.source and "re-added" not in kept.description


@pytest.mark.parametrize("reply", [
    "```python\nvalues = [1.0]\n```<|im_end|>\n```python\nthis is junk after the turn ended\n```",
    "```\npython\nvalues = [1.0]\n```",
    "Note: this moves the first value closer.\nvalues = [1.0]\nHope this helps!",
    "<think>try ```python\nx = (\n```</think>Sure:\n```py\nvalues = [1.0]\n```\nExplanation: smaller error.",
    "Here you go:\n```python\nvalues = [1.0]",
])
def test_code_is_found_in_what_small_models_actually_reply(reply: str) -> None:
    assert extract_code(reply) == "values = [1.0]\n"


def test_the_run_counts_rejected_mutations_and_never_evaluates_them(tmp_path: Path) -> None:
    replies = ["```python\nvalues = [\n```", "```python\nvalues = [3.0, -1.5, 0.25, 8.0]\n```", "no code"]
    with FakeLLMServer(replies) as server:
        data = {
            "run": {"name": "t", "output_dir": str(tmp_path), "seed": 1},
            "task": {"name": "toy"},
            "seeds": [str(ROOT / "seeds/toy/start.py")],
            "strategy": {"name": "hillclimb"},
            "mutators": [{"name": "llm-rewrite", "params": {"style": "strict"}}],
            "llm": {"base_url": server.base_url, "api_key_env": None, "models": [{"name": "m"}], "retries": 0},
            "budget": {"max_evaluations": 2},
            "parallel": {"evaluations": 1, "llm_requests": 1},
        }
        outcome = EvolutionRun(parse_config(data)).execute()
    assert (outcome.counters.evaluations, outcome.counters.rejected) == (2, 1)  # seed + the good child
    assert len(server.requests) == 2
