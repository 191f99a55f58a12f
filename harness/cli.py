"""Command line: ``python -m harness run | check | list``.

Every option is validated before any work starts; a bad one is a single line on stderr and exit
code 2 (a traceback only with --debug).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from cases.names import DEVICES, DTYPES, FRAMEWORKS, KINDS, REDUCTIONS, UsageError, choose, choose_many
from harness.timing import BUDGET_S

DEFAULT_RUNS = Path("reports") / "runs"
TIMING_LEVELS = ("off", "default", "full")
CPU_DEFAULT_MAX_ELEMENTS = 10_000_000  # ~1 s a call here: 8 APIs x 4 modes/passes would not fit in a default run


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

    chk = sub.add_parser("check", help="compare the frameworks on your own tensors (an .npz with x, target, weight)")
    chk.add_argument("--npz", required=True, type=Path, help="file with arrays x, target and optionally weight")
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


def new_run_id(seed: int) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{now}-s{seed}-{secrets.token_hex(2)}"


def _raise_interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from cases.generator import default_cases, timing_cases, with_float64
    from harness.env import environment
    from harness.html_report import render_html
    from harness.merge import parse_shard, shard_cases
    from harness.runner import (
        RunOptions,
        accuracy_frame,
        device_kind,
        row_key,
        run_accuracy,
        run_timing,
        spawn_timing_workers,
        timing_frame,
    )
    from harness.store import RunStore
    from harness.summary import new_difference_count, outcome_counts, render

    if args.resume is not None:
        if not (args.resume / "options.json").is_file():
            raise UsageError(f"Expected a run directory with options.json. Received: --resume={str(args.resume)!r}")
        store = RunStore(args.resume)
        saved = store.read_json("options.json")
        run_id, sel = saved["run_id"], saved
    else:
        sel = {
            "frameworks": choose_many(args.frameworks, FRAMEWORKS, "framework"),
            "devices": choose_many(args.devices, DEVICES, "device"),
            "kinds": choose_many(args.kinds, KINDS, "kind"),
            "dtypes": choose_many(args.dtypes, DTYPES, "dtype"),
            "seed": args.seed,
            "shard": list(parse_shard(args.shard)) if args.shard else None,  # kept for --resume
        }
        sel["timing"] = choose(args.timing, TIMING_LEVELS, "timing")
        if (
            args.case_timeout <= 0
            or args.jobs < 1
            or args.timing_budget < 0
            or (args.threads is not None and args.threads < 1)
        ):
            got = f"--case-timeout={args.case_timeout:g} --jobs={args.jobs} --timing-budget={args.timing_budget:g}"
            got += f" --threads={args.threads}"
            raise UsageError(
                f"Expected --case-timeout > 0, --jobs >= 1, --timing-budget >= 0, --threads >= 1. Received: {got}"
            )
        run_id = new_run_id(args.seed)
        store = RunStore.create(args.out or DEFAULT_RUNS / run_id)
        store.write_json("options.json", {"run_id": run_id, **sel, "argv": argv})

    cases = default_cases(sel["kinds"], sel["dtypes"], sel["seed"])
    if sel.get("shard"):
        cases = shard_cases(cases, *sel["shard"])
    deciding = len(with_float64(cases)) - len(cases)
    cases = with_float64(cases)  # float64 decides every configuration's semantics
    options = RunOptions(
        frameworks=tuple(sel["frameworks"]), devices=tuple(sel["devices"]), case_timeout=args.case_timeout,
        jobs=args.jobs, debug=args.debug, quiet=args.quiet, verbose=args.verbose,
        threads=args.threads or os.cpu_count(), timing_budget_s=args.timing_budget,
    )  # fmt: skip
    done = store.rows()
    skip = frozenset(row_key(r[0]) for r in done if r)

    def sink(rows: list[dict[str, Any]]) -> None:
        if rows:
            store.append([rows])  # one line per (case, framework, device): a kill never splits a case

    if not args.quiet:
        extra = f" ({deciding} of them float64, to decide semantics)" if deciding else ""
        print(f"{len(cases)} cases{extra} x {len(options.frameworks)} frameworks x {len(options.devices)} device kinds"
              f"{f' (resuming: {len(skip)} done)' if skip else ''} -> {store.path}", file=sys.stderr)  # fmt: skip
    signal.signal(signal.SIGTERM, _raise_interrupt)
    partial = False
    info: dict[str, Any] = {}
    timing_info: dict[str, Any] = {}
    # float32 everywhere; bfloat16 too on GPUs (the dtype people train large vocabularies in there)
    level = sel.get("timing", "default")
    cpu_cases = timing_cases(("float32",), sel["seed"])
    if level == "default":
        cpu_cases = [c for c in cpu_cases if math.prod(c.shape) <= CPU_DEFAULT_MAX_ELEMENTS]
    timed = {"cpu": cpu_cases, "gpu": timing_cases(("float32", "bfloat16"), sel["seed"])}
    if sel.get("shard"):
        timed = {k: shard_cases(v, *sel["shard"]) for k, v in timed.items()}
    timed_done = frozenset(
        (k["case_id"], k["framework"], device_kind(k["device"]))
        for k in (line["key"] for line in store.rows(store.TIMING))
    )
    # timing workers import and warm up while the accuracy pass runs (its numbers do not depend on
    # the load; timings do, and are taken after it, one framework at a time)
    early = spawn_timing_workers(timed, options, timed_done) if level != "off" else {}
    try:
        info = run_accuracy(cases, options, run_id, sink, skip)
        if level != "off":
            timing_info = run_timing(
                timed, options, run_id, lambda lines: store.append(lines, store.TIMING), timed_done, early
            )
    except KeyboardInterrupt:
        partial = True
        print("\ninterrupted: writing what finished; complete it with "
              f"`python -m harness run --resume {store.path}`", file=sys.stderr)  # fmt: skip
    finally:
        for worker in early.values():  # run_timing stops those it reached
            worker.kill()
    if store.path.joinpath("env.json").exists():  # a resumed run keeps the versions it started with
        old = store.read_json("env.json").get("frameworks", {})
        info = {**old, **{k: {**old.get(k, {}), **v} for k, v in info.items()}}
    rows = [row for line in store.rows() for row in line]
    df = accuracy_frame(rows, cases)
    tdf = timing_frame([row for line in store.rows(store.TIMING) for row in line["rows"]])
    env = {"run_id": run_id, **environment(argv, info), "partial": partial, "timing": timing_info}
    store.write_table("accuracy", df)
    if level == "default" and "cpu" in options.devices:
        timing_info.setdefault("not_timed", {})["cpu: larger cases"] = (
            f"cases over {CPU_DEFAULT_MAX_ELEMENTS:,} elements are timed on CPU with --timing full"
        )
    if len(tdf) or level != "off":
        store.write_table("timing", tdf)
    store.write_json("env.json", env)
    summary = render(df, env, cases, partial=partial, timing=tdf)
    store.write_text("summary.md", summary)
    store.write_text("report.html", render_html(df, tdf, env, summary))

    counts = outcome_counts(df)
    counts["api"] = counts["api"].str.split(".").str[-1]
    print(counts.to_string(index=False))
    print(
        f"\nwrote {store.path}/ (accuracy, timing, env.json, summary.md, report.html): "
        f"{len(df)} accuracy rows, {len(tdf)} timings"
    )
    new = new_difference_count(df)
    if new:
        print(
            f"{new} rows differ for reasons the known-differences registry does not list "
            "(summary.md, 'New differences')"
        )
    if partial:
        return 130
    return 1 if (args.strict and new) else 0


def cmd_check(args: argparse.Namespace) -> int:
    from harness.check_tensors import check, load_npz, make_case
    from harness.explain import claim_tolerance, explain_claim

    arrays = load_npz(args.npz)
    if args.claimed is not None:
        try:
            claimed, tol = float(args.claimed), claim_tolerance(args.claimed)
        except ValueError:
            raise UsageError(f"Expected --claimed to be a number. Received: --claimed={args.claimed!r}") from None
        case = make_case(arrays["x"], arrays["target"], arrays.get("weight"), family=args.family, input=args.input,
                         target_kind=args.target_kind, ignore_index=args.ignore_index,
                         label_smoothing=args.label_smoothing, reduction=args.reduction)  # fmt: skip
        print(explain_claim(case, claimed, tol).sentence())
    df = check(
        arrays["x"], arrays["target"], arrays.get("weight"), family=args.family, input=args.input,
        target_kind=args.target_kind, ignore_index=args.ignore_index, label_smoothing=args.label_smoothing,
        reduction=args.reduction, frameworks=args.frameworks, devices=args.devices,
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
        from harness.porting import porting_section

        print("\n" + porting_section(df, args.from_fw or "torch", args.to_fw))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.html_report import write_html
    from harness.merge import load_run, write_merged
    from harness.porting import porting_guide
    from harness.store import atomic_write

    if len(args.runs) > 1 and args.out is None:
        raise UsageError(f"Expected --out DIR to merge {len(args.runs)} runs. Received: no --out")
    path = write_merged(args.runs, args.out) if args.out is not None else write_html(args.runs[0])
    print(f"wrote {path}")
    if args.publish is not None:
        atomic_write(args.publish, (path.parent / "summary.md").read_bytes())
        print(f"wrote {args.publish}")
    if args.porting is not None:
        run = load_run(path.parent)
        atomic_write(args.porting, porting_guide(run.accuracy, run.env).encode())
        print(f"wrote {args.porting}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.compare import compare_runs
    from harness.summary import NOT_OK_LISTED

    print(compare_runs(args.run_a, args.run_b, None if args.verbose else NOT_OK_LISTED), end="")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from adapters import registry
    from cases.generator import default_cases

    cases = default_cases(choose_many(args.kinds, KINDS, "kind"), choose_many(args.dtypes, DTYPES, "dtype"))
    adapters = [registry.load(f) for f in FRAMEWORKS]
    if args.what in ("all", "frameworks"):
        print("frameworks:")
        for a in adapters:
            why = a.unavailable()
            print(f"  {a.name:<11} {a.version() or '-':<14} {'unavailable: ' + why if why else 'available'}")
    if args.what in ("all", "apis"):
        print("apis (rows per case set: native supported / matched supported / cases):")
        for a in adapters:
            for api in a.apis:
                mine = [c for c in cases if api.supports(c.spec)]
                recs = [api.recipes(c.spec) for c in mine]
                nat = sum(r[0].code is not None for r in recs)
                mat = sum(r[1].code is not None for r in recs)
                print(f"  {a.name:<11} {api.name:<62} {nat:>4} / {mat:>4} / {len(mine):>4}")
    if args.what in ("all", "cases"):
        print(f"cases ({len(cases)}):")
        for c in cases:
            print(f"  {c.id:<58} {c.kind:<11} {c.shape_str}")
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
