"""Cheat: the build process is the candidate's, so it replaces the evaluator's save function at
import and writes its own artefact: a graph that re-views a 1-element parameter with
``aten._reshape_alias`` (raw sizes and strides, no bounds check) to read 64 KiB past it, and
returns scores from whatever it finds. The checker treats the artefact as hostile: the operator is
not on the allow-list, so nothing runs."""

import json
from pathlib import Path

import torch
from torch import nn

import evaluators._adder_phases as adder

FORMAT = {
    "kind": "digits", "base": 10, "width": 10, "operand_order": "msb", "prefix": [], "plus": [0],
    "equals": [0], "answer_len": 11, "answer_order": "lsb",
}


def own_artefact(exports, directory: Path) -> None:
    nodes = [
        {"name": "wide", "op": "aten._reshape_alias.default", "args": [{"node": "w"}, [16384], [1]], "kwargs": {"kwargs": {}}},
        {"name": "rows", "op": "aten.view.default", "args": [{"node": "wide"}, [1, 1, 16384]], "kwargs": {"kwargs": {}}},
    ]
    graph = {"seq_len": None, "inputs": [{"name": "w", "kind": "parameter", "tensor": "0/w"}, {"name": "tokens", "kind": "input"}],
             "nodes": nodes, "output": {"node": "rows"}}
    (directory / "program.json").write_text(json.dumps({"format": "evolve-torch-graph/1", "graphs": [graph]}))
    torch.save({"0/w": torch.zeros(1)}, directory / "tensors.pt")


adder.save_program = own_artefact


class Anything(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(10))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.w.expand(tokens.shape[0], 1, 10)


def build_model() -> nn.Module:
    return Anything()
