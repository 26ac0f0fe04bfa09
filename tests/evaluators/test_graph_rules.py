"""The checker's graph rules, in-process on small exported models: token dataflow, literal
counting, the strict count, casts, storage, and what counts as attention."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evaluators._graph_rules import inspect_program, literals, strict_count
from evaluators._torch_model import TENSORS_FILE, RuleError, check_storage, export_model, load_program, save_program

torch.set_num_threads(1)
PROMPTS = torch.tensor([[1, 2, 3, 0, 2], [3, 3, 1, 2, 0], [0, 1, 0, 1, 3]])
MAX_LEN = 8


def loaded(model: nn.Module, tmp_path: Path):
    save_program(export_model(model, PROMPTS, MAX_LEN), tmp_path)
    return load_program(tmp_path)


def inspect(model: nn.Module, tmp_path: Path) -> tuple[dict, dict]:
    return inspect_program(loaded(model, tmp_path), PROMPTS, MAX_LEN)


class Attention(nn.Module):
    """Embedding, one causal softmax attention over the sequence, tied head."""

    def __init__(self, scores: str = "qk", mask: str = "causal") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(4, 3)
        self.q = nn.Linear(3, 3, bias=False)
        self.scores, self.mask = scores, mask

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        t = tokens.shape[1]
        pos = torch.arange(t)
        if self.scores == "qk":
            s = self.q(x) @ x.transpose(1, 2)
        else:  # from the positions alone: the same for every input
            s = -(pos.view(-1, 1) - pos.view(1, -1)).abs().float().expand(x.shape[0], t, t)
        hide = pos.view(1, -1) > pos.view(-1, 1) if self.mask == "causal" else pos.view(1, -1) != pos.view(-1, 1)
        w = torch.softmax(s.masked_fill(hide, -math.inf), -1)
        return F.linear(x + w @ x, self.embed.weight)


class DeadAttention(Attention):
    """A real attention whose mixed values are multiplied by a stored zero."""

    def __init__(self) -> None:
        super().__init__()
        self.dead = nn.Parameter(torch.zeros(1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        t = tokens.shape[1]
        pos = torch.arange(t)
        w = torch.softmax((self.q(x) @ x.transpose(1, 2)).masked_fill(pos.view(1, -1) > pos.view(-1, 1), -math.inf), -1)
        return F.linear(x + self.dead * (w @ x), self.embed.weight)


class LogitSoftmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(4, 4)

    def forward(self, tokens):
        return torch.softmax(self.embed(tokens) * 2.0, -1)


class Sdpa(LogitSoftmax):
    def __init__(self, self_only: bool = False) -> None:
        super().__init__()
        self.self_only = self_only

    def forward(self, tokens):
        x = self.embed(tokens).unsqueeze(1)
        if self.self_only:
            t = tokens.shape[1]
            eye = torch.arange(t).view(-1, 1) == torch.arange(t).view(1, -1)
            return F.scaled_dot_product_attention(x, x, x, attn_mask=eye).squeeze(1)
        return F.scaled_dot_product_attention(x, x, x, is_causal=True).squeeze(1)


class SoftmaxPlusOne(LogitSoftmax):
    def forward(self, tokens):
        x = self.embed(tokens)
        e = (x @ x.transpose(1, 2)).exp()
        return (e / (1 + e.sum(-1, keepdim=True))) @ x


class WeightsNotMixed(LogitSoftmax):
    """A real-looking score matrix whose normalised weights are only summed, never applied to values."""

    def forward(self, tokens):
        x = self.embed(tokens)
        w = torch.softmax(x @ x.transpose(1, 2), -1)
        return x + w.sum(-1, keepdim=True)


@pytest.mark.parametrize(
    ("model", "expected", "why"),
    [
        (Attention(), 1, "softmax over keys of q.k scores, applied to values"),
        (Sdpa(), 1, "fused causal attention"),
        (SoftmaxPlusOne(), 1, "hand-written softmax with +1 in the denominator"),
        (LogitSoftmax(), 0, "a softmax on the logits normalises the vocabulary, not the keys"),
        (Attention(scores="positions"), 0, "scores from positions alone do not depend on the sequence"),
        (Attention(mask="self"), 0, "every query attends only to itself: nothing is mixed"),
        (Sdpa(self_only=True), 0, "fused attention masked to the diagonal"),
        (WeightsNotMixed(), 0, "weights never contracted with values"),
        (DeadAttention(), 0, "a real attention scaled by a stored zero cannot change the logits"),
    ],
)
def test_attention_ops_count_only_real_attention(tmp_path, model, expected, why):
    metrics, _ = inspect(model, tmp_path)
    assert metrics["attention_ops"] == expected, why


class Arithmetic(nn.Module):
    def __init__(self, op: str) -> None:
        super().__init__()
        self.embed = nn.Embedding(4, 4)
        self.op = op

    def forward(self, tokens):
        if self.op == "float":
            return self.embed(tokens) * tokens.float().unsqueeze(-1)
        if self.op == "compare":
            return self.embed(tokens) * (tokens == 2).unsqueeze(-1)
        if self.op == "computed_table":
            return torch.arange(4.0).view(4, 1).expand(4, 4)[tokens]
        return self.embed(tokens[:, 1:]) + self.embed(torch.cat([tokens[:, :1], tokens[:, :-1]], 1))[:, 1:]


@pytest.mark.parametrize("op", ["float", "compare", "computed_table"])
def test_token_ids_may_not_be_computed_on(tmp_path, op):
    with pytest.raises(RuleError, match="^token-lookup: "):
        inspect(Arithmetic(op), tmp_path)


def test_token_ids_may_be_sliced_and_concatenated_before_a_lookup(tmp_path):
    metrics, _ = inspect(Arithmetic("shift"), tmp_path)
    assert metrics["params"] == 16


class Literals(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(4, 4)

    def forward(self, tokens):
        x = self.embed(tokens)
        t = tokens.shape[1]
        x = x.view(x.shape[0], t, 2, 2).reshape(x.shape[0], t, 4)  # sizes: structure
        x = x * 0.5 + 3 - torch.full((1,), 7.0)  # three value literals
        return x.add(x, alpha=1) + torch.arange(t).view(1, t, 1)  # alpha at its default, the length: free


def test_value_literals_are_counted_and_structure_is_listed(tmp_path):
    program = loaded(Literals(), tmp_path)
    found = literals(program.graphs[0])
    assert sorted(found.values) == ["0.5", "3", "7.0"] and sum(found.values.values()) == 3
    assert found.structure["2"] >= 2 and found.structure["4"] >= 1
    count = strict_count(program, PROMPTS, MAX_LEN)
    # rule folded-constant: full((1,), 7.0) is built from structure, so it is counted as a folded
    # constant (1 element) instead of a literal, and arange(t).view(1, t, 1) costs its generator
    # (arange 1 + view 1 + its literals 1, 1 + the length in its size list 1 = 5, fewer than t >= 5)
    assert (count.params, count.stored_units, count.literals, count.folded_units) == (16 + 2 + 1 + 5, 16, 2, 6)


class SizedValues(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(4, 4)

    def forward(self, tokens):
        x = self.embed(tokens)
        made = torch.ones(9045).sum() + torch.ones(1).expand(7).sum() + F.pad(torch.ones(1), (0, 29)).mean()
        forced = torch.ones(4).sum() + torch.ones(tokens.shape[1]).sum()  # a stored dim, the length
        return x * made + forced


def test_sizes_that_make_values_count_as_literals(tmp_path):
    found = literals(loaded(SizedValues(), tmp_path).graphs[0])
    assert {k: found.values[k] for k in ("9045", "7", "29")} == {"9045": 1, "7": 1, "29": 1}  # rule size-literal
    assert "4" not in found.values and str(MAX_LEN) not in found.values


class SizeOfStored(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(4, 4)

    def forward(self, tokens):
        return self.embed(tokens) * self.embed.weight[:1, :1].expand(1, 9045).sum()  # 9045 * w


def test_a_size_that_multiplies_a_stored_value_is_still_a_literal(tmp_path):
    count = strict_count(loaded(SizeOfStored(), tmp_path), PROMPTS, MAX_LEN)
    # rule size-literal: the expand reads a stored value, so it is not folded; its size 9045 counts
    assert (count.literals, count.folded_units, count.params) == (1, 0, 16 + 1), count


class Stored(nn.Module):
    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.embed = nn.Embedding(4, 4, dtype=dtype)
        self.register_buffer("flags", torch.ones(10, dtype=torch.bool))

    def forward(self, tokens):
        return self.embed(tokens).float() * self.flags[:1]


@pytest.mark.parametrize(("dtype", "units"), [(torch.float32, 16), (torch.float16, 8)])
def test_storage_is_counted_in_float32_units(tmp_path, dtype, units):
    metrics, info = inspect(Stored(dtype), tmp_path)
    assert info["stored_units"] == units + 3  # 10 bools = 10 bytes = 3 units (rounded up)
    assert metrics["params_adderboard"] == 16 and metrics["mask_numel"] == 10


def test_a_cast_that_rounds_values_is_refused(tmp_path):
    program = loaded(Stored(torch.float64), tmp_path)
    assert strict_count(program, PROMPTS, MAX_LEN).stored_units == 32 + 3  # float64: 2 units per element
    with pytest.raises(RuleError, match="^narrowing-cast: .*torch.float64 to torch.float32"):
        inspect_program(program, PROMPTS, MAX_LEN)


def test_a_stored_tensor_with_bytes_behind_its_view_is_refused(tmp_path):
    loaded(Attention(), tmp_path)
    tensors = torch.load(tmp_path / TENSORS_FILE, weights_only=True)
    name = next(iter(tensors))
    tensors[name] = torch.zeros(1000)[: tensors[name].numel()].view_as(tensors[name])
    torch.save(tensors, tmp_path / TENSORS_FILE)
    with pytest.raises(RuleError, match="^storage: .* views .* of its storage's 4000 bytes"):
        load_program(tmp_path)


def test_one_storage_read_as_two_dtypes_is_refused():
    # torch.save will not write this; a hand-made tensors.pt could, so the loader checks anyway
    base = torch.zeros(4, dtype=torch.float64)
    with pytest.raises(RuleError, match="^storage: .* reads a torch.float64 storage as torch.float32"):
        check_storage({"a": base, "b": base.view(torch.float32)})
