"""Cheat: a model that outputs nothing useful, plus monkey-patches of what a checker would use, made
in the build process: Tensor.argmax, torch.export.load, torch.load, and the evaluator's own check,
generation loop and counting functions. None of it may reach the checker, a clean process."""

import torch
from torch import nn

import evaluators._graph_rules as rules
import evaluators._torch_model as tm
import evaluators._adder_phases as adder

FORMAT = {
    "kind": "digits", "base": 10, "width": 10, "operand_order": "msb", "prefix": [], "plus": [0],
    "equals": [0], "answer_len": 11, "answer_order": "lsb",
}
PERFECT = {"accuracy": 1.0, "correct": 10010, "hidden_accuracy": 1.0, "params": 0, "params_adderboard": 0,
           "params_numel": 0, "params_nonzero": 0, "constants_numel": 0, "mask_numel": 0,
           "attention_ops": 1}


def perfect_check(*args, **kwargs):
    return {"status": "ok", "metrics": dict(PERFECT), "info": {}}


torch.Tensor.argmax = lambda self, *a, **k: torch.zeros(self.shape[0], 1, dtype=torch.long)
torch.export.load = lambda *a, **k: None
adder.check = perfect_check
tm.generate = lambda model, prompts, steps, **k: torch.zeros(prompts.shape[0], steps, dtype=torch.long)
tm.count_parameters = lambda program: tm.ParameterCount(0, 0, 0, 0, 0)
rules.strict_count = lambda program: rules.StrictCount(0, 0, 0, 0)
rules.attention_ops = lambda graph, flow, traces: 1


class Zero(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(10))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.w.expand(tokens.shape[0], 1, 10), dim=-1)


def build_model() -> nn.Module:
    return Zero()
