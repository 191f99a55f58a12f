"""A run's directory: rows appended as they complete, final files written atomically.

``rows.jsonl`` grows one line per row while the run goes, so an interrupted run keeps what it
finished and ``--resume`` can skip it. Every other file is written to a temporary name and renamed,
so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from cases.names import UsageError


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a published report must be readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunStore:
    """Files of one run under `path` (reports/runs/<run_id>/ by default)."""

    ROWS = "rows.jsonl"
    TIMING = "timing.jsonl"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: Path) -> RunStore:
        """Make the directory for a new run; a one-line UsageError if it cannot be written or
        already holds a run (which is never overwritten: resume it or choose another --out)."""
        path = Path(path)
        if (path / cls.ROWS).exists() or (path / "options.json").exists():
            raise UsageError(
                f"Expected an --out directory without a run in it. Received: --out={str(path)!r} "
                f"(holds a run: pass --resume {path} to complete it, or choose another --out)"
            )
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            got = f"--out={str(path)!r} ({e.strerror})"
            raise UsageError(f"Expected a writable --out directory. Received: {got}") from None
        return cls(path)

    def append(self, rows: Iterable[Any], name: str = ROWS) -> None:
        """One JSON line per item (a case's rows go in as one item, so a kill never splits them)."""
        with open(self.path / name, "a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, default=str) + "\n")
            f.flush()

    def rows(self, name: str = ROWS) -> list[Any]:
        """Lines written so far; a last line cut short by a kill is dropped."""
        p = self.path / name
        if not p.exists():
            return []
        out = []
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def write_table(self, name: str, df: pd.DataFrame) -> None:
        """``name.parquet`` and ``name.csv``."""
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write(self.path / f"{name}.parquet", buf.getvalue())
        atomic_write(self.path / f"{name}.csv", df.to_csv(index=False).encode())

    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.path / name, text.encode())

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write(self.path / name, (json.dumps(obj, indent=2, default=str) + "\n").encode())

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())
