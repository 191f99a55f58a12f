"""Command line: ``python -m harness run | launch | check | verify | report | compare | list``.

Every option is validated before any work starts; a bad one is a single line on stderr and exit
code 2 (a traceback only with --debug).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import NoReturn

from adapters.registry import FRAMEWORKS
from cases.names import DTYPES, IGNORE_DEFAULT, KINDS, REDUCTIONS, UsageError
from harness.runner.timing import BUDGET_S


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frameworks", default="all", help=f"comma-separated from {{{', '.join(FRAMEWORKS)}}} or 'all' "
                   "(aliases: pytorch, tf, keras, optax, np); default: all")  # fmt: skip
    p.add_argument("--devices", help="comma-separated from {cpu, gpu}; default: those present here (cpu, gpu if any)")


def _add_loss_options(p: argparse.ArgumentParser, ignore_default: int | None) -> None:
    """The loss configuration's options `check` and `verify` share."""
    p.add_argument("--family", default="softmax", help="softmax (default) or sigmoid")
    p.add_argument("--input", default="logits", help="logits (default), log_probs or probs")
    default = f"default {ignore_default}, PyTorch's" if ignore_default is not None else "default: none"
    p.add_argument("--ignore-index", type=int, default=ignore_default,
                   help=f"target value to ignore (index targets; {default})")  # fmt: skip
    p.add_argument("--label-smoothing", type=float, default=0.0, help="in [0, 1] (default 0)")
    p.add_argument("--reduction", default="mean", help=f"one of {{{', '.join(REDUCTIONS)}}} (default mean)")


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="python -m harness", description="Compare cross-entropy losses and gradients across frameworks.")
    sub = top.add_subparsers(dest="command", parser_class=Parser, required=True)

    run = sub.add_parser("run", help="run the case set through every framework and write a report")
    _add_selection(run)
    run.add_argument("--kinds", default="all", help=f"comma-separated from {{{', '.join(KINDS)}}}; default: all")
    run.add_argument("--dtypes", default="all", help=f"comma-separated from {{{', '.join(DTYPES)}}}; default: all")
    run.add_argument("--seed", type=int, default=0, help="seed of the generated inputs (default 0)")
    run.add_argument("--out", type=Path, help="run directory (default: reports/runs/<run_id>)")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR", help="complete an interrupted run in RUN_DIR")
    run.add_argument("--case-timeout", type=float, default=120.0, help="seconds one case may take (default 120)")
    run.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="framework workers at once")
    run.add_argument(
        "--timing",
        default="default",
        help="off, default (on CPU without the 4096x32000 case) or full (default: default)",
    )
    run.add_argument("--timing-budget", type=float, default=BUDGET_S,
                     help=f"sampling seconds per timing (default {BUDGET_S})")  # fmt: skip
    run.add_argument("--threads", type=int, help="intra-op threads for every framework (default: all cores)")
    run.add_argument(
        "--strict", action="store_true", help="exit 1 if a difference is not in the known-differences registry"
    )
    run.add_argument("--modes", help="eager, compiled or all: every case in each (default: each framework's own mode, "
                     "the other on a subset of every kind and dtype)")  # fmt: skip
    run.add_argument("--policies", help="none, autocast-bfloat16, autocast-float16, mixed_bfloat16, mixed_float16 or "
                     "all: every case of the policy's dtype (default: none, the policies on the subset)")  # fmt: skip
    run.add_argument("--python", action="append", default=[], metavar="FW=PATH",
                     help="run FW's workers under another interpreter, or in an environment made for pip requirements "
                     "(FW='pkg==X ...'); FW@LABEL adds a second install of FW, e.g. --python 'jax@new=jax==0.9.2 "
                     "jaxlib==0.9.2' (repeatable)")  # fmt: skip
    run.add_argument("--shard", metavar="K/N", help="run shard K of N of the cases, balanced by cost (merge shards "
                     "with `report`, or let `launch` run and merge them)")  # fmt: skip
    run.add_argument("--durations", type=Path, metavar="RUN_DIR",
                     help="balance the shards by a previous run's per-case times (default: a cost model)")  # fmt: skip
    run.add_argument("--machine", help="the machine's name in env.json and merged tables (default: $HARNESS_MACHINE, "
                     "else the hostname and the CPU and GPU models)")  # fmt: skip
    run.add_argument("--quiet", action="store_true", help="no progress on stderr")
    run.add_argument("--verbose", action="store_true", help="a line per finished framework and device, even when piped")
    run.add_argument("--debug", action="store_true", help="tracebacks for errors")

    _add_launch(sub, run)

    chk = sub.add_parser("check", help="compare the frameworks on your own tensors (an .npz of arrays)")
    chk.add_argument(
        "--npz",
        required=True,
        type=Path,
        help="file with arrays x, target and optionally weight (per class) and sample_weight",
    )
    chk.add_argument("--target", dest="target_kind", help="index or prob (default: from target's dtype)")
    _add_loss_options(chk, ignore_default=IGNORE_DEFAULT)
    _add_selection(chk)
    chk.set_defaults(devices="cpu")
    chk.add_argument("--claimed", help="a loss value you saw elsewhere: which semantics produce it?")
    chk.add_argument("--json", action="store_true", help="print the accuracy rows as a JSON list")
    chk.add_argument("--from", dest="from_fw", metavar="F", help="porting from framework F (default torch with --to)")
    chk.add_argument("--to", dest="to_fw", metavar="G", help="print how to port this loss to framework G (PORTING.md)")
    chk.add_argument("--debug", action="store_true", help="tracebacks for errors")

    ver = sub.add_parser("verify", help="check your own loss function against PyTorch's semantics")
    ver.add_argument("function", metavar="MODULE:FUNC", help="your loss fn(x, y, w) -> loss (MODULE importable here)")
    ver.add_argument("--framework", required=True, help=f"whose tensors it takes: one of {{{', '.join(FRAMEWORKS)}}}")
    ver.add_argument("--class-axis", type=int, default=1, help="1 (PyTorch's layout, default) or -1 (classes last)")
    ver.add_argument("--weighted", action="store_true", help="it takes class weights w (pos_weight for sigmoid)")
    ver.add_argument("--target", help="index or prob (default: index for softmax, prob for sigmoid)")
    _add_loss_options(ver, ignore_default=None)
    ver.add_argument("--kinds", help="the configuration's kind and/or edge (default: both)")
    ver.add_argument("--dtypes", default="float64,float32", help="default: float64,float32")
    ver.add_argument("--seed", type=int, default=0, help="seed of the generated inputs (default 0)")
    ver.add_argument("--devices", default="cpu", help="comma-separated from {cpu, gpu}; default: cpu")
    ver.add_argument("--json", action="store_true", help="print the accuracy rows as a JSON list")
    ver.add_argument("--debug", action="store_true", help="tracebacks for errors")

    rep = sub.add_parser("report", help="write report.html for a run, or merge runs (shards, machines) into one")
    rep.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run directories")
    rep.add_argument("--out", type=Path, help="directory for the merged report (required with several RUN_DIRs)")
    rep.add_argument("--porting", type=Path, metavar="FILE", help="also write the porting guide (reports/PORTING.md)")
    rep.add_argument("--publish", type=Path, metavar="FILE", help="also copy summary.md there (reports/cpu.md)")
    rep.add_argument("--debug", action="store_true", help="tracebacks for errors")

    cmp = sub.add_parser("compare", help="what changed from RUN_A to RUN_B: outcomes, errors, timings, versions")
    cmp.add_argument("run_a", type=Path, metavar="RUN_A")
    cmp.add_argument("run_b", type=Path, metavar="RUN_B")
    cmp.add_argument("--verbose", action="store_true", help="every changed row (default: the first 80 per table)")
    cmp.add_argument("--debug", action="store_true", help="tracebacks for errors")

    lst = sub.add_parser("list", help="show cases, frameworks and APIs with their capabilities")
    lst.add_argument("what", nargs="?", default="all", choices=["all", "cases", "frameworks", "apis"])
    lst.add_argument("--kinds", default="all")
    lst.add_argument("--dtypes", default="all")
    lst.add_argument("--debug", action="store_true")
    return top


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.api.run import run
    from harness.render.summary import outcome_counts

    result = run(
        args.frameworks, args.kinds, args.dtypes, args.devices, seed=args.seed, out=args.out, resume=args.resume,
        timing=args.timing, timing_budget=args.timing_budget, case_timeout=args.case_timeout, jobs=args.jobs,
        threads=args.threads, shard=args.shard, modes=args.modes, policies=args.policies,
        python=args.python, quiet=args.quiet,
        verbose=args.verbose, debug=args.debug,
        command=" ".join(["python -m harness", *argv]), machine=args.machine, durations=args.durations,
    )  # fmt: skip
    counts = outcome_counts(result.accuracy)
    counts["api"] = counts["api"].str.split(".").str[-1]
    print(counts.to_string(index=False))
    print(f"\nwrote {result.path}/ (accuracy, timing, env.json, summary.md, report.html): "
          f"{len(result.accuracy)} accuracy rows, {len(result.timing)} timings")  # fmt: skip
    if result.new_differences:
        print(f"{result.new_differences} rows differ for reasons the known-differences registry does not list "
              "(summary.md, 'New differences')")  # fmt: skip
    if result.partial:
        return 130
    return 1 if (args.strict and result.new_differences) else 0


