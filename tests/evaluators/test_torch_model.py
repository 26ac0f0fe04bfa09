"""Torch-artefact helpers: export/save/load round trips, refusal of unsafe artefacts, the AdderBoard
parameter count and the batched greedy decoder (in-process, small models)."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evaluators._torch_model import (
    PROGRAM_FILE,
    TENSORS_FILE,
    ArtefactError,
    count_parameters,
    export_model,
    generate,
    load_program,
    save_program,
)

torch.set_num_threads(1)  # as in every evaluating process: 2 threads on a busy 2-core box crawl
PROMPTS = torch.tensor([[1, 2, 3, 0], [3, 3, 1, 2], [0, 1, 0, 1]])


class Attender(nn.Module):
    """Embedding, one softmax attention, tied head, a bool mask buffer and a scalar constant."""

    def __init__(self, vocab: int = 4, dim: int = 3, max_len: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.q = nn.Linear(dim, dim, bias=False)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight
        self.register_buffer("future", torch.ones(max_len, max_len, dtype=torch.bool).triu(1), persistent=False)
        self.temperature = torch.tensor(2.0)  # a plain tensor attribute: a lifted constant

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        t = tokens.shape[1]
        scores = (self.q(x) @ x.transpose(1, 2)).masked_fill(self.future[:t, :t], -math.inf)
        return self.head(x + torch.softmax(scores / self.temperature, -1) @ x)


def roundtrip(model: nn.Module, tmp_path: Path, prompts: torch.Tensor = PROMPTS, max_len: int = 7):
    exports = export_model(model, prompts, max_len)
    save_program(exports, tmp_path)
    return exports, load_program(tmp_path)


# --- export, save, load -------------------------------------------------------------------------
def test_loaded_program_computes_what_the_model_computes(tmp_path):
    torch.manual_seed(0)
    model = Attender().eval()
    exports, program = roundtrip(model, tmp_path)
    assert [length for length, _ in exports] == [None]  # one dynamic graph
    for batch, length in [(2, 4), (5, 6), (3, 7)]:
        tokens = torch.randint(0, 4, (batch, length))
        with torch.no_grad():
            assert torch.equal(program(tokens), model(tokens))


class LengthSpecific(nn.Module):
    """Loops over the positions in Python, so a dynamic export specialises the sequence length."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(4))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = F.embedding(tokens, self.w.view(4, 1))
        return torch.softmax(torch.cat([x[:, i : i + 1] * (i + 1) for i in range(tokens.shape[1])], 1) * self.w, -1)


def test_a_length_specialising_model_gets_one_graph_per_length(tmp_path):
    model = LengthSpecific()
    exports, program = roundtrip(model, tmp_path, max_len=6)
    assert [length for length, _ in exports] == [4, 5, 6]
    tokens = torch.randint(0, 4, (3, 5))
    assert torch.equal(program(tokens), model(tokens))
    with pytest.raises(ArtefactError, match="no graph for sequence length 7"):
        program(torch.zeros(3, 7, dtype=torch.long))


class FixedBatch(nn.Module):
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.float().view(3, tokens.shape[1], 1).expand(3, tokens.shape[1], 2)


def test_a_model_that_fixes_the_batch_size_is_refused():
    with pytest.raises(ArtefactError, match="batch size"):
        export_model(FixedBatch(), PROMPTS, 5)


class Mutating(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return tokens.float().unsqueeze(-1) * self.calls


def test_a_model_that_updates_its_buffers_is_refused_at_load(tmp_path):
    save_program(export_model(Mutating(), PROMPTS, 7), tmp_path)
    with pytest.raises(ArtefactError, match="allow-list: operator 'aten.add_.Tensor'"):
        load_program(tmp_path)


def edit_program(tmp_path: Path, edit) -> None:
    doc = json.loads((tmp_path / PROGRAM_FILE).read_text())
    edit(doc["graphs"][0])
    (tmp_path / PROGRAM_FILE).write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ("aten.from_file.default", "allow-list"),
        ("aten._print.default", "allow-list"),
        ("aten._reshape_alias.default", "allow-list"),
        ("aten.as_strided.default", "allow-list"),
        ("aten.view.dtype", "allow-list"),
        ("torch.os.system", "allow-list"),
        ("builtins.exec", "allow-list"),
        ("aten.__class__.default", "allow-list"),
        ("aten.no_such_op.default", "allow-list"),
        ("aten.add.no_such_overload", "allow-list"),
    ],
)
def test_unsafe_or_unknown_operators_are_refused(tmp_path, op, message):
    roundtrip(Attender(), tmp_path)

    def edit(graph):
        graph["nodes"][0]["op"] = op

    edit_program(tmp_path, edit)
    with pytest.raises(ArtefactError, match=message):
        load_program(tmp_path)


@pytest.mark.parametrize(
    "edit",
    [
        lambda g: g["nodes"][1].update(args=[{"node": "undefined"}]),
        lambda g: g["nodes"][1].update(args=[{"eval": "1+1"}]),
        lambda g: g["nodes"][1].update(args=[{"dtype": "object"}]),
        lambda g: g["nodes"].append(dict(g["nodes"][0])),  # duplicate name
        lambda g: g["inputs"][0].update(tensor="missing"),
        lambda g: g.update(guards_code=["__import__('os').system('true')"]),
        lambda g: g["inputs"].append({"name": "extra", "kind": "input"}),
        lambda g: g["nodes"].append(_node("aten.arange.default", [3], dtype=9)),  # a raw int names complex64
        lambda g: g["nodes"].append(_node("aten.arange.default", [3], colour=1)),  # not in the schema
        lambda g: g["nodes"].append(_node("aten.add.Tensor", [1, 2, 3, 4])),  # more arguments than parameters
        lambda g: g["nodes"].append(_node("aten.view.default", [{"node": "tokens"}, [1] * 5000])),  # list too long
    ],
)
def test_malformed_graphs_are_refused(tmp_path, edit):
    roundtrip(Attender(), tmp_path)
    edit_program(tmp_path, edit)
    with pytest.raises(ArtefactError):
        load_program(tmp_path)


