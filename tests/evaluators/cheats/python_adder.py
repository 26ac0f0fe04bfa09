"""Cheat: forward reads the digits back into Python ints, adds them with Python arithmetic and
emits the answer digit as one-hot scores. No network at all: torch.export cannot trace Python
arithmetic on tensor values, so the build must fail (or bake in the example's answer)."""

import torch
from torch import nn

FORMAT = {
    "kind": "digits", "base": 10, "width": 10, "operand_order": "msb", "prefix": [], "plus": [0],
    "equals": [0], "answer_len": 11, "answer_order": "lsb",
}


class PythonAdder(nn.Module):
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        rows = []
        for seq in tokens.tolist():
            a = int("".join(map(str, seq[0:10])))
            b = int("".join(map(str, seq[11:21])))
            digit = (a + b) // 10 ** (len(seq) - 22) % 10
            rows.append([[1.0 if d == digit else 0.0 for d in range(10)]])
        return torch.softmax(torch.tensor(rows) * 50, dim=-1)


def build_model() -> nn.Module:
    return PythonAdder()