def _print_json(df: object) -> None:
    """The rows as standard JSON: NaN becomes null; floats keep every digit."""
    records = df.astype(object).where(df.notna(), None).to_dict(orient="records")  # type: ignore[attr-defined]
    print(json.dumps(records, default=str))


def _add_launch(sub: argparse._SubParsersAction, run: argparse.ArgumentParser) -> None:
    """`launch`: run's options (the same objects: they stay in sync) but --shard and --resume, and its own."""
    lau = sub.add_parser("launch", help="run shards at once (local processes or a SLURM job array) and merge them")
    for action in run._actions:
        if action.dest not in ("help", "shard", "resume"):
            lau._add_action(action)
    lau.add_argument("--shards", type=int, default=2, help="how many shards (default 2)")
    lau.add_argument("--executor", default="local", help="local (processes here, default) or slurm (through submitit)")
    lau.add_argument("--resume", type=Path, metavar="OUT", help="resume a launch's incomplete shards and merge again")
    lau.add_argument("--retries", type=int, default=2, help="resumptions of a failed or killed shard (default 2)")
    lau.add_argument("--timeout-min", type=int, help="a shard's time limit, minutes (default: 1440 local, 240 slurm)")
    lau.add_argument("--slurm-partition", help="SLURM partition")
    lau.add_argument("--slurm-gpus-per-task", type=int, help="GPUs per shard")
    lau.add_argument("--slurm-cpus-per-task", type=int, help="CPUs per shard")
    lau.add_argument("--slurm-mem-gb", type=float, help="memory per shard (GB)")
    lau.add_argument("--slurm-array-parallelism", type=int, help="shards running at once (default: all)")
    lau.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                     help="any other submitit SLURM parameter: account=ml, constraint=h100, qos=high, "
                     "additional_parameters='{\"reservation\": \"x\"}' (repeatable)")  # fmt: skip
    lau.add_argument("--poll", type=float, help="seconds between looks at the shards (default 1 local, 30 slurm)")


