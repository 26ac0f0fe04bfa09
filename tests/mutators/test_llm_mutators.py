"""llm-diff and llm-rewrite end to end against the fake OpenAI-compatible server."""

from __future__ import annotations

import random

import pytest

from evolve.llm import LLMClient, LLMError, ModelSpec
from evolve.mutators import make_mutator
from evolve.candidate import Candidate
from evolve.evaluation import EvalResult
from evolve.mutators.base import MutationContext
from evolve.mutators.prompts import build_messages
from evolve.tasks import Constraint, Objective
from evolve.testing import FakeLLMServer, HTTPFault, Reply, server_error

PARENT = '''\
import math

import torch

# EVOLVE-BLOCK-START
def build(width=4):
    scale = math.sqrt(width)
    return torch.zeros(width) + scale
# EVOLVE-BLOCK-END


def main():
    print(build())
'''

DIFF_REPLY = """I halve the width to cut parameters.
```diff
<<<<<<< SEARCH
def build(width=4):
=======
def build(width=2):
>>>>>>> REPLACE
```"""

REWRITE_REPLY = """Use a cheaper scale.
```python
def build(width=4):
    scale = math.log(width)
    return torch.zeros(width) + scale
```
That should help."""


def program(source: str) -> Candidate:
    return Candidate(id=1, source=source, result=EvalResult("ok"))


def context(seed: int = 0, **kw) -> MutationContext:
    parent = Candidate(id=7, source=PARENT, result=EvalResult(
        "error", {"params": 4.0, "accuracy": 0.5}, error="RuntimeError: shape mismatch",
        traceback="Traceback (most recent call last):\n  File \"x.py\", line 3\nRuntimeError: shape mismatch"))
    inspiration = Candidate(id=3, source=PARENT.replace("math.sqrt(width)", "2.0"),
                            result=EvalResult("ok", {"params": 4.0, "accuracy": 0.9}))
    defaults = dict(
        parent=parent, inspirations=[inspiration], objectives=(Objective("params", "min", "count"), Objective("accuracy", "max")),
        constraints=(Constraint.parse("accuracy >= 0.99"),), task_description="Add two numbers with a tiny transformer.",
        history=["#5 numeric: x 1 -> 2 -> worse", "#6 llm-diff: tried caching -> error"], rng=random.Random(seed),
    )
    defaults.update(kw)
    return MutationContext(**defaults)


def llm(server: FakeLLMServer, **kw) -> LLMClient:
    return LLMClient(server.base_url, [ModelSpec("coder", 1.0, 1.0, 2.0)], backoff_s=0.01, **kw)


def test_llm_diff_end_to_end() -> None:
    with FakeLLMServer([DIFF_REPLY]) as server, llm(server) as client:
        m = make_mutator("llm-diff", llm=client).mutate(context())
        prompt = server.requests[0]["messages"][1]["content"]
    assert m.source == PARENT.replace("def build(width=4):", "def build(width=2):")
    assert m.description == "I halve the width to cut parameters. [1 block(s), +1/-1 lines from line 6]"
    u = m.usage
    assert (m.mutator, u.model, m.error) == ("llm-diff", "coder", None)
    assert u.prompt_tokens > 50 and u.completion_tokens == len(DIFF_REPLY.split())
    assert u.cost_usd == pytest.approx((u.prompt_tokens + 2 * u.completion_tokens) / 1e6)
    assert m.meta["cached"] is False and m.meta["reply"] == DIFF_REPLY
    for fragment in ["Add two numbers with a tiny transformer.", "minimise params (count), maximise accuracy",
                     "accuracy >= 0.99", "accuracy=0.5 params=4 (status error)", "RuntimeError: shape mismatch",
                     "### Program 3: accuracy=0.9", "+    scale = 2.0", "- #6 llm-diff: tried caching -> error",
                     "<<<<<<< SEARCH\ndef mean(values):", "# EVOLVE-BLOCK-START", PARENT.rstrip()]:
        assert fragment in prompt, fragment


