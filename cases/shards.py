"""Splitting a case set into shards (``run --shard K/N``): each machine runs its part, `report` merges them."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

from cases.names import UsageError
from cases.spec import Case

SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> (2, 4), or a one-line UsageError."""
    m = SHARD.fullmatch(text)
    k, n = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if not 1 <= k <= n:
        raise UsageError(f"Expected --shard K/N with 1 <= K <= N. Received: --shard={text!r}")
    return k, n


def shard_of(case_id: str, n: int) -> int:
    """The shard (1..n) a case belongs to: a CRC of its id, so the split does not depend on the order
    or the number of the other cases, nor on Python's per-process hash salt."""
    return zlib.crc32(case_id.encode()) % n + 1


def shard_cases(cases: Sequence[Case], k: int, n: int) -> list[Case]:
    """Shard K of N (K in 1..N) of a case list, in the list's order; the N shards partition it."""
    if not (isinstance(k, int) and isinstance(n, int) and 1 <= k <= n):
        raise UsageError(f"Expected --shard K/N with 1 <= K <= N. Received: --shard='{k}/{n}'")
    return [c for c in cases if shard_of(c.id, n) == k]
