"""The torch side of the ``adder`` task: the ``build`` (untrusted) and ``check`` (trusted) phases that
run inside the sandbox, and their helpers. The task, its rules and options are documented in
``evaluators/adder.py``, which the parent imports without torch; only sandbox workers import this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evaluators._graph_rules import inspect_program
from evaluators._phases import (
    ARTEFACT_FILES,
    CANDIDATE_FILE,
    import_candidate,
    invalid,
    refused,
)
from evaluators.adder import FORMAT_FILE
from evaluators._torch_model import (
    export_model,
    generate,
    load_program,
    save_program,
)

MAX_OPERAND = 9_999_999_999
EDGE_CASES = (
    (0, 0), (0, 1), (9_999_999_999, 0), (9_999_999_999, 1), (9_999_999_999, 9_999_999_999),
    (5_000_000_000, 5_000_000_000), (1_111_111_111, 8_888_888_889), (1_234_567_890, 9_876_543_210),
    (9_999_999_999, 9_999_999_999), (1, 9_999_999_999),
)
REFERENCE_SEED = 2025
REFERENCE_RANDOM = 10_000
MAX_TOKEN = 1024
CHUNK_SIZE = 1024


# --- prompt formats ---------------------------------------------------------------------------------


class FormatError(ValueError):
    """``FORMAT`` is malformed; the message is one line naming the key."""


def _int(lo: int, hi: int):
    def check(key: str, v: Any) -> int:
        if type(v) is not int or not lo <= v <= hi:
            raise FormatError(f"FORMAT[{key!r}] must be an int in [{lo}, {hi}], got {v!r:.40}")
        return v
    return check


def _choice(*options: str):
    def check(key: str, v: Any) -> str:
        if v not in options:
            raise FormatError(f"FORMAT[{key!r}] must be one of {', '.join(map(repr, options))}, got {v!r:.40}")
        return v
    return check


def _tokens(most: int):
    def check(key: str, v: Any) -> tuple[int, ...]:
        if not isinstance(v, (list, tuple)) or len(v) > most:
            raise FormatError(f"FORMAT[{key!r}] must be a list of at most {most} token ids, got {v!r:.40}")
        for t in v:
            if type(t) is not int or not 0 <= t < MAX_TOKEN:
                raise FormatError(f"FORMAT[{key!r}]: token id {t!r:.20} is not an int in [0, {MAX_TOKEN})")
        return tuple(v)
    return check


_ORDER = _choice("msb", "lsb")
_SCHEMAS = {
    "digits": {
        "base": _int(10, 10), "width": _int(10, 16), "operand_order": _ORDER, "prefix": _tokens(8),
        "plus": _tokens(4), "equals": _tokens(4), "answer_len": _int(11, 17), "answer_order": _ORDER,
    },
    "bit-pairs": {"width": _int(35, 60), "suffix": _tokens(8), "answer_len": _int(35, 62), "answer_order": _ORDER},
}


@dataclass(frozen=True)
class Format:
    """A validated ``FORMAT``: how to encode a batch of (a, b) and decode the generated tokens."""

    kind: str
    width: int
    answer_len: int
    answer_order: str
    base: int = 2
    operand_order: str = "lsb"
    prefix: tuple[int, ...] = ()
    plus: tuple[int, ...] = ()
    equals: tuple[int, ...] = ()
    suffix: tuple[int, ...] = ()

    @property
    def prompt_len(self) -> int:
        if self.kind == "bit-pairs":
            return self.width + len(self.suffix)
        return len(self.prefix) + 2 * self.width + len(self.plus) + len(self.equals)

    def encode(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``[B]`` int64 operands -> ``[B, prompt_len]`` token ids."""
        def const(tokens: tuple[int, ...]) -> torch.Tensor:
            return torch.tensor(tokens, dtype=torch.long).expand(a.shape[0], len(tokens))

        if self.kind == "bit-pairs":
            pairs = 2 * _digits(a, 2, self.width, "lsb") + _digits(b, 2, self.width, "lsb")
            return torch.cat([pairs, const(self.suffix)], 1)
        da, db = (_digits(x, self.base, self.width, self.operand_order) for x in (a, b))
        return torch.cat([const(self.prefix), da, const(self.plus), db, const(self.equals)], 1)

    def decode(self, generated: torch.Tensor) -> torch.Tensor:
        """``[B, answer_len]`` generated tokens -> ``[B]`` int64 values (digit = token mod base)."""
        digits = generated % self.base
        if self.answer_order == "msb":
            digits = digits.flip(1)
        weights = self.base ** torch.arange(self.answer_len, dtype=torch.long)
        return (digits * weights).sum(1)

    def to_json(self) -> dict[str, Any]:
        keys = ("kind", *_SCHEMAS[self.kind])
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if k in keys}