def test_llm_diff_rejections_still_report_their_cost() -> None:
    bad = "I change it.\n<<<<<<< SEARCH\ndef mean(values):\n=======\ndef mean(xs):\n>>>>>>> REPLACE\n"
    outside = "<<<<<<< SEARCH\ndef main():\n=======\ndef main(argv=None):\n>>>>>>> REPLACE\n"
    with FakeLLMServer([bad, outside, "No change needed."]) as server, llm(server) as client:
        mutator = make_mutator("llm-diff", llm=client)
        copied, wrong_region, empty = (mutator.mutate(context(seed)) for seed in range(3))
    assert copied.source is None and copied.error.startswith("diff block 1: SEARCH text ('def mean(values):'...) matches nothing")
    assert copied.usage.completion_tokens > 0 and copied.usage.cost_usd > 0 and copied.usage.model == "coder"
    assert wrong_region.error == "diff block 1: SEARCH text lies outside the EVOLVE-BLOCK regions"
    assert empty.error == "no SEARCH/REPLACE blocks found in the reply"
    assert copied.description == f"rejected: {copied.error}"


def test_truncated_reply_is_named_in_the_rejection() -> None:
    cut = Reply(content="<<<<<<< SEARCH\ndef build(width=4):\n=======\n", finish_reason="length")
    with FakeLLMServer([cut]) as server, llm(server) as client:
        m = make_mutator("llm-diff", llm=client).mutate(context())
    assert m.error == "diff block 1: missing '>>>>>>> REPLACE' (reply cut short?) (reply cut at max_tokens)"


def test_llm_rewrite_end_to_end_restores_outside_text_and_imports() -> None:
    with FakeLLMServer([REWRITE_REPLY]) as server, llm(server) as client:
        m = make_mutator("llm-rewrite", llm=client, max_tokens=500, temperature=0.1).mutate(context())
        request = server.requests[0]
    assert m.source == PARENT.replace("math.sqrt(width)", "math.log(width)")
    assert m.description.startswith("Use a cheaper scale. [rewrite, +1/-1 lines; rewrite without markers")
    assert (request["max_tokens"], request["temperature"]) == (500, 0.1)
    assert "single ```python code block" in request["messages"][1]["content"]


def test_llm_rewrite_of_an_unmarked_program_re_adds_dropped_imports() -> None:
    parent = "import math\nimport json\n\n\ndef f(x):\n    return math.sqrt(x)\n"
    reply = "```python\ndef f(x):\n    return math.sqrt(x) * 2\n```"
    with FakeLLMServer([reply, "```python\ndef f(x):\n    return math.sqrt(x)\n```", "```python\ndef f(:\n```"]) as server, llm(server) as client:
        mutator = make_mutator("llm-rewrite", llm=client)
        made = mutator.mutate(context(parent=program(parent)))
        same = mutator.mutate(context(1, parent=program("import math\n\n\ndef f(x):\n    return math.sqrt(x)\n")))
        broken = mutator.mutate(context(2, parent=program(parent)))
    assert made.source == "import math\ndef f(x):\n    return math.sqrt(x) * 2\n"
    assert "re-added import math" in made.description
    assert same.error == "rewrite changes nothing (same code up to formatting and comments)"
    assert broken.error.startswith("result does not parse: line 1")


def test_strict_prompt_is_short_and_still_has_the_example() -> None:
    full = build_messages(context(), "diff")
    strict = build_messages(context(), "diff", strict=True)
    assert len(strict[1]["content"]) < len(full[1]["content"]) - 200
    assert "<<<<<<< SEARCH" in strict[1]["content"] and "Recent attempts" not in strict[1]["content"]
    assert "EVOLVE-BLOCK-START" in strict[1]["content"]
    none = build_messages(context(inspirations=[], history=[]), "rewrite")
    assert "Other programs" not in none[1]["content"] and "Recent attempts" not in none[1]["content"]


def test_request_rejection_becomes_a_rejected_mutation_but_outages_propagate() -> None:
    with FakeLLMServer([HTTPFault(400, message="prompt too long")] + [server_error()] * 3) as server, llm(server, retries=2) as client:
        mutator = make_mutator("llm-diff", llm=client)
        m = mutator.mutate(context())
        assert m.source is None and "HTTP 400: prompt too long" in m.error
        with pytest.raises(LLMError, match="failed after 3 attempts"):
            mutator.mutate(context())


def test_same_seed_same_request_and_cached_answer(tmp_path) -> None:
    with FakeLLMServer([DIFF_REPLY]) as server, llm(server, cache_dir=tmp_path) as client:
        mutator = make_mutator("llm-diff", llm=client)
        first, second = mutator.mutate(context(3)), mutator.mutate(context(3))
        assert len(server.requests) == 1
    assert first.source == second.source and second.meta["cached"] is True
