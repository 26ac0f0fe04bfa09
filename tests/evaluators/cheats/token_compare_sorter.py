"""Cheat for the sorter: no network and 0 parameters. ``forward`` compares the token ids with each
letter, counts how many letters are <= each one, and reads the k-th smallest letter off the counts
(with a dummy softmax). Only allowed operators, but every one of them computes on token ids:
the ``token-lookup`` rule must refuse it."""

import torch
from torch import nn


class CountingSort(nn.Module):
    def __init__(self, alphabet: int, length: int) -> None:
        super().__init__()
        self.alphabet, self.length = alphabet, length

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        letters = tokens[:, : self.length]
        values = torch.arange(self.alphabet).view(1, -1, 1)
        at_most = (letters.unsqueeze(1) <= values).sum(-1)  # [B, alphabet]
        step = tokens.shape[1] - self.length - 1
        letter = (at_most <= step).sum(1, keepdim=True)  # how many letters have <= step smaller ones
        scores = -(letter - torch.arange(self.alphabet + 1).view(1, -1)).abs().float() * 50.0
        return torch.softmax(scores, dim=-1).unsqueeze(1)


def train_model(alphabet: int, length: int, seed: int) -> nn.Module:
    return CountingSort(alphabet, length)
