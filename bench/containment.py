"""Containment table: every hostile program of the catalogue, in both isolation modes.

For each attack: its class, whether it was contained and how it ended, the layer that stops it, and
the time to contain (the job's wall time, from its start to the supervisor's report). Layers this
host lacks are printed first; a case that needs one is reported as skipped.

    python bench/containment.py [--mode fresh|forkserver|both]
"""

from __future__ import annotations

import argparse

from evolve.sandbox import doctor, layers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("fresh", "forkserver", "both"), default="both")
    args = parser.parse_args()
    for name, ok, detail, _ in doctor.layer_rows():
        print(f"layer {name:<14} {'on ' if ok else 'OFF'}  {detail}")
    modes = ("fresh", "forkserver") if args.mode == "both" else (args.mode,)
    results = {mode: doctor.run_checks(mode) for mode in modes}
    print()
    print(f"| class | attack | stopped by | {' | '.join(f'{m}: outcome | {m}: ms' for m in modes)} |")
    print("|---|---|---|" + "---|---|" * len(modes))
    failed = 0
    for i, case in enumerate(doctor.CASES):
        cells = []
        for mode in modes:
            check = results[mode][i]
            if check.verdict is None:
                cells += [f"skipped (no {', '.join(check.skipped_for)})", ""]
                continue
            failed += not check.verdict.contained
            mark = "contained" if check.verdict.contained else "NOT CONTAINED"
            cells += [f"{mark}: {check.verdict.outcome}", f"{check.verdict.seconds * 1000:.0f}"]
        print(f"| {case.cls} | {case.attack} | {case.layer} | {' | '.join(cells)} |")
    total = len(doctor.CASES) * len(modes)
    print(f"\n{total - failed}/{total} contained; active layers: {sorted(k for k, v in layers.active().items() if v)}")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
