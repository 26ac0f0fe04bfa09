"""The torch side of the ``sorter`` task: the ``build`` (untrusted) and ``check`` (trusted) phases that
run inside the sandbox, and their helpers. The task, its rules and options are documented in
``evaluators/sorter.py``, which the parent imports without torch; only sandbox workers import this module.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evaluators._graph_rules import inspect_program
from evaluators._phases import (
    CANDIDATE_FILE,
    import_candidate,
    invalid,
    refused,
)
from evaluators._torch_model import (
    export_model,
    generate,
    load_program,
    save_program,
)

CHUNK_SIZE = 4096
def cases(alphabet: int, length: int) -> torch.Tensor:
    """Every string of ``length`` letters over ``alphabet`` letters, ``[alphabet ** length, length]``."""
    return torch.tensor(list(itertools.product(range(alphabet), repeat=length)), dtype=torch.long).view(-1, length)


def prompts(strings: torch.Tensor, alphabet: int) -> torch.Tensor:
    """``x1 .. xn <sep>`` for each row of ``strings``."""
    return torch.cat([strings, torch.full((strings.shape[0], 1), alphabet, dtype=torch.long)], dim=1)


# --- sandboxed phases -------------------------------------------------------------------------------


def build(program: str, alphabet: int, length: int, seed: int, out: str = ".") -> dict[str, Any]:
    """Build phase (untrusted process): candidate file -> trained model -> artefact files in ``out``."""
    torch.set_num_threads(1)
    module = import_candidate(Path(program))
    train_model = getattr(module, "train_model", None)
    if not callable(train_model):
        return invalid("the program defines no train_model(alphabet, length, seed) function")
    model = train_model(alphabet, length, seed)  # positional: parameter names are the candidate's
    if not isinstance(model, nn.Module):
        return invalid(f"train_model() returned {type(model).__name__}, expected a torch.nn.Module")
    example = prompts(cases(alphabet, length)[[1, -2, -1]], alphabet)  # three rows: the batch stays dynamic
    save_program(export_model(model, example, 2 * length), Path(out))
    return {"status": "ok"}


def check(alphabet: int, length: int, directory: str = ".") -> dict[str, Any]:
    """Check phase (trusted process): artefact -> metrics. Never imports candidate code."""
    torch.set_num_threads(1)
    strings = cases(alphabet, length)
    try:
        program = load_program(Path(directory))
        probe = prompts(strings[[1, len(strings) // 2, -2]], alphabet)
        structure, counts = inspect_program(program, probe, 2 * length)
        start = time.perf_counter()
        answers = generate(program, prompts(strings, alphabet), length, forbidden=(alphabet,), chunk_size=CHUNK_SIZE)
        decode_s = time.perf_counter() - start
    except Exception as exc:  # the graph's fault, whatever it is: refuse, with the reason
        return refused(exc)
    correct = int((answers == strings.sort(dim=1).values).all(dim=1).sum())  # expected only after decoding
    metrics = {
        "accuracy": correct / len(strings),
        "correct": correct,
        **structure,
    }
    info = {
        "cases": len(strings),
        "export": "dynamic" if program.graphs[0].seq_len is None else f"{len(program.graphs)} fixed lengths",
        **counts,
        "decode_s": round(decode_s, 4),
    }
    return {"status": "ok", "metrics": metrics, "info": info}
