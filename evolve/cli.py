"""The ``evolve`` command line: run, eval, show, compare, report, tasks, archive, doctor.

Exit codes: 0 success; 1 the work ran but failed (e.g. the evaluated candidate crashed);
2 bad input (one line on stderr, nothing written); 3 the LLM endpoint failed the run (key, model,
endpoint lost or failing, replay miss; resumable once fixed); 130 interrupted by Ctrl-C (resumable).
"""

from __future__ import annotations

import argparse
import atexit
import difflib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn, Sequence

from rich.table import Table
from rich.text import Text

from evolve import __version__
from evolve.errors import UserError
from evolve.report.console import make_console

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LLM, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(UserError):
    """Bad command-line input; printed as one line, exit 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evolve", description="Improve small GPT programs by evolution.")
    p.add_argument("--version", action="version", version=f"evolve {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run an evolution from a YAML config")
    r.add_argument("config", type=Path)
    r.add_argument("--resume", action="store_true", help="continue the run if it exists")
    _add_overrides(r, "budget.max_evaluations")
    r.add_argument("--seed", type=int, metavar="N", help="same as --set run.seed=N")
    r.add_argument("--name", metavar="NAME", help="same as --set run.name=NAME")
    r.add_argument("-v", "--verbose", action="store_true", help="print one line per evaluation")
    r.add_argument("--force", action="store_true",
                   help="with --resume: continue even if the config changes the experiment (not only budgets)")
    r.set_defaults(func=cmd_run)

    rs = sub.add_parser("resume", help="resume an existing run from the config saved in its archive")
    rs.add_argument("run", help="run name (under runs/) or run directory")
    _add_overrides(rs, "budget.max_evaluations", what="the saved config")
    rs.add_argument("-v", "--verbose", action="store_true", help="print one line per evaluation")
    rs.add_argument("--force", action="store_true",
                    help="continue even if --set changes the experiment (not only budgets)")
    rs.set_defaults(func=cmd_resume)

    e = sub.add_parser("eval", help="evaluate one program for a task")
    e.add_argument("task")
    e.add_argument("program", type=Path)
    e.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="task option (value parsed as YAML), repeatable")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.set_defaults(func=cmd_eval)

    t = sub.add_parser("tasks", help="list the available tasks")
    t.set_defaults(func=cmd_tasks)

    n = sub.add_parser("new-task", help="write a working task skeleton (task file, seed, config, test)")
    n.add_argument("name")
    n.add_argument("-o", "--output", type=Path, default=None, help="folder to write (default: ./NAME)")
    n.set_defaults(func=cmd_new_task)

    s = sub.add_parser("show", help="show a run's Pareto front, or one candidate")
    s.add_argument("run", help="run name (under runs/) or run directory")
    s.add_argument("id", nargs="?", help="candidate id or commit sha prefix")
    s.add_argument("--diff", action="store_true", help="diff against the parent")
    s.add_argument("--diff-seed", action="store_true", help="diff against the root seed")
    s.add_argument("--all", action="store_true", help="list all candidates, not just the front")
    s.add_argument("--sort", help="metric to sort by (with --all)")
    s.add_argument("--limit", type=int, help="at most this many rows")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_show)

    c = sub.add_parser("compare", help="compare strategies at an equal budget over seeds (COMPARE.yaml), "
                                       "or compare existing runs")
    c.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a COMPARE.yaml to run (resumable), a comparison directory, or two or more runs")
    c.add_argument("-o", "--out", type=Path,
                   help="results directory when comparing runs (default runs/comparison)")
    c.add_argument("--budget", metavar="KIND",
                   help="budget axis for existing runs: evaluations, tokens, cost_usd or wall_s "
                        "(default: the budget they share)")
    c.add_argument("--target", action="append", metavar="'METRIC OP VALUE'",
                   help="measure the budget spent until a feasible candidate meets this, repeatable")
    c.add_argument("--reference", action="append", metavar="OBJECTIVE=VALUE",
                   help="hypervolume reference point (default: derived from the runs), repeatable")
    c.add_argument("--report", action="store_true", help="also write report.html in the results directory")
    _add_overrides(c, "budget.evaluations", what="the COMPARE.yaml", example="repeats=2")
    c.set_defaults(func=cmd_compare)

    rp = sub.add_parser("report", help="write a self-contained HTML report of a run or a comparison")
    rp.add_argument("path", help="run name (under runs/), run directory, or comparison directory")
    rp.add_argument("-o", "--output", type=Path, help="the HTML file to write (default: PATH/report.html)")
    rp.add_argument("--max-programs", type=int, default=500, metavar="N",
                    help="include the source of at most N programs (the front always; default 500)")
    rp.set_defaults(func=cmd_report)

    d = sub.add_parser("doctor", help="show the sandbox's containment layers here and run the hostile-program checks")
    d.add_argument("--mode", choices=("fresh", "forkserver"), default="fresh", help="isolation mode to check")
    d.add_argument("--layers-only", action="store_true", help="only list the layers, run no checks")
    d.set_defaults(func=cmd_doctor)

    x = sub.add_parser("export", help="write the best program (by an objective), one candidate, or the "
                                      "whole front as files")
    x.add_argument("run", help="run name (under runs/) or run directory")
    x.add_argument("id", nargs="?", help="candidate id or commit sha prefix (default: the best)")
    x.add_argument("--by", metavar="OBJECTIVE", help="the objective that picks the best (default: the first)")
    x.add_argument("--front", action="store_true", help="every front member, as files in the -o folder")
    x.add_argument("-o", "--output", type=Path,
                   help="file (or folder) to write; default: the program on stdout")
    x.set_defaults(func=cmd_export)

    a = sub.add_parser("archive", help="archive maintenance")
    asub = a.add_subparsers(dest="archive_command", required=True, metavar="ACTION")
    ri = asub.add_parser("reindex", help="rebuild the sqlite index from git")
    ri.add_argument("run", help="run name (under runs/) or run directory")
    ri.set_defaults(func=cmd_reindex)
    return p


def _add_overrides(parser: argparse.ArgumentParser, evaluations_key: str, what: str = "the config",
                   example: str = "strategy.params.population=8") -> None:
    """``--set KEY.PATH=VALUE`` (repeatable) and ``--max-evaluations N``, one meaning on every verb."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", dest="overrides",
                        help=f"override a value of {what} (parsed as YAML, validated like the file), "
                             f"repeatable; e.g. --set {example}")
    parser.add_argument("--max-evaluations", type=int, metavar="N", help=f"same as --set {evaluations_key}=N")


