"""A hand-built two-layer transformer with 95 non-zero weights that adds two 10-digit numbers.

Tokens: digits 0-9, '=' 10, BOS 11, EOS 12 (unused), '+' 13. Prompt: BOS, a (most significant digit
first), '+', b, '='. The 11 answer digits come out most significant first, each fed back in.
Everything is float64: the place values below span 10^-10 to 10^12, beyond float32's 7 digits.

How it adds. The embedding is [is '=', is separator, 10 * digit, 0, 0].
- Layer 0: ALiBi, five heads of dim 1, softmax with +1 in the denominator (a head may attend to
  nothing). Head 3 keys only on separators (BOS, '+', '='); its ALiBi slope of ln 10 makes a
  separator's weight fall tenfold per position of distance, and its value (scaled by 10 * e^40 to
  undo the tiny weight) returns 10^-k for a digit k places after the last separator, negated and
  ten times larger after '='. Head 4 is non-zero only after '='. The gated FFN multiplies these
  out into the digit's place value (negative for answer digits) and, at answer positions, into
  ten candidates (d + 0.5) * 10^k, one per output digit d.
- Layer 1: one head with uniform attention averages the place values over the prefix (its single
  output is added to every dim): the operands add up and the answer digits already emitted
  subtract, leaving the remainder whose leading digit comes next. The FFN scores every candidate
  by its V-shaped distance to that remainder (two ReLU units per digit, weight 10^4), and the
  model returns the negated hidden state, so the evaluator's argmax picks the nearest candidate.

Counting: 1306 nn.Parameter elements (full Linear layers, mostly zero; the query bias of layer 0 and
the up-projection bias of layer 1 are single broadcast values), plus the 14x5 embedding table, kept
as a plain tensor rather than a parameter. 82 of the parameters and 13 table entries are non-zero:
95 non-zero values. The ALiBi slope is a literal in ``attend``: a fixed positional encoding, which
the rules leave uncounted.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

FORMAT = {
    "kind": "digits",
    "base": 10,
    "width": 10,
    "operand_order": "msb",
    "prefix": [11],
    "plus": [13],
    "equals": [10],
    "answer_len": 11,
    "answer_order": "msb",
}

DTYPE = torch.float64
EQ, SEP, DIGIT, COUNT, SCALE = range(5)  # embedding dims; also the layer-0 head writing each dim
CANDIDATES = range(5, 15)  # layer-1 residual dims holding the ten candidate errors
PLACE = 15  # layer-1 residual dim holding the digit's place value
WIDTHS = (5, 16, 10)  # residual width entering layer 0, layer 1, and the readout
HEADS = (5, 1)
FFN = (11, 20)
SEPARATOR_SCORE, DIGIT_SCORE = -40.0, -1000.0
VALUE_SCALE = math.exp(SEPARATOR_SCORE - math.log(10))  # cancels the separator's attention weight


def embedding_table() -> torch.Tensor:
    rows = [[0.0, 0.0, 10.0 * d, 0.0, 0.0] for d in range(10)]
    rows += [[1.0, 1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0], [0.0] * 5, [0.0, 1.0, 0.0, 0.0, 0.0]]
    return torch.tensor(rows, dtype=DTYPE)  # '=', BOS, EOS, '+'


def resize(x: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad or truncate the residual stream to ``width`` dims."""
    if x.shape[-1] >= width:
        return x[..., :width]
    return F.pad(x, (0, width - x.shape[-1]))


def softmax_plus_one(scores: torch.Tensor) -> torch.Tensor:
    e = scores.exp()
    return e / (1 + e.sum(dim=-1, keepdim=True))


class TinyAdder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = embedding_table()  # a constant table, deliberately not a parameter

        def linears(out: tuple[int, ...], bias: bool = True) -> nn.ModuleList:
            return nn.ModuleList(
                nn.Linear(WIDTHS[i], out[i], bias=bias, dtype=DTYPE) for i in range(2)
            )

        self.q, self.k, self.v = linears(HEADS), linears(HEADS), linears(HEADS)
        self.gate, self.up = linears(FFN), linears(FFN)
        self.down = nn.ModuleList(nn.Linear(FFN[i], WIDTHS[i + 1], bias=False, dtype=DTYPE) for i in range(2))
        for p in self.parameters():
            nn.init.zeros_(p)
        # Broadcast biases: one value shared by every head / unit.
        self.q[0].bias = nn.Parameter(torch.zeros(1, dtype=DTYPE))
        self.up[1].bias = nn.Parameter(torch.zeros(1, dtype=DTYPE))

    def attend(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        b, t, _ = h.shape
        heads = HEADS[layer]
        q, k, v = (proj[layer](h).view(b, t, heads, 1).transpose(1, 2) for proj in (self.q, self.k, self.v))
        scores = q @ k.transpose(-2, -1)
        pos = torch.arange(t)
        if layer == 0:  # ALiBi on the place-value head only: a fixed positional bias, no stored value
            slopes = math.log(10) * (torch.arange(heads) == COUNT).to(DTYPE)
            scores = scores + slopes.view(-1, 1, 1) * (pos.view(1, -1) - pos.view(-1, 1))
        scores = scores.masked_fill(pos.view(1, -1) > pos.view(-1, 1), float("-inf"))
        return (softmax_plus_one(scores) @ v).transpose(1, 2).reshape(b, t, heads)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embedding[tokens]
        for layer in range(2):
            h = resize(h, WIDTHS[layer])
            h = h + self.attend(layer, h)  # layer 1's single head is added to every dim
            ffn = self.down[layer](F.relu(self.gate[layer](h)) * self.up[layer](h))
            h = resize(h, WIDTHS[layer + 1]) + ffn
        return -h


def build_model() -> nn.Module:
    model = TinyAdder()
    place = torch.arange(10, dtype=DTYPE)
    with torch.no_grad():
        model.q[0].bias.fill_(1.0)
        model.k[0].weight[COUNT, SEP] = SEPARATOR_SCORE - DIGIT_SCORE
        model.k[0].bias[COUNT] = DIGIT_SCORE
        model.v[0].weight[COUNT, SEP] = 0.1 / VALUE_SCALE
        model.v[0].weight[COUNT, EQ] = -1.1 / VALUE_SCALE
        model.v[0].weight[SCALE, EQ] = 1.0
        model.gate[0].weight[10, DIGIT] = 1.0
        model.gate[0].weight[:10, SCALE] = 1.0
        model.up[0].weight[10, COUNT] = 1e10
        model.up[0].weight[:10, COUNT] = (place + 0.5) * 1e12
        model.down[0].weight[5:16, :] = torch.eye(11, dtype=DTYPE)
        model.v[1].weight[0, PLACE] = 100.0
        model.v[1].bias[0] = 15.0
        model.gate[1].weight[:10, 5:15] = torch.eye(10, dtype=DTYPE) * 1e4
        model.gate[1].weight[10:, 5:15] = torch.eye(10, dtype=DTYPE) * -1e4
        model.up[1].bias.fill_(100.0)
        model.down[1].weight[:, :10] = torch.eye(10, dtype=DTYPE)
        model.down[1].weight[:, 10:] = torch.eye(10, dtype=DTYPE)
    return model.eval()
