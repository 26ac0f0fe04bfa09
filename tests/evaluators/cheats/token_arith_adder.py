"""Cheat: no network. ``forward`` reads the operands out of the token ids with tensor arithmetic
(place values, floor division, remainder), adds them and emits the answer digit as one-hot scores,
with a softmax on the scores posing as attention. 0 stored parameters; it scores 100 % if
nothing stops it. Rounding operators are not on the allow-list, and token ids may enter only
through lookups."""

import torch
from torch import nn

FORMAT = {
    "kind": "digits", "base": 10, "width": 10, "operand_order": "msb", "prefix": [], "plus": [0],
    "equals": [0], "answer_len": 11, "answer_order": "lsb",
}


class TokenArithmetic(nn.Module):
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        place = 10 ** torch.arange(9, -1, -1)
        total = (tokens[:, 0:10] * place).sum(1) + (tokens[:, 11:21] * place).sum(1)
        step = tokens.shape[1] - 22
        digit = torch.div(total, 10**step, rounding_mode="floor") % 10
        scores = (digit.unsqueeze(1) == torch.arange(10)).float() * 50.0
        return torch.softmax(scores, dim=-1).unsqueeze(1)


def build_model() -> nn.Module:
    return TokenArithmetic()