def _overrides(args: argparse.Namespace, shortcuts: dict[str, Any]) -> list[str]:
    """``--set`` values, then the shortcut flags given (``--max-evaluations``...) as ``--set``s."""
    return list(args.overrides) + [f"{key}={json.dumps(value)}" for key, value in shortcuts.items()
                                   if value is not None]  # JSON is YAML: --name 007 stays a string


#: Commands after which everything they opened is closed (archive, run log, sandbox, LLM client).
_CLOSED_AFTER = ("run", "resume")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``evolve`` program. As a program (``argv`` None), ``run`` and ``resume`` leave without
    the interpreter's finalization (the exit handlers still run): tearing down the modules a run
    loads (the OpenAI SDK, numpy) took 0.3-0.5 s after every run (P6 bench, a 2-core machine). By
    then the archive, run log, sandbox and LLM client are closed; the output is flushed here. A
    thread still working (not a daemon) gets the ordinary exit, which waits for it. Any command
    interrupted leaves at once, exit handlers too: they waited ~2.5 s for an abandoned sandbox job
    (measured on the adder)."""
    code = _main(argv)
    if argv is None and code == EXIT_INTERRUPTED:
        _leave(code)
    if argv is None and sys.argv[1:2] and sys.argv[1] in _CLOSED_AFTER and _only_daemon_threads_left():
        atexit._run_exitfuncs()
        _leave(code)
    return code


def _only_daemon_threads_left() -> bool:
    return all(t.daemon or t is threading.main_thread() for t in threading.enumerate())


def _leave(code: int) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    unknown = _unknown_command(parser, argv)
    if unknown:
        print(f"evolve: {unknown}", file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("evolve: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UserError as exc:  # anything else is a bug: its traceback and exit code 1 are the report
        print(f"evolve: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", EXIT_USAGE))  # EXIT_LLM for an LLM setup failure


def _unknown_command(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """One line naming the closest command for a mistyped one (argparse lists them all)."""
    if not argv or argv[0].startswith("-"):
        return None
    commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if argv[0] in commands:
        return None
    return f"unknown command {argv[0]!r}" + _did_you_mean(argv[0], list(commands)) \
        + " (evolve --help lists them)"


def _did_you_mean(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- commands -------------------------------------------------------------------------------------
def cmd_new_task(args: argparse.Namespace) -> int:
    from evolve.new_task import write_skeleton

    out = args.output or Path(args.name)
    for path in write_skeleton(args.name, out):
        print(path)
    print(f"next: cd {out} && evolve eval {args.name}.py seed.py && evolve run config.yaml")
    return EXIT_OK


def cmd_tasks(args: argparse.Namespace) -> int:
    from evolve.tasks import describe_tasks

    table = Table(title="tasks")
    for col in ("task", "objectives", "constraints", "description"):
        table.add_column(col)
    for info in describe_tasks():
        objs = ", ".join(f"{o.goal} {o.name}" for o in info.objectives)
        table.add_row(info.name, objs, ", ".join(map(str, info.constraints)), info.description)
    make_console().print(table)
    return EXIT_OK


def _parse_options(pairs: list[str]) -> dict[str, Any]:
    import yaml

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option {pair!r}: expected KEY=VALUE")
        options[key] = yaml.safe_load(value)
    return options


def cmd_eval(args: argparse.Namespace) -> int:
    from evolve.evaluation import check_program, evaluate
    from evolve.tasks import get_task

    task = get_task(args.task, **_parse_options(args.option))
    check_program(args.program)  # bad input: one line, exit 2, before any sandbox starts
    result = evaluate(task, args.program)
    if result.status == "invalid":
        raise UsageError(result.error or f"{args.program}: cannot be evaluated")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        _print_result(task, result)
    return EXIT_OK if result.ok else EXIT_FAILED


def _print_result(task: Any, result: Any) -> None:
    console = make_console()
    table = Table(title=f"{task.name}: {result.status}{' (feasible)' if result.feasible else ''}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("role")
    roles: dict[str, str] = {}
    for o in task.objectives:
        roles[o.name] = f"{o.goal}imize" + (f" ({o.unit})" if o.unit else "")
    for c in task.constraints:
        ok = "ok" if c.satisfied(result.metrics) else "VIOLATED" if c.metric in result.metrics else "MISSING"
        roles[c.metric] = (roles.get(c.metric, "") + f" {c.op} {c.value:g} {ok}").strip()
    for name, value in result.metrics.items():
        table.add_row(name, f"{value:.6g}" if isinstance(value, float) else str(value), roles.get(name, ""))
    missing = [name for name in roles if name not in result.metrics] if result.ok else []
    for name in missing:
        table.add_row(name, "-", roles[name] if roles[name].endswith("MISSING") else f"{roles[name]} MISSING",
                      style="red")
    console.print(table)
    if missing:  # a task whose evaluate names a metric differently: nothing it makes can be feasible
        console.print(f"[bold red]warning:[/] the task declares {', '.join(missing)} but evaluate returned "
                      f"no such metric (it returned: {', '.join(result.metrics) or 'none'})", highlight=False, soft_wrap=True)
    if result.error:  # the candidate's own words (an exception it raised): text, never markup
        console.print(Text.assemble(("error:", "bold red"), " ", result.error))
    if result.info:
        console.print("info: " + ", ".join(f"{k}={v}" for k, v in result.info.items()), markup=False)
    console.print(f"wall time {result.wall_s:.2f} s")


def cmd_run(args: argparse.Namespace) -> int:
    from evolve.config import load_config

    if args.force and not args.resume:
        raise UsageError("--force only applies with --resume")
    overrides = _overrides(args, {"budget.max_evaluations": args.max_evaluations, "run.seed": args.seed,
                                  "run.name": args.name})
    return _execute(load_config(args.config, overrides), resume=args.resume, verbose=args.verbose, force=args.force)


def cmd_resume(args: argparse.Namespace) -> int:
    from evolve.archive import Archive
    from evolve.config import parse_config

    run_dir = _run_dir(args.run)
    overrides = _overrides(args, {"budget.max_evaluations": args.max_evaluations})
    for text in overrides:
        key = text.partition("=")[0].strip()
        if key in ("run", "run.name", "run.output_dir"):
            raise UsageError(f"--set {text}: a resumed run keeps its name and folder "
                             "(start a new run with `evolve run CONFIG --name NEW`)")
    with Archive.open(run_dir / "archive") as archive:
        saved = (archive.state() or {}).get("config") or archive.meta.config  # the last session's
    # the run lives where it was found, whatever directory it was started from
    where = [f"run.output_dir={json.dumps(str(run_dir.resolve().parent))}"]
    config = parse_config(saved, f"{run_dir}/archive (saved config)", overrides=overrides + where)
    return _execute(config, resume=True, verbose=args.verbose, force=args.force)


def _execute(config: Any, resume: bool, verbose: bool = False, force: bool = False) -> int:
    from evolve.report.next_steps import next_steps
    from evolve.report.progress import RunProgress
    from evolve.run import EvolutionRun
    from evolve.runlog import llm_summary

    run = EvolutionRun(config, resume=resume, force=force)
    console = make_console(stderr=True)
    for note in run.config_notes:
        console.print(f"evolve: {note}", markup=False, highlight=False)
    with RunProgress(run, console, verbose=verbose) as progress:
        outcome = run.execute(progress=progress.update)
    progress.summary(outcome)
    console.print(next_steps(run.config.run_dir, run.archive_dir), highlight=False, soft_wrap=True)
    if config.llm is not None:
        console.print(llm_summary(run.log.path), markup=False, highlight=False)
    if outcome.failure is not None:
        return EXIT_LLM
    return EXIT_INTERRUPTED if outcome.interrupted else EXIT_OK


def _run_dir(run: str) -> Path:
    """``./RUN`` or ``runs/RUN``, preferring the one that holds a run or a comparison: a task's
    folder is often named like its run (``evolve new-task half -o half`` makes both)."""
    places = [p for p in (Path(run), Path("runs") / run) if p.is_dir()]
    made = [p for p in places if (p / "archive").is_dir() or (p / "comparison.json").is_file()]
    if made or places:
        return (made or places)[0]
    known = sorted(p.name for p in Path("runs").glob("*/") if p.is_dir()) if Path("runs").is_dir() else []
    raise UsageError(f"no such run {run!r} (looked for ./{run} and runs/{run})" + _did_you_mean(run, known))


def cmd_show(args: argparse.Namespace) -> int:
    from evolve.report import show

    return show.main(_run_dir(args.run), args)


def cmd_compare(args: argparse.Namespace) -> int:
    from evolve.compare.stats import compute
    from evolve.compare.table import print_table
    from evolve.report.html import comparison_report, write_report
    from evolve.report.plots import comparison_figures, save_figures

    comparison = _comparison(args)
    if comparison is None:
        return EXIT_INTERRUPTED
    stats = compute(comparison)
    console = make_console()
    print_table(stats, console)
    comparison.save(results=stats.to_dict())
    figures = comparison_figures(stats)
    written = save_figures(figures, comparison.directory)
    if args.report:
        written.append(write_report(comparison.directory / "report.html", comparison_report(stats, figures)))
    console.print(f"wrote {comparison.directory / 'comparison.json'}, " + ", ".join(p.name for p in written),
                  highlight=False)
    return EXIT_OK


def _comparison(args: argparse.Namespace) -> Any:
    """The comparison the inputs name; runs a COMPARE.yaml's matrix first (None: interrupted)."""
    from evolve.compare import Comparison, is_comparison, load_compare
    from evolve.compare.config import BUDGET_KINDS

    inputs = args.inputs
    for_runs = {"--out": args.out, "--budget": args.budget, "--target": args.target,
                "--reference": args.reference}
    given = [flag for flag, value in for_runs.items() if value]
    overrides = _overrides(args, {"budget.evaluations": args.max_evaluations})
    if any(Path(i).suffix in (".yaml", ".yml") for i in inputs):
        if len(inputs) != 1:
            raise UsageError("give one COMPARE.yaml, or run directories, not both")
        if given:
            raise UsageError(f"{', '.join(given)}: only for comparing existing runs (a COMPARE.yaml sets these)")
        return _run_matrix(load_compare(inputs[0], overrides))
    if overrides:
        flags = ("--set" if args.overrides else "") + (" --max-evaluations" if args.max_evaluations else "")
        raise UsageError(f"{flags.strip()}: only with a COMPARE.yaml (existing runs are compared as they are)")
    if len(inputs) == 1:
        path = _run_dir(inputs[0])
        if not is_comparison(path):
            raise UsageError(f"{path}: not a comparison; give a COMPARE.yaml or at least two runs")
        if given:
            raise UsageError(f"{', '.join(given)}: only for comparing existing runs")
        return Comparison.load(path)
    if args.budget is not None and args.budget not in BUDGET_KINDS:
        raise UsageError(f"--budget {args.budget!r}: expected one of {', '.join(BUDGET_KINDS)}")
    reference = None
    if args.reference:
        reference = {}
        for pair in args.reference:
            key, _, value = pair.partition("=")
            try:
                reference[key.strip()] = float(value)
            except ValueError:
                raise UsageError(f"--reference {pair!r}: expected OBJECTIVE=NUMBER") from None
    return Comparison.from_runs([_run_dir(r) for r in inputs], args.out or Path("runs") / "comparison",
                                budget_kind=args.budget, reference=reference,
                                target=tuple(args.target) if args.target else None)


