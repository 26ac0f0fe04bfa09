"""Benchmark: the adder checker's batched greedy decoding against a one-pair-at-a-time loop.

For each seed the artefact is built in-process (``evaluators._adder_phases.build``) and loaded the way the
checker loads it. Then the 10,010 reference cases are decoded two ways, side by side:

- batched: the checker's own loop (``evaluators._torch_model.generate`` on the loaded artefact,
  all cases in chunks), repeated ``--repeats`` times; the median is reported;
- one pair at a time, like the reference verifier: the eager model called once per generated token
  on a single prompt, ``.argmax().item()`` fed back. This loop takes minutes, so it runs on the full
  set only for the seeds named by ``--full`` (default nanogpt58) and on the first ``--sample``
  cases for the others; its full-set time is extrapolated from the per-case time.

The verdict (right or wrong) of every case the slow loop ran must be the same both ways. Wall and
CPU seconds are printed: the machine is shared, so CPU time is the steadier figure. ``rules s`` is
what the checker adds before decoding: loading and validating the artefact and applying the graph
rules and counts (``evaluators._graph_rules.inspect_program``), median of the repeats.

    python bench/p2_adder_check.py [--repeats 5] [--sample 300] [--full nanogpt58]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402 - after pinning the thread count

from evaluators._graph_rules import inspect_program  # noqa: E402
from evaluators._torch_model import generate, load_program  # noqa: E402
from evaluators.adder import FORMAT_FILE  # noqa: E402
from evaluators._adder_phases import CHUNK_SIZE, EDGE_CASES, _operands, build, parse_format, reference_cases  # noqa: E402

SEEDS = Path(__file__).resolve().parents[1] / "seeds" / "adder"


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def batched_verdicts(program, fmt, cases) -> torch.Tensor:
    generated = generate(program, fmt.encode(*_operands(cases)), fmt.answer_len, chunk_size=CHUNK_SIZE)
    return fmt.decode(generated) == sum(_operands(cases))


def one_at_a_time_verdicts(model, fmt, cases) -> torch.Tensor:
    verdicts = []
    with torch.no_grad():
        for a, b in cases:
            seq = fmt.encode(torch.tensor([a]), torch.tensor([b]))[0].tolist()
            start = len(seq)
            for _ in range(fmt.answer_len):
                seq.append(model(torch.tensor([seq]))[0, -1].argmax().item())
            verdicts.append(int(fmt.decode(torch.tensor([seq[start:]]))[0]) == a + b)
    return torch.tensor(verdicts)


def load_seed(name: str):
    spec = importlib.util.spec_from_file_location(f"seed_{name}", SEEDS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_model()


def bench(name: str, repeats: int, slow_cases: int | None) -> dict:
    cases = reference_cases()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "candidate.py").write_text((SEEDS / f"{name}.py").read_text())
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            assert build("candidate.py")["status"] == "ok"
        finally:
            os.chdir(cwd)
        fmt = parse_format(json.loads((Path(tmp) / FORMAT_FILE).read_text()))
        probe = fmt.encode(*_operands(cases[len(EDGE_CASES):][:4]))

        def rules():
            loaded = load_program(Path(tmp))
            inspect_program(loaded, probe, fmt.prompt_len + fmt.answer_len - 1)
            return loaded

        rule_runs = [timed(rules) for _ in range(repeats)]
        program = rule_runs[0][0]
    runs = [timed(lambda: batched_verdicts(program, fmt, cases)) for _ in range(repeats)]
    fast = runs[0][0]
    assert all(torch.equal(r[0], fast) for r in runs)
    subset = cases if slow_cases is None else cases[:slow_cases]
    slow, slow_wall, slow_cpu = timed(lambda: one_at_a_time_verdicts(load_seed(name), fmt, subset))
    per_case_wall, per_case_cpu = slow_wall / len(subset), slow_cpu / len(subset)
    fast_wall = statistics.median(r[1] for r in runs)
    fast_cpu = statistics.median(r[2] for r in runs)
    return {
        "seed": name,
        "correct": int(fast.sum()),
        "fast_wall": fast_wall,
        "fast_cpu": fast_cpu,
        "rules_wall": statistics.median(r[1] for r in rule_runs),
        "slow_cases": len(subset),
        "slow_ms_per_case": 1e3 * per_case_wall,
        "slow_full_wall": per_case_wall * len(cases),
        "ratio_wall": per_case_wall * len(cases) / fast_wall,
        "ratio_cpu": per_case_cpu * len(cases) / fast_cpu,
        "same_verdicts": int((slow == fast[: len(subset)]).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="batched repeats (median reported)")
    parser.add_argument("--sample", type=int, default=300, help="cases for the one-at-a-time loop on seeds not in --full")
    parser.add_argument("--full", nargs="*", default=["nanogpt58"], help="seeds whose one-at-a-time loop runs all 10,010 cases")
    parser.add_argument("--seeds", nargs="*", default=["nanogpt58", "binary46", "tinyadder"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, chunk {CHUNK_SIZE}, batched median of {args.repeats}")
    print(
        f"{'seed':<10} {'correct':>7} {'rules s':>8} {'batched s':>10} {'cpu s':>6} {'1-by-1 ms/case':>14} {'on cases':>8}"
        f" {'1-by-1 full s':>13} {'x wall':>7} {'x cpu':>6} {'same verdicts':>13}"
    )
    for name in args.seeds:
        r = bench(name, args.repeats, None if name in args.full else args.sample)
        print(
            f"{r['seed']:<10} {r['correct']:>7} {r['rules_wall']:>8.2f} {r['fast_wall']:>10.2f} {r['fast_cpu']:>6.2f} {r['slow_ms_per_case']:>14.2f}"
            f" {r['slow_cases']:>8} {r['slow_full_wall']:>13.1f} {r['ratio_wall']:>7.1f} {r['ratio_cpu']:>6.1f}"
            f" {r['same_verdicts']:>6}/{r['slow_cases']:<6}",
            flush=True,
        )
    print("1-by-1 full s: measured when 'on cases' is 10010, else extrapolated from the per-case time.")


if __name__ == "__main__":
    main()
