"""Markdown pieces every report shares: tables and short numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (| and newlines in cells escaped)."""

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "inf"
    if x == 0:
        return "0"
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.2e}"


def collapsible(label: str, body: str) -> str:
    """`body` folded under `label` (GitHub renders <details>; the blank lines keep the Markdown inside)."""
    return f"<details><summary>{label}</summary>\n\n{body}\n\n</details>"
