"""One framework on one device kind, in its own process.

Frameworks never share a process: their thread pools, allocators and global flags (``jax_enable_x64``)
stay apart, and a framework that aborts or hangs takes only its worker down. The parent drives a
`Worker` case by case; a dead or silent worker becomes `crashed` or `timeout` rows for that case
and is restarted for the next.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from adapters import registry
from adapters.base import Result, Unavailable, error_text
from cases.spec import Case

STARTUP_TIMEOUT_S = 180.0  # TensorFlow's first import on a cold 2-core machine can take ~30 s


@dataclass(frozen=True)
class Hello:
    """What a worker reports once started: its framework version and concrete device, or why not."""

    version: str | None
    device: str | None
    reason: str | None  # set when the framework or device is unavailable
    threads: int | None = None


def serve(conn: Connection, framework: str, device_kind: str, debug: bool) -> None:
    """Worker process main loop: hello, then one list of Results per Case received, until None."""
    # Ctrl-C reaches the whole process group; the parent decides what an interrupt means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    adapter = registry.load(framework)
    reason, device, threads = adapter.unavailable(), None, None
    if reason is None:
        try:
            device = adapter.device(device_kind)
            threads = adapter.threads()
        except Unavailable as e:
            reason = str(e)
        except Exception as e:  # a framework that fails to initialise is a reason, not a crash
            reason = f"could not start: {error_text(e)}"
    conn.send(Hello(adapter.version(), device, reason, threads))
    while True:
        case = conn.recv()
        if case is None:
            return
        conn.send(adapter.run_case(case, device, debug))


class Interrupted(Exception):
    """The run was interrupted while a case was in flight; the case is not recorded."""


class WorkerDied(Exception):
    """The worker process exited or stopped answering; the message is the row's error."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name} (exit {code})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class Worker:
    """Parent-side handle of a worker process for (framework, device kind)."""

    def __init__(self, framework: str, device_kind: str, debug: bool = False) -> None:
        self.framework, self.device_kind, self.debug = framework, device_kind, debug
        self.process: Any = None
        self.conn: Connection | None = None
        self.hello: Hello | None = None

    def start(self) -> Hello:
        ctx = mp.get_context("spawn")  # fork would copy the parent's state (and any imported framework)
        parent, child = ctx.Pipe()
        self.process = ctx.Process(
            target=serve, args=(child, self.framework, self.device_kind, self.debug), daemon=True
        )
        self.process.start()
        child.close()
        self.conn = parent
        if not parent.poll(STARTUP_TIMEOUT_S):
            self.kill()
            raise WorkerDied("timeout", f"worker did not start within {STARTUP_TIMEOUT_S:.0f} s")
        try:
            self.hello = parent.recv()
        except (EOFError, OSError):
            self.process.join(5)
            raise WorkerDied("crashed", f"worker died while starting: {describe_exit(self.process.exitcode)}") from None
        return self.hello

    def run(self, case: Case, timeout_s: float, stop: threading.Event | None = None) -> tuple[list[Result], float]:
        """The results for one case and the seconds it took, or raise WorkerDied.

        Waits in short slices so that `stop` (an interrupt of the run) is honoured within ~0.2 s.
        """
        assert self.conn is not None
        t0 = time.perf_counter()
        try:
            self.conn.send(case)
            while not self.conn.poll(0.2):
                if stop is not None and stop.is_set():
                    self.kill()
                    raise Interrupted
                if time.perf_counter() - t0 > timeout_s:
                    self.kill()
                    raise WorkerDied("timeout", f"no answer within --case-timeout={timeout_s:g} s; worker restarted")
            return self.conn.recv(), time.perf_counter() - t0
        except (EOFError, OSError, BrokenPipeError):
            self.process.join(5)
            code = self.process.exitcode
            self.conn = None
            raise WorkerDied("crashed", f"worker {describe_exit(code)}; restarted for the remaining cases") from None

    def stop(self) -> None:
        if self.conn is not None and self.process is not None and self.process.is_alive():
            try:
                self.conn.send(None)
                self.process.join(10)
            except (OSError, BrokenPipeError):
                pass
        self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.is_alive():
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.join(5)
        if self.conn is not None:
            self.conn.close()
            self.conn = None
