"""Constant folding (rule ``folded-constant``, ``evaluators/_folding.py``): numbers a graph builds
from structure are found by value and counted in the strict count, in-process on small models."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evaluators._folding import _same
from evaluators._graph_rules import strict_count
from evaluators._torch_model import export_model, load_program, save_program

torch.set_num_threads(1)
PROMPTS = torch.tensor([[1, 2, 3, 0, 2], [3, 3, 1, 2, 0], [0, 1, 0, 1, 3]])
MAX_LEN = 8


def loaded(model: nn.Module, directory: Path):
    directory.mkdir(exist_ok=True)
    save_program(export_model(model, PROMPTS, MAX_LEN), directory)
    return load_program(directory)


class Made(nn.Module):
    """One stored table; a number built from structure in one of several spellings."""

    def __init__(self, how: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(4, 4)
        self.how = how

    def forward(self, tokens):
        x = self.embed(tokens)
        if self.how == "w_over_w":  # stored values cancel: the result is ones, whatever they are
            one = self.embed.weight[:1, :1] / self.embed.weight[:1, :1]
        elif self.how == "x_over_x":  # token values cancel just as well
            one = (x / x)[:1, :1, :1].reshape(1, 1)
        else:  # "ones"
            one = torch.ones(1, 1)
        two = one + one
        return x * (two + two + one)  # 5, with no literal saying so


@pytest.mark.parametrize("how", ["ones", "w_over_w", "x_over_x"])
def test_numbers_built_from_structure_are_folded_and_counted(tmp_path, how):
    count = strict_count(loaded(Made(how), tmp_path / 'm'), PROMPTS, MAX_LEN)
    # rule folded-constant: the 5 is the same whatever the tokens and weights; it hands the model one
    # element, so it costs 1 (its generator, 4+ nodes, is longer), and no literal is involved
    assert (count.stored_units, count.literals, count.folded_units, count.params) == (16, 0, 1, 17), count.folded
    assert any(item.endswith(": 1 (elements)") for item in count.folded)


class PositionCode(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(4, 4)

    def forward(self, tokens):
        pos = torch.arange(tokens.shape[1], dtype=torch.float32).view(-1, 1)
        return self.embed(tokens) + torch.sin(pos * 0.5)  # [t, 1]: t numbers from 4 nodes


def test_a_position_code_costs_its_generator_not_its_elements(tmp_path):
    count = strict_count(loaded(PositionCode(), tmp_path / 'm'), PROMPTS, MAX_LEN)
    # arange 1, view 1 + its 2 literals, mul 1 + 0.5, sin 1: 7 units, fewer than its up to 8 elements
    assert (count.folded_units, count.literals, count.params) == (7, 0, 16 + 7), count.folded
    assert count.folded == ("sin: 7 (generator)",)


class PerLength(nn.Module):
    """A Python loop over positions (one graph per length) and a position code in every graph."""

    def __init__(self, differ: bool) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(4))
        self.differ = differ

    def forward(self, tokens):
        t = tokens.shape[1]
        x = F.embedding(tokens, self.w.view(4, 1))
        x = torch.cat([x[:, i : i + 1] * self.w[i % 4] for i in range(t)], 1)
        code = torch.sin(torch.arange(t) * 0.5).view(1, -1, 1)
        if self.differ:  # another number at one length: the graphs' constants differ
            code = code * torch.full((1,), 7.0 if t == 6 else 3.0)
        return x + code


def test_graphs_per_length_count_the_same_constants_once(tmp_path):
    program = loaded(PerLength(False), tmp_path / "same")
    assert len(program.graphs) == MAX_LEN - PROMPTS.shape[1] + 1
    same = strict_count(program, PROMPTS, MAX_LEN)
    differ = strict_count(loaded(PerLength(True), tmp_path / "differ"), PROMPTS, MAX_LEN)
    # the code at length t costs its t elements (its generator is longer): counted once at its
    # largest, 8, not 5 + 6 + 7 + 8
    assert same.folded_units == 8, same.folded
    # length 6 reads other numbers (7.0 instead of 3.0): its 6 count as well
    assert differ.folded_units == 8 + 6, differ.folded


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ([0.0, -math.inf], [-math.inf, 0.0], False),  # a mask that moved: infinities are not "close"
        ([1e12, 1.0], [1e12, 2.0], False),  # each element on its own scale, not the tensor's largest
        ([math.nan, math.inf, 1.0], [math.nan, math.inf, 1.0 + 1e-9], True),  # rounding noise is unchanged
        ([0.0], [1e-30], False),
    ],
)
def test_unchanged_means_each_element_within_a_relative_1e_6(a, b, same):
    assert _same(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)) is same
