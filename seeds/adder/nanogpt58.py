"""A 58-parameter, hand-weighted one-layer nanoGPT that adds two 10-digit numbers.

Nothing is trained: every weight is written down in ``build_model``. The values are the published
ones, including the MLP carry thresholds -9005/-9015, and with those the model gets 9203 of the
10,010 reference cases right (91.94%). It breaks on long carry chains: 9999999999 + 0 comes out as
10000000499. Thresholds of -9045/-9055 fix it (100%), so this file is the one the repair mutators
start from.

Prompt: the digits of a, then '+', then the digits of b, then '=', both operands most significant
digit first. '+' and '=' are both token 0, which is harmless because positions, not tokens, tell the
model where it is. The 11 answer digits come out least significant first, each fed back in.

How it adds (d_model = 4; dim 0 holds the token's digit value, dims 1-2 a sinusoidal position code
with period 11, dim 3 the answer):
- Position code: amplitude 100 on the prompt (positions 0-21) and 1 on the generated answer, so
  attention only ever lands on prompt digits. Digit i of a and digit i of b are 11 positions apart,
  so they share a phase.
- Two attention heads. Each reflects the query's phase about a fixed angle (8 and 9 steps), so the
  attended phase moves back one step for every step forward: answer step k finds digit pair k
  (head 0) and pair k-1 (head 1). A rank-1 value reads dim 0, each head returns the mean of its two
  digits, and the output projection (gain 2) writes the pair sums into dims 3 and 1.
- The MLP reads z = (sum of pair k-1) - (the current token, i.e. answer digit k-1), which is about 10
  exactly when pair k-1 carried. Units 0-1 clamp z into a carry of 0 or 1; units 2-3 subtract 10
  when the pair sum plus the carry passes 9. Their margin (5 with the published thresholds) is
  smaller than the +-10 that the unit-amplitude position code leaks into z, hence the errors.
- A parabolic head scores digit d as 2*d*x3 - d^2, so the argmax is the integer nearest to x3.

Every stored number is a parameter: 14 embedding + 3 query + 8 key + 8 value + 2 output projection +
12 MLP input + 8 MLP output + 3 head = 58, the AdderBoard count (fixed encodings are free there).
evolve's strict count is 83: the numbers built from structure cost what writes them down (the
position code 19, the digit range and its square 4, two zero tensors 2; see ``evaluators/adder.py``).
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
    "prefix": [],
    "plus": [0],
    "equals": [0],
    "answer_len": 11,
    "answer_order": "lsb",
}

PERIOD = 11  # positions per cycle of the position code: one operand plus its separator
STEP = 2 * math.pi / PERIOD  # phase advance per position
LOUD_UNTIL = 21  # last prompt position; the position code is loud (amplitude 100) up to here


class NanoAdder(nn.Module):
    """One attention layer (2 heads of dim 2) and one ReLU MLP (4 hidden units) on a 4-dim stream."""

    def __init__(self) -> None:
        super().__init__()
        # Rank-1 token embedding: token t -> digit_value[t] * direction.
        self.digit_value = nn.Parameter(torch.zeros(10, 1))
        self.direction = nn.Parameter(torch.zeros(1, 4))
        # Query = scale * (position phase reflected about one angle per head).
        self.q_angle = nn.Parameter(torch.zeros(2))
        self.q_scale = nn.Parameter(torch.zeros(1))
        # Keys read only the two position dims; values are rank-1.
        self.k_weight = nn.Parameter(torch.zeros(4, 2))
        self.v_out = nn.Parameter(torch.zeros(4, 1))
        self.v_in = nn.Parameter(torch.zeros(1, 4))
        # Output projection keeps two entries: head 0 -> dim 3, head 1 -> dim 1.
        self.proj_gain = nn.Parameter(torch.zeros(2))
        # MLP: hidden units 0-1 share one input row, units 2-3 another; rank-1 output.
        self.fc_rows = nn.Parameter(torch.zeros(2, 4))
        self.fc_bias = nn.Parameter(torch.zeros(4))
        self.out_u = nn.Parameter(torch.zeros(4, 1))
        self.out_v = nn.Parameter(torch.zeros(1, 4))
        # Parabolic head: score(d) = lin * d * (gain * x3) + quad * d^2.
        self.head = nn.Parameter(torch.zeros(3))

    def position_code(self, length: int, like: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(length, dtype=like.dtype, device=like.device)
        amplitude = torch.where(pos <= LOUD_UNTIL, 100.0, 1.0)
        phase = pos * STEP
        zero = torch.zeros_like(pos)
        return torch.stack([zero, amplitude * torch.sin(phase), amplitude * torch.cos(phase), zero], dim=-1)

    def query_matrix(self) -> torch.Tensor:
        """Rows (q0, q1) of each head: the (sin, cos) phase reflected about the head's angle, scaled."""
        s = self.q_scale[0]
        zero = torch.zeros_like(s)
        rows = []
        for h in range(2):
            cos, sin = torch.cos(self.q_angle[h]), torch.sin(self.q_angle[h])
            rows.append(torch.stack([zero, -cos * s, sin * s, zero]))
            rows.append(torch.stack([zero, sin * s, cos * s, zero]))
        return torch.stack(rows)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = x @ self.query_matrix().T
        k = x[..., 1:3] @ self.k_weight.T
        v = (x @ self.v_in.T) @ self.v_out.T
        q, k, v = (z.view(b, t, 2, 2).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, 4)
        zero = torch.zeros_like(y[..., 0])
        return torch.stack([zero, self.proj_gain[1] * y[..., 2], zero, self.proj_gain[0] * y[..., 0]], dim=-1)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.stack([self.fc_rows[0], self.fc_rows[0], self.fc_rows[1], self.fc_rows[1]])
        h = F.relu(x @ w.T + self.fc_bias)
        return (h @ self.out_v.T) @ self.out_u.T

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = F.embedding(tokens, self.digit_value) @ self.direction
        x = x + self.position_code(tokens.shape[1], x)
        x = x + self.attention(x)
        x = x + self.mlp(x)
        last = x[:, -1:, 3:4] * self.head[2]
        d = torch.arange(10, dtype=x.dtype, device=x.device)
        return self.head[0] * d * last + self.head[1] * d**2


def build_model() -> nn.Module:
    model = NanoAdder()
    with torch.no_grad():
        model.digit_value.copy_(torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0], [8.0], [9.0]]))
        model.direction.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
        model.q_angle.copy_(torch.tensor([8 * STEP, 9 * STEP]))
        model.q_scale.copy_(torch.tensor([100.0]))
        model.k_weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
        model.v_out.copy_(torch.tensor([[1.0], [0.0], [1.0], [0.0]]))
        model.v_in.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
        model.proj_gain.copy_(torch.tensor([2.0, 2.0]))
        model.fc_rows.copy_(torch.tensor([[-100.0, 100.0, 0.0, 0.0], [-10.0, 10.0, 0.0, 1000.0]]))
        model.fc_bias.copy_(torch.tensor([-50.0, -150.0, -9005.0, -9015.0]))
        model.out_u.copy_(torch.tensor([[0.0], [0.0], [0.0], [1.0]]))
        model.out_v.copy_(torch.tensor([[0.01, -0.01, -1.0, 1.0]]))
        model.head.copy_(torch.tensor([2.0, -1.0, 1.0]))
    return model.eval()