def _given(option: str, argv: list[str]) -> bool:
    return any(a == option or a.startswith(option + "=") for a in argv)


def cmd_launch(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.api.launch import launch, slurm_parameters
    from harness.render.summary import outcome_counts

    slurm = slurm_parameters(args.slurm_partition, args.slurm_gpus_per_task, args.slurm_cpus_per_task,
                             args.slurm_mem_gb, args.slurm_array_parallelism, args.slurm)  # fmt: skip
    result = launch(
        args.frameworks, args.kinds, args.dtypes, args.devices, shards=args.shards, executor=args.executor,
        seed=args.seed, out=args.out, resume=args.resume, durations=args.durations, timing=args.timing,
        timing_budget=args.timing_budget, case_timeout=args.case_timeout,
        jobs=args.jobs if _given("--jobs", argv) else None,
        threads=args.threads, modes=args.modes, policies=args.policies, python=args.python, machine=args.machine,
        retries=args.retries, timeout_min=args.timeout_min, slurm=slurm, poll_s=args.poll, quiet=args.quiet,
        verbose=args.verbose, debug=args.debug, command=" ".join(["python -m harness", *argv]),
    )  # fmt: skip
    counts = outcome_counts(result.accuracy)
    counts["api"] = counts["api"].str.split(".").str[-1]
    print(counts.to_string(index=False))
    states = ", ".join(f"{s.k}: {s.state} ({s.attempts} attempt{'s' * (s.attempts != 1)})" for s in result.shards)
    for s in result.shards:
        for failure in s.failures:
            print(f"shard {s.k}: {failure}", file=sys.stderr)
    print(f"\nwrote {result.path}/ (merged from {len(result.shards)} shards: {states}): "
          f"{len(result.accuracy)} accuracy rows, machine {result.env.get('machine', '')!r}")  # fmt: skip
    if result.missing:
        print(f"{result.missing} planned case runs are missing (launch.json); complete them with "
              f"`python -m harness launch --resume {result.path}`")  # fmt: skip
    if result.partial:
        return 1
    return 1 if (args.strict and result.new_differences) else 0


def cmd_check(args: argparse.Namespace) -> int:
    from adapters.registry import choose_framework
    from harness.api.check import check, load_npz, make_case
    from harness.judge.claims import claim_tolerance, explain_claim
    from harness.render.terminal import check_table

    from_fw = choose_framework(args.from_fw) if args.from_fw else "torch"  # before any work
    to_fw = choose_framework(args.to_fw) if args.to_fw else None
    claimed = None
    if args.claimed is not None:
        try:
            claimed, tol = float(args.claimed), claim_tolerance(args.claimed)
        except ValueError:
            raise UsageError(f"Expected --claimed to be a number. Received: --claimed={args.claimed!r}") from None
    arrays = load_npz(args.npz)
    options = dict(family=args.family, input=args.input, target_kind=args.target_kind, ignore_index=args.ignore_index,
                   label_smoothing=args.label_smoothing, reduction=args.reduction)  # fmt: skip
    case = make_case(arrays["x"], arrays["target"], arrays.get("weight"), **options,
                     sample_weight=arrays.get("sample_weight"))  # fmt: skip
    if claimed is not None:
        print(explain_claim(case, claimed, tol).sentence())
    df = check(arrays["x"], arrays["target"], arrays.get("weight"), **options,
               sample_weight=arrays.get("sample_weight"), frameworks=args.frameworks, devices=args.devices)  # fmt: skip
    if args.json:
        _print_json(df)
        return 0
    print(ignore_line(case, args.ignore_index) + "\n")
    print(check_table(df))
    if to_fw:
        from harness.render.porting import porting_section

        print("\n" + porting_section(df, from_fw, to_fw))
    return 0


def ignore_line(case: object, asked: int | None) -> str:
    """What ignore_index does on the user's target (PyTorch's default -100 unless asked otherwise)."""
    spec, data = case.spec, case.data  # type: ignore[attr-defined]
    if spec.target != "index":
        return "ignore_index: not used (probability targets)"
    what = "PyTorch's default" if asked == IGNORE_DEFAULT else "asked"
    if asked is None:
        return "ignore_index: none (every label counts)"
    n = int((data.target == asked).sum())
    return f"ignore_index={asked} ({what}): {n} of {data.target.size} labels equal it"


def cmd_verify(args: argparse.Namespace) -> int:
    from harness.api.verify import failure_message, failures, verify
    from harness.render.terminal import verify_table

    df = verify(args.function, args.framework, class_axis=args.class_axis, family=args.family, input=args.input,
                target=args.target, weighted=args.weighted, ignore_index=args.ignore_index,
                label_smoothing=args.label_smoothing, reduction=args.reduction, kinds=args.kinds, dtypes=args.dtypes,
                seed=args.seed, devices=args.devices, quiet=False)  # fmt: skip
    if args.json:
        _print_json(df)
    else:
        print(verify_table(df) + "\n")
        n = len(df) - len(failures(df))
        print(failure_message(df) or f"{df['api'].iloc[0]} matches PyTorch on all {n} rows")
    return 1 if len(failures(df)) else 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.api.report import report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = report(args.runs, args.out, args.publish, args.porting)
    for w in caught:  # one line each (MergeWarning: the runs differ in seed, options or versions)
        print(f"warning: {w.message}", file=sys.stderr)
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.api.report import compare

    print(compare(args.run_a, args.run_b, args.verbose), end="")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from harness.api.report import catalog

    print(catalog(args.what, args.kinds, args.dtypes))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        args = parser().parse_args(argv)
        if args.command == "run":
            return cmd_run(args, argv)
        if args.command == "launch":
            return cmd_launch(args, argv)
        if args.command == "check":
            return cmd_check(args)
        if args.command == "verify":
            return cmd_verify(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "compare":
            return cmd_compare(args)
        return cmd_list(args)
    except UsageError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head`
        return 0
    except Exception as e:
        if debug:
            raise
        print(f"error: {type(e).__name__}: {e} (run again with --debug for the traceback)", file=sys.stderr)
        return 1