def _node(op: str, args: list, **kwargs) -> dict:
    return {"name": f"extra_{op.split('.')[1]}", "op": op, "args": args, "kwargs": {"kwargs": kwargs}}


class Payload:
    def __reduce__(self):
        return (print, ("pickle code ran",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("content", [{"0/p_w": Payload()}, {"0/p_w": "text"}, ["not", "a", "dict"]])
def test_tensor_files_with_code_or_non_tensors_are_refused(tmp_path, capsys, content):
    roundtrip(Attender(), tmp_path)
    with open(tmp_path / TENSORS_FILE, "wb") as f:
        if isinstance(content, dict) and any(isinstance(v, Payload) for v in content.values()):
            pickle.dump(content, f)
        else:
            torch.save(content, f)
    with pytest.raises(ArtefactError):
        load_program(tmp_path)
    assert "pickle code ran" not in capsys.readouterr().out


def test_a_graph_that_writes_into_its_weights_is_stopped(tmp_path):
    roundtrip(Attender(), tmp_path)

    def edit(graph):  # make the first nodes an in-place fill of the embedding weights
        weights = next(i["name"] for i in graph["inputs"] if i["kind"] == "parameter")
        every = {"name": "every", "op": "aten.gt.Scalar", "args": [{"node": weights}, -1e9], "kwargs": {"kwargs": {}}}
        poke = {"name": "poke", "op": "aten.masked_fill_.Scalar", "args": [{"node": weights}, {"node": "every"}, 1.0],
                "kwargs": {"kwargs": {}}}
        graph["nodes"][:0] = [every, poke]

    edit_program(tmp_path, edit)
    with pytest.raises(ArtefactError, match="modified"):
        load_program(tmp_path)(PROMPTS)


# --- counting -----------------------------------------------------------------------------------
def test_counting_ties_masks_and_constants(tmp_path):
    _, program = roundtrip(Attender(vocab=4, dim=3, max_len=8), tmp_path)
    count = count_parameters(program)
    # embedding 4x3 (the head is tied to it: once) + q 3x3 = 21 parameters; the 0-d temperature
    # counts 1; the 8x8 bool mask is a mask, not a parameter.
    assert (count.numel, count.unique, count.masks, count.constants) == (21, 22, 64, 65)
    assert count.nonzero == 22


def test_nonzero_counts_only_nonzero_values(tmp_path):
    model = Attender(vocab=4, dim=3)
    with torch.no_grad():
        model.q.weight.zero_()
        model.embed.weight[0].zero_()
    _, program = roundtrip(model, tmp_path)
    assert count_parameters(program).nonzero == 12 - 3 + 1


def test_identical_but_untied_tensors_count_twice(tmp_path):
    class Twins(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Parameter(torch.full((5,), 2.0))
            self.b = nn.Parameter(torch.full((5,), 2.0))

        def forward(self, tokens):
            return torch.softmax(tokens.float().unsqueeze(-1) * self.a * self.b, -1)

    _, program = roundtrip(Twins(), tmp_path)
    assert count_parameters(program).unique == 10


# --- greedy decoding ----------------------------------------------------------------------------
class Counter(nn.Module):
    """Scores put the maximum on (last token + 1) mod 5, runner-up on (last token + 2) mod 5."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        nxt = (tokens + 1) % 5
        return 2.0 * F.one_hot(nxt, 5).float() + F.one_hot((tokens + 2) % 5, 5).float()


def test_generate_feeds_back_greedily():
    prompts = torch.tensor([[0, 0], [3, 4], [2, 2]])
    out = generate(Counter(), prompts, 4)
    assert out.tolist() == [[1, 2, 3, 4], [0, 1, 2, 3], [3, 4, 0, 1]]


def test_forbidden_tokens_are_never_emitted():
    out = generate(Counter(), torch.tensor([[0, 0], [3, 4]]), 4, forbidden=[2, 99])
    assert out.tolist() == [[1, 3, 4, 0], [0, 1, 3, 4]]


def test_chunking_does_not_change_the_result():
    prompts = torch.randint(0, 5, (101, 3))
    whole = generate(Counter(), prompts, 5, chunk_size=1000)
    assert torch.equal(generate(Counter(), prompts, 5, chunk_size=7), whole)
    assert torch.equal(generate(Counter(), prompts[:1], 5, chunk_size=7), whole[:1])
    assert generate(Counter(), prompts[:0], 5).shape == (0, 5)


def test_the_loop_sees_the_whole_sequence_each_step():
    seen = []

    def model(tokens):
        seen.append(tokens.shape[1])
        return torch.zeros(tokens.shape[0], tokens.shape[1], 3)

    generate(model, torch.zeros(4, 2, dtype=torch.long), 3)
    assert seen == [2, 3, 4]


@pytest.mark.parametrize("shape", [(4, 5), (4, 2, 5, 1), (3, 2, 5), (4, 2, 0)])
def test_scores_of_the_wrong_shape_are_an_error(shape):
    with pytest.raises(ArtefactError, match="expected \\[B, T, V\\]"):
        generate(lambda tokens: torch.zeros(shape), torch.zeros(4, 2, dtype=torch.long), 1)
