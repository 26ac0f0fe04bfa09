"""Cheat: a lookup table of the 10,010 public reference cases (it regenerates them from the public
seed). It passes the reference set and must fail the hidden one.

The prompt's digits are folded into one int64 key per case; ``searchsorted`` finds the key in the
sorted table and the step (sequence length - 22) picks the answer digit. A softmax dresses it up
as attention.
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


def key(a: int, b: int) -> int:
    return a * 2**29 + b


class Lookup(nn.Module):
    def __init__(self, cases: list[tuple[int, int]]) -> None:
        super().__init__()
        table = {key(a, b): a + b for a, b in cases}
        keys = sorted(table)
        self.register_buffer("keys", torch.tensor(keys, dtype=torch.long))
        digits = [[(table[k] // 10**i) % 10 for i in range(11)] for k in keys]  # least significant first
        self.register_buffer("answers", torch.tensor(digits, dtype=torch.long))
        self.register_buffer("place", 10 ** torch.arange(9, -1, -1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        a = (tokens[:, 0:10] * self.place).sum(1)
        b = (tokens[:, 11:21] * self.place).sum(1)
        row = torch.searchsorted(self.keys, a * 2**29 + b).clamp(max=self.keys.shape[0] - 1)
        digit = self.answers[row].select(1, tokens.shape[1] - 22)
        scores = F.one_hot(digit, 10).to(torch.float32) * 50.0
        return torch.softmax(scores, dim=-1).unsqueeze(1)


def build_model() -> nn.Module:
    return Lookup(public_cases())
