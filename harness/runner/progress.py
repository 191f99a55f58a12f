"""Progress on stderr: a live counter on a terminal, a line per finished job with --verbose."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Progress:
    """A live counter (case runs done, elapsed, current framework) when stderr is a terminal; one line
    per finished (framework, device) there or with --verbose; nothing with --quiet or when piped."""

    total: int
    quiet: bool = False
    verbose: bool = False
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    live: bool = field(default_factory=lambda: sys.stderr.isatty())
    t0: float = field(default_factory=time.perf_counter)

    def step(self, label: str) -> None:
        with self.lock:
            self.done += 1
            if self.live and not self.quiet:
                el = time.perf_counter() - self.t0
                print(f"\r  {self.done}/{self.total} case runs, {el:5.1f} s, {label}   ", end="", file=sys.stderr)

    def line(self, text: str) -> None:
        if self.quiet or not (self.live or self.verbose):
            return
        with self.lock:
            print(("\r" if self.live else "") + text + " " * 20, file=sys.stderr)