def _run_matrix(spec: Any) -> Any:
    from evolve.compare.matrix import run_matrix
    from evolve.report.compare_progress import ConsoleListener

    console = make_console(stderr=True)
    outcome = run_matrix(spec, ConsoleListener(console))
    if outcome.interrupted:
        console.print(f"comparison interrupted: run `{spec.command}` again to continue", highlight=False)
        return None
    return outcome.comparison


def cmd_report(args: argparse.Namespace) -> int:
    from evolve.compare import Comparison, is_comparison
    from evolve.compare.stats import compute
    from evolve.report.html import comparison_report, run_report, write_report

    path = _run_dir(args.path)
    if args.max_programs < 0:
        raise UsageError(f"--max-programs must be >= 0 (got {args.max_programs})")
    if is_comparison(path):
        document = comparison_report(compute(Comparison.load(path)))
    elif (path / "archive").is_dir():
        document = run_report(path, max_programs=args.max_programs)
    else:
        raise UsageError(f"{path} is neither a run (no archive/) nor a comparison (no comparison.json)")
    out = write_report(args.output or path / "report.html", document)
    print(f"wrote {out}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    """Exit 0 when every check whose layer this host has is contained, 1 otherwise."""
    from evolve.sandbox import doctor

    console = make_console()
    table = Table(title="sandbox layers")
    for column in ("layer", "active", "detail", "meaning"):
        table.add_column(column)
    for name, ok, detail, meaning in doctor.layer_rows():
        table.add_row(name, "yes" if ok else "[bold red]NO[/]", detail, meaning)
    console.print(table)
    if args.layers_only:
        return EXIT_OK
    checks = Table(title=f"hostile programs ({args.mode} mode)")
    for column in ("class", "attack", "outcome", "stopped by", "ms"):
        checks.add_column(column)
    results = doctor.run_checks(args.mode)
    for check in results:
        if check.verdict is None:
            outcome, ms = f"skipped: no {', '.join(check.skipped_for)}", ""
        else:
            mark = "contained" if check.verdict.contained else "[bold red]NOT CONTAINED[/]"
            outcome, ms = f"{mark} ({check.verdict.outcome})", f"{check.verdict.seconds * 1000:.0f}"
        checks.add_row(check.case.cls, check.case.attack, outcome, check.case.layer, ms)
    console.print(checks)
    failed = [c for c in results if not c.passed]
    console.print(f"{len(results) - len(failed)}/{len(results)} checks passed" + (f", {len(failed)} FAILED" if failed else ""))
    return EXIT_FAILED if failed else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from evolve.archive import Archive
    from evolve.report import export

    if args.front and args.id is not None:
        raise UsageError("give a candidate id or --front, not both")
    if args.front and args.output is None:
        raise UsageError("--front writes one file per member: give the folder with -o DIR")
    with Archive.open(_run_dir(args.run) / "archive") as archive:
        try:
            if args.front:
                written = export.write_front(archive, export.front(archive, args.by), args.output)
                print(f"wrote {len(written) - 1} programs and front.json to {args.output}", file=sys.stderr)
                return EXIT_OK
            chosen = export.choose(archive, args.id, args.by, args.run)
        except export.NothingToExport as exc:
            print(f"evolve: {exc}", file=sys.stderr)
            return EXIT_FAILED
        if args.output is None:
            sys.stdout.write(chosen.source)
            return EXIT_OK
        path = export.write_one(archive, chosen, args.output)
    print(f"wrote #{chosen.id} to {path}", file=sys.stderr)
    return EXIT_OK


def cmd_reindex(args: argparse.Namespace) -> int:
    from evolve.archive import Archive

    with Archive.open(_run_dir(args.run) / "archive") as archive:
        n = archive.reindex()
    print(f"reindexed {n} candidates")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
