"""A 318-parameter GPT that learns to sort short strings of letters, trained from scratch.

The task: n letters from an alphabet of k (duplicates allowed) come out in sorted order, e.g.
``c a a -> a a c``. A sequence is ``x1 .. xn <sep> y1 .. yn``: letters are tokens 0..k-1 and the
separator is token k, so the vocabulary has k + 1 entries and the context 2n + 1 positions.

The model is a one-block, pre-LayerNorm decoder: two causal heads of width 3 on a 6-wide residual
stream, a 6-6-6 GELU MLP, a final LayerNorm and an output head tied to the token embedding. No
linear layer has a bias; the LayerNorms do. For k = 3, n = 3 that is 24 (tokens) + 42 (positions) +
144 (attention) + 72 (MLP) + 36 (three LayerNorms) = 318 trainable values, 276 without the learned
positional embedding (``USE_POSITIONAL = False``). Without it only the causal mask tells positions
apart (attention over a growing prefix averages differently at each step): it still learns, but
needs more restarts and steps.

Training is plain next-token prediction with teacher forcing, scored only where the next token is
part of the answer (the letters before the separator are random, so predicting them is noise).
When k**n is small the batch is every possible input, otherwise a fresh random batch each step.
Training stops as soon as greedy decoding sorts every training input, checked every few steps,
so easy settings finish early. Everything is seeded and single-threaded, hence deterministic.

Interface used by the evaluator: ``train_model(alphabet, length, seed)`` returns the trained module,
whose ``forward(tokens[B, T]) -> logits[B, T, k + 1]`` is pure tensor code; the evaluator runs its
own greedy loop over it.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

USE_POSITIONAL = True  # learned positional embedding (42 params for n = 3); False gives 276
EMBED = 6
HEADS = 2
MLP_RATIO = 1

LEARNING_RATE = 0.05
STEPS_PER_ATTEMPT = 500
ATTEMPTS = 10
CHECK_EVERY = 25  # steps between greedy accuracy checks (early stopping)
FULL_BATCH_LIMIT = 4096  # enumerate all k**n inputs up to this many, otherwise sample
RANDOM_BATCH = 512


class CausalSelfAttention(nn.Module):
    def __init__(self, embed: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(embed, 3 * embed, bias=False)
        self.proj = nn.Linear(embed, embed, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, e = x.shape
        q, k, v = self.qkv(x).split(e, dim=-1)
        q, k, v = (z.view(b, t, self.heads, e // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, e))


class Block(nn.Module):
    def __init__(self, embed: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(embed)
        self.attn = CausalSelfAttention(embed, heads)
        self.ln_mlp = nn.LayerNorm(embed)
        self.mlp = nn.Sequential(
            nn.Linear(embed, mlp_ratio * embed, bias=False),
            nn.GELU(),
            nn.Linear(mlp_ratio * embed, embed, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_attn(x))
        return x + self.mlp(self.ln_mlp(x))


class ZeptoGPT(nn.Module):
    def __init__(self, vocab: int, context: int, positional: bool = USE_POSITIONAL) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, EMBED)
        self.positions = nn.Embedding(context, EMBED) if positional else None
        self.block = Block(EMBED, HEADS, MLP_RATIO)
        self.ln_final = nn.LayerNorm(EMBED)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.tokens(tokens)
        if self.positions is not None:
            x = x + self.positions(torch.arange(tokens.shape[1], device=tokens.device))
        x = self.ln_final(self.block(x))
        return F.linear(x, self.tokens.weight)  # output head tied to the token embedding


def all_strings(alphabet: int, length: int) -> torch.Tensor:
    """Every input string, ``[alphabet ** length, length]``."""
    return torch.tensor(list(itertools.product(range(alphabet), repeat=length)), dtype=torch.long)


def sequences(inputs: torch.Tensor, alphabet: int) -> torch.Tensor:
    """Full training sequences ``x <sep> sorted(x)`` for a batch of inputs [B, n]."""
    sep = torch.full((inputs.shape[0], 1), alphabet, dtype=torch.long)
    return torch.cat([inputs, sep, inputs.sort(dim=1).values], dim=1)


@torch.no_grad()
def greedy_sort(model: nn.Module, inputs: torch.Tensor, alphabet: int) -> torch.Tensor:
    """Decode n answer tokens after ``x <sep>``; the separator may not be emitted."""
    seq = torch.cat([inputs, torch.full((inputs.shape[0], 1), alphabet, dtype=torch.long)], dim=1)
    for _ in range(inputs.shape[1]):
        logits = model(seq)[:, -1, :].clone()
        logits[:, alphabet] = -math.inf
        seq = torch.cat([seq, logits.argmax(dim=-1, keepdim=True)], dim=1)
    return seq[:, inputs.shape[1] + 1:]


def train_model(alphabet: int = 3, length: int = 3, seed: int = 0) -> nn.Module:
    """Train a sorter for ``length`` letters over ``alphabet`` letters; deterministic for a seed.

    Small transformers either solve this quickly or stall in a plateau (typically confusing runs of
    duplicates), so a run that has not sorted its training inputs after ``STEPS_PER_ATTEMPT`` steps
    is restarted from fresh weights; the best attempt is kept if none succeeds.
    """
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    every = all_strings(alphabet, length) if alphabet**length <= FULL_BATCH_LIMIT else None
    best, best_score = None, -1.0
    for _ in range(ATTEMPTS):
        model, score = _attempt(alphabet, length, every, generator)
        if score > best_score:
            best, best_score = model, score
        if score == 1.0:
            break
    return best


def _attempt(
    alphabet: int, length: int, every: torch.Tensor | None, generator: torch.Generator
) -> tuple[nn.Module, float]:
    """One run from fresh weights, on ``every`` input or on random batches when None: the model and
    the share of its last batch it sorts."""
    model = ZeptoGPT(alphabet + 1, 2 * length + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    score = 0.0
    for step in range(1, STEPS_PER_ATTEMPT + 1):
        inputs = every if every is not None else torch.randint(alphabet, (RANDOM_BATCH, length), generator=generator)
        batch = sequences(inputs, alphabet)
        logits = model(batch[:, :-1])[:, length:]  # positions whose next token is an answer letter
        loss = F.cross_entropy(logits.reshape(-1, alphabet + 1), batch[:, length + 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % CHECK_EVERY == 0 or step == STEPS_PER_ATTEMPT:
            score = (greedy_sort(model, inputs, alphabet) == inputs.sort(dim=1).values).all(dim=1).float().mean().item()
            if score == 1.0:
                break
    return model, score


if __name__ == "__main__":
    import sys
    import time

    k, n = (int(a) for a in sys.argv[1:3]) if len(sys.argv) >= 3 else (3, 3)
    start = time.perf_counter()
    trained = train_model(k, n, 0)
    seconds = time.perf_counter() - start
    cases = all_strings(k, n)
    right = int((greedy_sort(trained, cases, k) == cases.sort(dim=1).values).all(dim=1).sum())
    params = sum(p.numel() for p in trained.parameters())
    print(f"k={k} n={n}: {right}/{len(cases)} sorted, {params} params, trained in {seconds:.2f} s")
