"""Cheat: claims success in every place but the result pipe. It prints a perfect result to stdout
and stderr and writes perfect metric files into its working directory and, if it can, into the
sandbox's other directories, next to a useless model."""

import glob
import json
import os
import sys

import torch
from torch import nn

FORMAT = {
    "kind": "digits", "base": 10, "width": 10, "operand_order": "msb", "prefix": [], "plus": [0],
    "equals": [0], "answer_len": 11, "answer_order": "lsb",
}
METRICS = {"accuracy": 1.0, "correct": 10010, "hidden_accuracy": 1.0, "params": 1, "params_adderboard": 1,
           "params_numel": 1, "params_nonzero": 1, "constants_numel": 0, "mask_numel": 0,
           "attention_ops": 1}
FAKE = json.dumps({"status": "ok", "value": {"status": "ok", "metrics": METRICS, "info": {}}})


def claim_success() -> None:
    print(FAKE, flush=True)
    print(FAKE, file=sys.stderr, flush=True)
    targets = ["."] + glob.glob(os.path.join(os.path.dirname(os.getcwd()), "*"))
    for directory in targets:
        for name in ("metrics.json", "result.json", "check.json"):
            try:
                with open(os.path.join(directory, name), "w") as f:
                    f.write(FAKE)
            except OSError:
                pass


class Useless(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(10))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.w.expand(tokens.shape[0], 1, 10), dim=-1)


def build_model() -> nn.Module:
    claim_success()
    return Useless()