def parse_format(value: Any) -> Format:
    """Validate a candidate's ``FORMAT``; raises :class:`FormatError` with a one-line reason."""
    if not isinstance(value, dict):
        raise FormatError(f"FORMAT must be a dict, got {type(value).__name__}")
    kind = value.get("kind")
    if kind not in _SCHEMAS:
        raise FormatError(f"FORMAT['kind'] must be one of {', '.join(map(repr, _SCHEMAS))}, got {kind!r:.40}")
    schema = _SCHEMAS[kind]
    unknown = sorted(set(value) - set(schema) - {"kind"}, key=str)
    if unknown:
        raise FormatError(f"FORMAT has unknown key {unknown[0]!r:.40} for kind {kind!r} (known: {', '.join(schema)})")
    missing = [k for k in schema if k not in value]
    if missing:
        raise FormatError(f"FORMAT is missing {missing[0]!r} (kind {kind!r} needs: {', '.join(schema)})")
    return Format(kind=kind, **{k: check(k, value[k]) for k, check in schema.items()})


def _digits(x: torch.Tensor, base: int, width: int, order: str) -> torch.Tensor:
    place = base ** torch.arange(width, dtype=torch.long)  # least significant first
    digits = (x.unsqueeze(1) // place) % base
    return digits.flip(1) if order == "msb" else digits


# --- cases --------------------------------------------------------------------------------------------


def random_cases(seed: int, n: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    return [(rng.randint(0, MAX_OPERAND), rng.randint(0, MAX_OPERAND)) for _ in range(n)]


def hard_cases(seed: int, n: int) -> list[tuple[int, int]]:
    """``n`` structured pairs that random pairs almost never are, four kinds in turn.

    Long carry chains (digit pairs summing to 9 above a pair that carries), operands made of runs
    of 9s and 0s, operands at the extremes (0, 1, 10^k, 10^k - 1, the maximum), and sums just
    below or just past 10^10, where the leading digit flips.
    """
    rng = random.Random(seed)
    kinds = (_carry_chain, _nines_and_zeros, _extreme, _leading_flip)
    return [kinds[i % len(kinds)](rng) for i in range(n)]


def _from_digits(digits: list[int]) -> int:
    return sum(d * 10**i for i, d in enumerate(digits))  # least significant first


def _carry_chain(rng: random.Random) -> tuple[int, int]:
    start = rng.randint(0, 6)
    end = rng.randint(start + 3, 10)
    a = [rng.randint(0, 9) for _ in range(10)]
    b = [rng.randint(0, 9) for _ in range(10)]
    a[start] = rng.randint(1, 9)
    b[start] = rng.randint(10 - a[start], 9)  # this pair carries...
    for i in range(start + 1, end):
        a[i] = rng.randint(0, 9)
        b[i] = 9 - a[i]  # ...and the carry runs through every pair summing to 9
    return _from_digits(a), _from_digits(b)


def _nines_and_zeros(rng: random.Random) -> tuple[int, int]:
    def runs() -> int:
        digits: list[int] = []
        while len(digits) < 10:
            digits += [rng.choice((0, 9))] * rng.randint(1, 10)
        return _from_digits(digits[:10])

    other = rng.choice((runs(), rng.randint(0, MAX_OPERAND), rng.randint(1, 9) * 10 ** rng.randint(0, 9)))
    return (runs(), other) if rng.random() < 0.5 else (other, runs())


def _extreme(rng: random.Random) -> tuple[int, int]:
    k = rng.randint(0, 10)
    values = (0, 1, MAX_OPERAND, MAX_OPERAND - 1, min(10**k, MAX_OPERAND), 10**k - 1, 5 * 10**9)
    other = rng.choice((rng.choice(values), rng.randint(0, MAX_OPERAND)))
    return (rng.choice(values), other) if rng.random() < 0.5 else (other, rng.choice(values))


def _leading_flip(rng: random.Random) -> tuple[int, int]:
    a = rng.randint(1, MAX_OPERAND)
    b = min(MAX_OPERAND, max(0, 10**10 - a + rng.randint(-3, 3)))
    return (a, b) if rng.random() < 0.5 else (b, a)


def reference_cases() -> list[tuple[int, int]]:
    """The AdderBoard test set: 10 edge cases, then 10,000 pairs from ``random.Random(2025)``."""
    return list(EDGE_CASES) + random_cases(REFERENCE_SEED, REFERENCE_RANDOM)


def _operands(cases: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.tensor(cases, dtype=torch.long).view(-1, 2)
    return t[:, 0], t[:, 1]


def _case_seed(hidden_seed: int, digest: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{hidden_seed}:{digest}".encode()).digest()[:8], "big") >> 1


# --- sandboxed phases -------------------------------------------------------------------------------


def build(program: str, out: str = ".") -> dict[str, Any]:
    """Build phase (untrusted process): candidate file -> artefact files in ``out``."""
    torch.set_num_threads(1)
    module = import_candidate(Path(program))
    if not hasattr(module, "FORMAT"):
        return invalid("the program defines no FORMAT dict")
    try:
        fmt = parse_format(module.FORMAT)
    except FormatError as exc:
        return invalid(str(exc))
    build_model = getattr(module, "build_model", None)
    if not callable(build_model):
        return invalid("the program defines no build_model() function")
    model = build_model()
    if not isinstance(model, nn.Module):
        return invalid(f"build_model() returned {type(model).__name__}, expected a torch.nn.Module")
    prompts = fmt.encode(*_operands(reference_cases()[len(EDGE_CASES):][:3]))
    exports = export_model(model, prompts, fmt.prompt_len + fmt.answer_len - 1)
    save_program(exports, Path(out))
    (Path(out) / FORMAT_FILE).write_text(json.dumps(fmt.to_json()), encoding="utf-8")
    return {"status": "ok"}


def check(hidden_seed: int | None = None, hidden_cases: int = 2000, hard_share: float = 0.25,
          directory: str = ".") -> dict[str, Any]:
    """Check phase (trusted process): artefact -> metrics. Never imports candidate code.

    Any failure past the format (a broken rule, a malformed graph, an error while the graph runs)
    refuses the candidate: the artefact is the candidate's, so is the fault.
    """
    torch.set_num_threads(1)
    root = Path(directory)
    digest = _digest(root)
    try:
        fmt = parse_format(json.loads((root / FORMAT_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:  # FormatError and JSON errors are ValueErrors
        return {"status": "invalid", "error": f"{FORMAT_FILE}: {exc}"[:300]}
    seed = hidden_seed if hidden_seed is not None else int.from_bytes(os.urandom(8), "big") >> 1
    case_seed = _case_seed(seed, digest)
    n_hard = round(hidden_cases * hard_share)
    reference = reference_cases()
    hidden = random_cases(case_seed, hidden_cases - n_hard) + hard_cases(case_seed ^ 1, n_hard)
    try:
        program = load_program(root)
        probe = fmt.encode(*_operands(reference[len(EDGE_CASES):][:4]))
        structure, counts = inspect_program(program, probe, fmt.prompt_len + fmt.answer_len - 1)
        start = time.perf_counter()
        answers = [_answers(program, fmt, cases) for cases in (reference, hidden)]
        decode_s = time.perf_counter() - start
    except Exception as exc:  # the graph's fault, whatever it is: refuse, with the reason
        return refused(exc)
    # The expected sums exist only from here on, after the model has run.
    ref_right, hidden_right = (got == sum(_operands(cases)) for got, cases in zip(answers, (reference, hidden)))
    hard_right = hidden_right[hidden_cases - n_hard:]
    metrics = {
        "accuracy": int(ref_right.sum()) / len(reference),
        "correct": int(ref_right.sum()),
        "hidden_accuracy": int(hidden_right.sum()) / hidden_cases,
        "hard_accuracy": int(hard_right.sum()) / n_hard if n_hard else 1.0,
        **structure,
    }
    info = {
        "hidden_seed": seed,
        "hidden_case_seed": case_seed,
        "hidden_cases": hidden_cases,
        "hard_cases": n_hard,
        "artefact_sha256": digest,
        "export": "dynamic" if program.graphs[0].seq_len is None else f"{len(program.graphs)} fixed lengths",
        "format": fmt.to_json(),
        **counts,
        "decode_s": round(decode_s, 4),
        **_eligibility(fmt, metrics),
    }
    return {"status": "ok", "metrics": metrics, "info": info}


def _answers(program: Any, fmt: Format, cases: list[tuple[int, int]]) -> torch.Tensor:
    """The model's sums for ``cases``, through the evaluator's own greedy loop."""
    prompts = fmt.encode(*_operands(cases))
    return fmt.decode(generate(program, prompts, fmt.answer_len, chunk_size=CHUNK_SIZE))


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for name in (*ARTEFACT_FILES, FORMAT_FILE):
        h.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return h.hexdigest()


def _eligibility(fmt: Format, metrics: dict[str, Any]) -> dict[str, Any]:
    reasons = []
    if fmt.kind == "bit-pairs":
        reasons.append("binary bit-pair tokens instead of decimal digits")
    if metrics["mask_numel"]:
        reasons.append(f"{metrics['mask_numel']} boolean constant elements (a task-specific attention mask?)")
    if not metrics["attention_ops"]:
        reasons.append("no self-attention found in the graph")
    return {"adderboard_eligible": not reasons, "ineligible_because": reasons}
