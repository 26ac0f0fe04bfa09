"""Cheat: a lookup table of the 10,010 public reference cases (it regenerates them from the public
seed). It passes the reference set and must fail the hidden one.

It obeys the graph rules (tokens only index a stored digit table): the operands are compared with
every stored key, the matching row's answer digits are read by a matmul, and the step (sequence
length - 22) picks the digit. A softmax on the scores dresses it up (it is not attention).
"""

import random

import torch
import torch.nn.functional as F
from torch import nn

FORMAT = {
    "kind": "digits", "base": 10, "width": 10, "operand_order": "msb", "prefix": [], "plus": [0],
    "equals": [0], "answer_len": 11, "answer_order": "lsb",
}
EDGE = [(0, 0), (0, 1), (9999999999, 0), (9999999999, 1), (9999999999, 9999999999),
        (5000000000, 5000000000), (1111111111, 8888888889), (1234567890, 9876543210),
        (9999999999, 9999999999), (1, 9999999999)]


def public_cases() -> list[tuple[int, int]]:
    rng = random.Random(2025)
    return EDGE + [(rng.randint(0, 9_999_999_999), rng.randint(0, 9_999_999_999)) for _ in range(10_000)]


class Lookup(nn.Module):
    """Digit values come from a stored table (tokens only index it); keys and answers are buffers."""

    def __init__(self, cases: list[tuple[int, int]]) -> None:
        super().__init__()
        table = {(a, b): a + b for a, b in cases}
        keys = sorted(table)
        self.register_buffer("digit", torch.arange(10, dtype=torch.float64).view(10, 1))
        self.register_buffer("place", 10.0 ** torch.arange(9, -1, -1, dtype=torch.float64))
        self.register_buffer("keys_a", torch.tensor([a for a, _ in keys], dtype=torch.float64))
        self.register_buffer("keys_b", torch.tensor([b for _, b in keys], dtype=torch.float64))
        answers = [[(table[k] // 10**i) % 10 for i in range(11)] for k in keys]  # least significant first
        self.register_buffer("answers", torch.tensor(answers, dtype=torch.float32))
        self.register_buffer("choices", torch.arange(10, dtype=torch.float32))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        d = F.embedding(tokens, self.digit).squeeze(-1)
        a = (d[:, 0:10] * self.place).sum(1)
        b = (d[:, 11:21] * self.place).sum(1)
        hit = (a.unsqueeze(1) == self.keys_a).float() * (b.unsqueeze(1) == self.keys_b).float()
        digit = (hit @ self.answers).select(1, tokens.shape[1] - 22)
        return torch.softmax(-50.0 * (digit.unsqueeze(1) - self.choices) ** 2, dim=-1).unsqueeze(1)


def build_model() -> nn.Module:
    return Lookup(public_cases())
