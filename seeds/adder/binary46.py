"""A 46-parameter one-layer decoder that adds in binary, with weights solved at build time.

Not AdderBoard-eligible as it stands, for two reasons:
- the prompt is binary bit-pair tokens (token i = 2*a_i + b_i, least significant bit first), not
  decimal digits;
- the attention mask is programmed for this task: position t may attend only to itself and to
  t-35, which routes bit pair i straight to the step that needs it. The mask is a 70x70 boolean
  buffer; the evaluator reports it under constants, not parameters.

The sum is a chain of full-adder states. After the 35 pair tokens comes the start state 0; every
generated token is the next state, sum bit + 2 * carry, and the evaluator reads the answer as the
generated tokens mod 2. Step t sees exactly two tokens through the mask: the previous state and
bit pair t-35. So the network only has to learn the 16 full-adder transitions
(a, b, carry in) -> (sum, carry out), and ``solve`` fits exactly those with Adam, restarting from
a fresh seeded initialisation until all 16 are right. The build is deterministic.

Parameters: embedding 4x2 = 8 (the output head reuses it), attention in/out projections without
bias 12 + 4, MLP 2-4-2 with biases 12 + 10: 46.
"""

import torch
import torch.nn.functional as F
from torch import nn

WIDTH = 35  # bits per operand: 2 * 9_999_999_999 < 2**35
PROMPT_LEN = WIDTH + 1  # pair tokens + start state
CONTEXT = PROMPT_LEN + WIDTH - 1  # the longest sequence the model is ever fed

FORMAT = {
    "kind": "bit-pairs",
    "width": WIDTH,
    "suffix": [0],
    "answer_len": WIDTH,
    "answer_order": "lsb",
}


def routing_mask(size: int) -> torch.Tensor:
    """Attention mask (True = blocked) letting position t see only t and t - WIDTH."""
    pos = torch.arange(size)
    offset = pos.view(-1, 1) - pos.view(1, -1)
    return (offset != 0) & (offset != WIDTH)


class BinaryAdder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(4, 2)
        self.attn = nn.MultiheadAttention(embed_dim=2, num_heads=1, bias=False, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        self.head = nn.Linear(2, 4, bias=False)
        self.head.weight = self.embed.weight  # tied: no extra parameters
        self.register_buffer("mask", routing_mask(CONTEXT), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        t = tokens.shape[1]
        y, _ = self.attn(x, x, x, attn_mask=self.mask[:t, :t], need_weights=False)
        x = x + y
        x = x + self.mlp(x)
        return self.head(x)


def transitions() -> tuple[torch.Tensor, torch.Tensor]:
    """The 16 full-adder steps as prompts whose last position must predict the next state."""
    prompts, targets = [], []
    for a in (0, 1):
        for b in (0, 1):
            for state in range(4):  # sum bit + 2 * carry of the previous step
                carry = state // 2
                total = a + b + carry
                prompt = torch.zeros(PROMPT_LEN, dtype=torch.long)
                prompt[0] = 2 * a + b  # the pair the last position sees through the mask
                prompt[-1] = state
                prompts.append(prompt)
                targets.append(total % 2 + 2 * (total // 2))
    return torch.stack(prompts), torch.tensor(targets)


def solve(restarts: int = 8, steps: int = 3000, lr: float = 5e-3) -> BinaryAdder:
    """Fit the 16 transitions exactly; each restart starts from ``torch.manual_seed(restart)``."""
    prompts, targets = transitions()
    for restart in range(1, restarts + 1):
        torch.manual_seed(restart)
        model = BinaryAdder()
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(steps):
            scores = model(prompts)[:, -1, :]
            if bool((scores.argmax(-1) == targets).all()):
                return model
            optimizer.zero_grad()
            F.cross_entropy(scores, targets).backward()
            optimizer.step()
    raise RuntimeError(f"no exact solution of the 16 transitions in {restarts} restarts")


def build_model() -> nn.Module:
    return solve().eval()
