"""`harness.report(...)`, `harness.compare(...)` and `harness.catalog(...)`: reports of runs that exist, and
what a run would do, from Python as from the command line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from adapters import registry
from cases.generator import default_cases
from cases.names import DTYPES, KINDS, UsageError, choose_many
from harness.render.compare import compare_runs
from harness.render.html import write_html
from harness.render.load import load_run
from harness.render.merge import write_merged
from harness.render.porting import porting_guide
from harness.render.summary import NOT_OK_LISTED, summary_of
from harness.runner.store import atomic_write


def report(
    runs: Sequence[str | Path], out: str | Path | None = None, publish: str | Path | None = None,
    porting: str | Path | None = None,
) -> list[Path]:  # fmt: skip
    """report.html for one run, or several runs (shards, machines) merged into `out`; optionally summary.md
    written to `publish` (reports/cpu.md; rendered from the run's tables, so it lists every row whichever
    version wrote the run) and the porting guide written to `porting`. Returns the files."""
    runs = [Path(r) for r in runs]
    if not runs:
        raise UsageError("Expected at least one run directory. Received: none")
    if len(runs) > 1 and out is None:
        raise UsageError(f"Expected --out DIR to merge {len(runs)} runs. Received: no --out")
    path = write_merged(runs, Path(out)) if out is not None else write_html(runs[0])
    written = [path]
    if publish is not None:
        atomic_write(Path(publish), summary_of(load_run(path.parent)).encode())
        written.append(Path(publish))
    if porting is not None:
        run = load_run(path.parent)
        atomic_write(Path(porting), porting_guide(run.accuracy, run.env).encode())
        written.append(Path(porting))
    return written


def compare(run_a: str | Path, run_b: str | Path, verbose: bool = False) -> str:
    """What changed from run A to run B (Markdown): outcomes, errors, timings, versions, machines."""
    return compare_runs(Path(run_a), Path(run_b), None if verbose else NOT_OK_LISTED)


def catalog(what: str = "all", kinds: str | Iterable[str] = "all", dtypes: str | Iterable[str] = "all") -> str:
    """The frameworks (installed or why not), their APIs (rows per case set) and the cases, as text."""
    cases = default_cases(choose_many(kinds, KINDS, "kind"), choose_many(dtypes, DTYPES, "dtype"))
    adapters = [registry.load(f) for f in registry.FRAMEWORKS]
    lines = []
    if what in ("all", "frameworks"):
        lines.append("frameworks:")
        for a in adapters:
            why = a.unavailable()
            lines.append(f"  {a.name:<11} {a.version() or '-':<14} {'unavailable: ' + why if why else 'available'}")
    if what in ("all", "apis"):
        lines.append("apis (rows per case set: native supported / matched supported / cases):")
        for a in adapters:
            for api in a.apis:
                mine = [c for c in cases if api.supports(c.spec)]
                recs = [api.recipes(c.spec) for c in mine]
                nat = sum(r[0].code is not None for r in recs)
                mat = sum(r[1].code is not None for r in recs)
                lines.append(f"  {a.name:<11} {api.name:<62} {nat:>4} / {mat:>4} / {len(mine):>4}")
    if what in ("all", "cases"):
        lines.append(f"cases ({len(cases)}):")
        lines += [f"  {c.id:<58} {c.kind:<11} {c.shape_str}" for c in cases]
    return "\n".join(lines)
