"""The ``adder`` task: the smallest transformer that adds two 10-digit numbers (AdderBoard rules).

A candidate is a Python module defining two names:

``FORMAT``
    A dict of plain data (no code) saying how the evaluator writes a prompt and reads the answer.
    Every key is required and checked; an unknown key, a wrong type or a token id outside
    ``[0, 1024)`` makes the candidate ``invalid``. Two kinds:

    - ``"digits"``: ``base`` (must be 10), ``width`` (10-16 digits per operand, zero-padded),
      ``operand_order`` (``"msb"`` or ``"lsb"``: digit order of a and b), ``prefix`` (token ids
      before a, e.g. a BOS), ``plus`` and ``equals`` (separator token ids; lists, possibly empty),
      ``answer_len`` (11-17 digits generated), ``answer_order`` (``"msb"`` or ``"lsb"``). Digit d is
      token d. Prompt: prefix, a, plus, b, equals.
    - ``"bit-pairs"``: ``width`` (35-60 bits, least significant first, each prompt token
      ``2*a_i + b_i``), then ``suffix`` (token ids, e.g. a start state), ``answer_len`` (35-62),
      ``answer_order``. Binary pair tokens are not AdderBoard's decimal digits, so such a candidate
      is recorded with ``info["adderboard_eligible"] = False``.

    An answer digit is the generated token mod the base (10 for digits, 2 for bit-pairs), so a model
    may emit richer tokens (e.g. sum bit + 2 * carry) and still be read.

``build_model() -> torch.nn.Module``
    The model, whose ``forward(tokens: LongTensor[B, T])`` returns scores ``[B, T', V]``; the
    evaluator uses ``scores[:, -1, :]``. Weights may be set by hand or solved inside ``build_model``.

The generation loop is the evaluator's, not the candidate's: greedy, one token at a time, fed back,
batched over all cases, ``answer_len`` steps.

Evaluation runs in two sandboxed processes (see ``evaluators/_torch_model.py`` for the artefact):

1. ``build`` (untrusted): imports the candidate, validates ``FORMAT``, calls ``build_model()``,
   exports the model with ``torch.export`` and writes ``program.json``, ``tensors.pt`` and
   ``format.json``. Its return value is used for nothing but an ``invalid`` reason.
2. ``check`` (trusted, a fresh process that never imported the candidate): loads the artefact,
   re-validates the format, applies the graph rules below, decodes the 10,010 reference cases
   (10 edge cases, then 10,000 pairs from ``random.Random(2025)``) and ``hidden_cases`` hidden
   pairs, and counts. The hidden cases come from ``sha256(hidden_seed, sha256 of the artefact)``:
   even a candidate that learns the run's ``hidden_seed`` cannot know its cases before its
   artefact is fixed. ``hidden_seed`` None draws a fresh one from ``os.urandom``; both seeds are in
   ``info``. A ``hard_share`` of the hidden cases (default 25 %) are structured: long carry chains,
   runs of 9s and 0s, operands at the extremes, sums that flip the leading digit (see
   :func:`hard_cases`); random pairs almost never carry far. Expected sums are computed only after
   all decoding, so the model cannot find them in memory.

Rules (checked on the graph in the trusted process; a broken rule makes the candidate ``invalid``
with ``"the checker refused the graph: <rule>: <one-line reason>"``; details in
``evaluators/_graph_rules.py``):

- ``allow-list``: only operators on the checker's allow-list (``evaluators/_ops.py``): no raw
  sizes/strides (``as_strided``, ``_reshape_alias``), no byte reinterpretation (``view(dtype)``),
  no rounding (``floor``, ``%``, ``//``), no sorting, files or uninitialised memory.
- ``storage``: every stored tensor covers its storage exactly and one storage has one dtype.
- ``token-lookup``: token ids enter only through embedding-style lookups into a table built from
  stored tensors (or single counted literals); no arithmetic or comparison on token ids.
- ``narrowing-cast``: no cast that rounds values (float -> int, float64 -> float32).
- ``folded-constant``: the graph must run on the probe with its tokens shuffled and its stored
  tensors perturbed (an honest graph runs on any weights of its shapes); what it builds from
  structure is counted (see Counting).
- A checker that crashes, runs out of memory or time is the artefact's doing: ``invalid`` too.

Counting. ``params`` is the strict count the search minimises: the bytes of every parameter,
buffer and lifted constant, each storage once, in float32 units (float64 costs 2 per element, a
bool mask 1 per 4 elements), plus every scalar literal that enters a value computation (a literal
in ``forward`` is a number the model depends on; so is each integer of a ratio), plus every number
the graph builds from structure (``folded-constant``). Shape, dim, index and flag arguments are
structure: ``info["structure_literals"]`` lists how many. A literal equal to the operator's default
or to the graph's sequence length is free. A size that makes new elements (``ones``/``zeros``/
``full``/``eye`` sizes, ``expand``, ``repeat`` and pad sizes, and literals in size arithmetic feeding
them) is a value: ``w.expand(9045).sum()`` is 9045 w, so the size counts, unless it is forced (the
sequence length, a dim of a stored non-empty tensor, or -1/0/1).

``folded-constant`` (``evaluators/_folding.py``): the checker constant-folds the graph. A node whose
value stays the same when the probe's tokens are shuffled and every stored tensor is perturbed
depends on neither, whatever spells it: ``ones(1) + ones(1)``, ``w / w``, ``cat([one] * k)``,
``eye(1)``, ``x.shape[1]`` or ``arange(T)[1]`` used as a value, ``ones(n).sum()``. Where such a constant
enters the model (read as a value or an index by a node that is not constant) it costs the fewer
of its elements and its generator (the constant subgraph written out: 1 per node, 1 per int or
float literal, 1 per entry of a tensor list; reading the input's shape is free; a generator shared
by several constants counts once). Its literals are not counted again. Rebuilding weights from
structure therefore costs one unit per number, or the length of the subgraph that writes them if
that is shorter (``arange(10)`` costs 2: a regular table is genuinely simple). Positional codes and masks are not
exempt: a sinusoidal code or a causal mask from ``arange`` costs its generator, a dozen units, and
an exempt mask or index tensor would smuggle weights as bits (``table[bits]``). The seeds pay for
theirs: nanogpt58 25 (position code 19, ``arange(10)`` and its square 4, two ``zeros_like`` 2), so
its strict count is 83, not the 64 counted before folding; binary46 1 (1273), tinyadder 35 (ALiBi
bias and two causal masks: 2791). ``info["folded_units"]`` and ``info["folded"]`` (one
``"node: cost (elements|generator)"`` per constant) say what was counted.

``params_adderboard`` is the AdderBoard convention (elements of every stored tensor, tied ones once,
bool masks excluded, literals free), reported for comparison with the leaderboard and never
optimised; ``params_numel``, ``params_nonzero``, ``constants_numel`` and ``mask_numel`` break it down.

``attention_ops`` counts only real attention: a normalisation over the key axis of scores that
depend on the tokens, with a query and a key axis of sequence length, contracted over the key axis
with token-dependent values, reaching the output, and putting weight off the diagonal on a probe.
A softmax on the logits, on position-only scores or on self-only scores is not attention. And
the mixing must matter: the probe is run again with each query reading only its own position (the
weights replaced by the identity, a fused attention's output by its values); if the scores move by
no more than 0.1 % of their largest magnitude (an attention scaled by a zero), it does not count.

Not closed: arithmetic packing. Several small numbers can share one stored float and be unpacked
by float rounding (``(w + c) - c`` with ``|c|`` near ``2**23`` rounds ``w`` to an integer). No cheap
rule refuses it without refusing honest models: a steep ReLU/sigmoid step, the way these models
(and the seeds: amplitude 100, thresholds -9045) do digit arithmetic, rounds just as well, so
banning one spelling moves the trick to another. What bounds it is the count: every unpacking
literal counts per occurrence, so packing pays only when one set of unpacking constants is shared
by a whole vector; such a candidate is recorded with its honest strict count of stored units and
literals, and the gain is bounded by the 24 mantissa bits of a float32 (at most 7 decimal
digits per stored float, each unpacked with counted literals).

Not closed either: numbers written in the wiring of values that are not constant, e.g. a stored
``p = 1.0`` followed by ``p + p + p``, or ``cat([p, zero, p, ...])`` read as bits. That is arithmetic
on counted numbers, and telling it from honest architecture (``x + x``, a query built from 3 angles)
would mean counting the architecture itself. Each such number costs at least one graph node (at
most 20,000 nodes, 4,096 list entries) and one counted number to start from.

Metrics: ``accuracy``/``correct`` (reference set), ``hidden_accuracy`` (all hidden cases),
``hard_accuracy`` (the structured ones), the counts above, ``attention_ops``, ``build_s``,
``check_s`` and ``peak_rss_mib`` (build process peak RSS above the zygote).

Objective: ``params``, minimised. Constraints: ``accuracy``, ``hidden_accuracy`` and
``hard_accuracy`` >= 0.99, ``attention_ops`` >= 1. Options: ``hidden_seed`` (int or None),
``hidden_cases`` (2000), ``hard_share`` (0.25), ``build_timeout_s`` and ``check_timeout_s``
(120 s each).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from evaluators._phases import ARTEFACT_FILES, CANDIDATE_FILE, build_and_check
from evolve.evaluation import EvalResult
from evolve.plugins import Params as PluginParams
from evolve.sandbox import Job, Sandbox
from evolve.tasks import Constraint, Objective, Task

#: The artefact file holding the candidate's validated FORMAT (written by the build phase).
FORMAT_FILE = "format.json"

# --- the task ---------------------------------------------------------------------------------------


class AdderTask(Task):
    name = "adder"
    description = "Smallest transformer adding two 10-digit numbers (AdderBoard rules): >= 99% on the reference and a hidden set."
    objectives = (Objective("params", "min", "params"),)
    constraints = (
        Constraint("accuracy", ">=", 0.99),
        Constraint("hidden_accuracy", ">=", 0.99),
        Constraint("hard_accuracy", ">=", 0.99),
        Constraint("attention_ops", ">=", 1),
    )
    isolation = "forkserver"
    preload = ("torch", "evaluators._adder_phases")
    warmup = "evaluators._torch_model:warmup"

    class Params(PluginParams):
        hidden_seed: int | None = None  # None: the run's hidden seed
        hidden_cases: int = Field(2000, ge=1, le=1_000_000)  # size of the hidden random set
        hard_share: float = Field(0.25, ge=0, le=1)  # share of carry-heavy cases in the hidden set
        build_timeout_s: float = Field(120.0, gt=0)
        check_timeout_s: float = Field(120.0, gt=0)

    def evaluate(self, program: Path, sandbox: Sandbox) -> EvalResult:
        o = self.options
        outcome = build_and_check(
            sandbox,
            Job.call("evaluators._adder_phases:build", files={CANDIDATE_FILE: str(program)}, program=CANDIDATE_FILE),
            lambda files: Job.call("evaluators._adder_phases:check", files=files,
                                   hidden_seed=o["hidden_seed"], hidden_cases=o["hidden_cases"],
                                   hard_share=o["hard_share"]),
            (*ARTEFACT_FILES, FORMAT_FILE),
            build_timeout_s=o["build_timeout_s"], check_timeout_s=o["check_timeout_s"],
        )
        if isinstance(outcome, EvalResult):
            return outcome
        metrics = {
            **outcome.value["metrics"],
            "build_s": round(outcome.built.wall_s, 4),
            "check_s": round(outcome.checked.wall_s, 4),
            "peak_rss_mib": round(outcome.built.peak_rss_delta_mib, 3),
        }
        return EvalResult(status="ok", metrics=metrics, info=outcome.value["info"], phases=outcome.phases)


TASK = AdderTask
