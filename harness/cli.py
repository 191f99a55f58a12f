"""Command line: ``python -m harness run | check | list``.

Every option is validated before any work starts; a bad one is a single line on stderr and exit
code 2 (a traceback only with --debug).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import NoReturn

from adapters.registry import FRAMEWORKS
from cases.names import DTYPES, KINDS, REDUCTIONS, UsageError
from harness.runner.timing import BUDGET_S


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frameworks", default="all", help=f"comma-separated from {{{', '.join(FRAMEWORKS)}}} or 'all' "
                   "(aliases: pytorch, tf, keras, optax, np); default: all")  # fmt: skip
    p.add_argument("--devices", default="cpu,gpu", help="comma-separated from {cpu, gpu}; default: cpu,gpu")


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
    run.add_argument("--shard", metavar="K/N", help="run shard K of N of the cases (merge shards with `report`)")
    run.add_argument("--quiet", action="store_true", help="no progress on stderr")
    run.add_argument("--verbose", action="store_true", help="a line per finished framework and device, even when piped")
    run.add_argument("--debug", action="store_true", help="tracebacks for errors")

    chk = sub.add_parser("check", help="compare the frameworks on your own tensors (an .npz of arrays)")
    chk.add_argument("--npz", required=True, type=Path,
                     help="file with arrays x, target and optionally weight (per class) and sample_weight")
    chk.add_argument("--family", default="softmax", help="softmax (default) or sigmoid")
    chk.add_argument("--input", default="logits", help="logits (default), log_probs or probs")
    chk.add_argument("--target", dest="target_kind", help="index or prob (default: from target's dtype)")
    chk.add_argument("--ignore-index", type=int, help="target value to ignore (index targets)")
    chk.add_argument("--label-smoothing", type=float, default=0.0, help="in [0, 1] (default 0)")
    chk.add_argument("--reduction", default="mean", help=f"one of {{{', '.join(REDUCTIONS)}}} (default mean)")
    _add_selection(chk)
    chk.set_defaults(devices="cpu")
    chk.add_argument("--claimed", help="a loss value you saw elsewhere: which semantics produce it?")
    chk.add_argument("--json", action="store_true", help="print the accuracy rows as a JSON list")
    chk.add_argument("--from", dest="from_fw", metavar="F", help="porting from framework F (default torch with --to)")
    chk.add_argument("--to", dest="to_fw", metavar="G", help="print how to port this loss to framework G (PORTING.md)")
    chk.add_argument("--debug", action="store_true", help="tracebacks for errors")

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
        threads=args.threads, shard=args.shard, quiet=args.quiet, verbose=args.verbose, debug=args.debug,
        command=" ".join(["python -m harness", *argv]),
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


def cmd_check(args: argparse.Namespace) -> int:
    from harness.api.check import check, load_npz, make_case
    from harness.judge.claims import claim_tolerance, explain_claim

    arrays = load_npz(args.npz)
    if args.claimed is not None:
        try:
            claimed, tol = float(args.claimed), claim_tolerance(args.claimed)
        except ValueError:
            raise UsageError(f"Expected --claimed to be a number. Received: --claimed={args.claimed!r}") from None
        case = make_case(arrays["x"], arrays["target"], arrays.get("weight"), family=args.family, input=args.input,
                         target_kind=args.target_kind, ignore_index=args.ignore_index,
                         label_smoothing=args.label_smoothing, reduction=args.reduction,
                         sample_weight=arrays.get("sample_weight"))  # fmt: skip
        print(explain_claim(case, claimed, tol).sentence())
    df = check(
        arrays["x"], arrays["target"], arrays.get("weight"), family=args.family, input=args.input,
        target_kind=args.target_kind, ignore_index=args.ignore_index, label_smoothing=args.label_smoothing,
        reduction=args.reduction, sample_weight=arrays.get("sample_weight"), frameworks=args.frameworks,
        devices=args.devices,
    )  # fmt: skip
    if args.json:  # standard JSON: NaN becomes null; floats keep every digit
        records = df.astype(object).where(df.notna(), None).to_dict(orient="records")
        print(json.dumps(records, default=str))
        return 0
    for case_id, g in df.groupby("case_id", sort=False):  # the user's dtype, then float64 (it decides semantics)
        show = g[["framework", "api", "recipe", "device", "outcome", "value", "ref_value", "value_rel_err",
                  "grad_rel_err", "explanation", "error"]].copy()  # fmt: skip
        show["api"] = show["api"].str.split(".").str[-1]
        print(f"case {case_id}: exact value {g['ref_value'].iloc[0]:.17g}")
        print(show.to_string(index=False, max_colwidth=70) + "\n")
    if args.to_fw:
        from harness.render.porting import porting_section

        print("\n" + porting_section(df, args.from_fw or "torch", args.to_fw))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.api.report import report

    for path in report(args.runs, args.out, args.publish, args.porting):
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
        if args.command == "check":
            return cmd_check(args)
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
