"""One framework on one device kind, in its own process.

Frameworks never share a process: their thread pools, allocators and global flags (``jax_enable_x64``)
stay apart, and a framework that aborts or hangs takes only its worker down. The parent drives a
`Worker` case by case; a dead or silent worker becomes `crashed` or `timeout` rows for that case
and is restarted for the next.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import pickle
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from adapters import registry
from adapters.base import MODES, PASSES, Adapter, Result, Unavailable, error_text
from adapters.user import UserLoss
from cases.spec import Case, Inputs, LossSpec
from harness.runner.peak import peak_bytes, resident_set
from harness.runner.plan import Plan
from harness.runner.timing import Measurement, measure

STARTUP_TIMEOUT_S = 180.0  # TensorFlow's first import on a cold 2-core machine can take ~30 s


@dataclass(frozen=True)
class TimingRequest:
    """Time every API's matched recipe on one case, eager and compiled, forward and forward+backward."""

    case: Case
    budget_s: float


@dataclass(frozen=True)
class TimingResult:
    api: str
    mode: str
    pass_: str
    measurement: Measurement | None
    error: str = ""
    peak_bytes: int | None = None  # one more call's peak above its staged inputs (harness/runner/peak.py)
    peak_by: str = ""  # what counted it: the framework's allocator, or VmHWM (the worker's resident set)


def time_case(adapter: Adapter, request: TimingRequest, device: str) -> list[TimingResult]:
    """Runs in the worker. Inputs are staged once per (api, mode, pass) by the adapter's timer,
    outside the timed region."""
    case = request.case
    inputs = case.inputs()
    out = []
    for api in adapter.apis_for(case.spec):
        recipe = api.recipes(case.spec)[1]  # matched: what every framework computes the same way
        for mode in MODES:
            for pass_ in PASSES:
                if recipe.code is None:
                    out.append(TimingResult(api.name, mode, pass_, None, recipe.reason))
                    continue
                try:
                    arranged = adapter.arrange(recipe.name, case.spec, inputs)[0]
                    call, sync = adapter.timer(recipe.code, case.spec, arranged, case.dtype, device, mode, pass_)
                    m = measure(call, sync, budget_s=request.budget_s)
                    counters = adapter.memory_counters(device) or resident_set()  # for the call just staged
                    peak = None if counters is None else peak_bytes(call, sync, counters)
                    out.append(TimingResult(api.name, mode, pass_, m, peak_bytes=peak,
                                            peak_by=counters.source if counters else ""))  # fmt: skip
                except Unavailable as e:
                    out.append(TimingResult(api.name, mode, pass_, None, str(e)))
                except Exception as e:  # the framework raised: recorded, not fatal
                    out.append(TimingResult(api.name, mode, pass_, None, error_text(e)))
    return out


@dataclass(frozen=True)
class Hello:
    """What a worker reports once started: its framework version and concrete device, or why not."""

    version: str | None
    device: str | None
    reason: str | None  # set when the framework or device is unavailable
    threads: int | None = None
    versions: dict[str, str | None] | None = None  # every distribution the rows depend on
    isa: str | None = None  # the instruction set (or GPU) the framework's kernels use there
    python: dict[str, str] | None = None  # the interpreter it runs under: executable, version


CASE_DONE = "case done"  # the message that ends a case's results


def send(conn: Connection, obj: Any) -> None:
    """`conn.send`, but arrays go out of band (pickle protocol 5): their memory is written to the pipe
    as it is, where a plain pickle would first copy a gradient as large as the logits into one bytes
    object. A message is one frame with the pickle and the buffer count, then one frame per buffer."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    conn.send_bytes(len(buffers).to_bytes(4, "little") + data)
    for b in buffers:
        conn.send_bytes(b.raw())


def receive(conn: Connection) -> Any:
    """What `send` sent; arrays are rebuilt over the received frames without another copy."""
    head = conn.recv_bytes()
    buffers = [conn.recv_bytes() for _ in range(int.from_bytes(head[:4], "little"))]
    return pickle.loads(memoryview(head)[4:], buffers=buffers)


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


WARM_UP_CASE = Case(kind="timing", spec=LossSpec(), shape=(4, 3))


def warm_up(adapter: Adapter, device: str, cases: Sequence[Case] = ()) -> None:
    """Compile and run a 4x3 loss in every mode and pass before anything is timed, then make the eager
    first call of every recipe that will be timed on `cases`.

    A framework's first compile also pays for one-time setup of its compiler (inductor's ISA probe
    and precompiled header, ~10 s on a fresh machine; XLA's and tf.function's first-use costs), which
    would land in the compile time of whichever recipe happens to be timed first. An eager first call
    is not reported (only a compiled one is, as compile_s), but JAX's compiles each primitive for the
    new shapes (~1 s a call here): made here, it is spent while the accuracy pass runs, not while
    another framework waits to be timed.
    """
    case = WARM_UP_CASE
    inputs = case.inputs()
    for api in adapter.apis_for(case.spec)[:1]:
        code = api.recipes(case.spec)[1].code
        for mode in MODES:
            for pass_ in PASSES:
                _first_call(adapter, code, case, inputs, device, mode, pass_)
    for case in cases:
        inputs = case.inputs()
        for api in adapter.apis_for(case.spec):
            for pass_ in PASSES:
                _first_call(adapter, api.recipes(case.spec)[1].code, case, inputs, device, "eager", pass_)


def _first_call(
    adapter: Adapter, code: str | None, case: Case, inputs: Inputs, device: str, mode: str, pass_: str
) -> None:
    if code is None:
        return
    try:
        arranged = adapter.arrange("matched", case.spec, inputs)[0]
        call, sync = adapter.timer(code, case.spec, arranged, case.dtype, device, mode, pass_)
        sync(call())
    except Exception:  # the timing request will meet (and record) the same error
        pass


# Where compilers keep compiled code between processes (inductor, Triton). A timing worker points them
# at a directory of its own, so compile_s is a compile and not a load of an earlier run's result (JAX's
# timing workers never enable its persistent cache; tf.function keeps none).
COMPILER_CACHE_VARIABLES = {"TORCHINDUCTOR_CACHE_DIR": "inductor", "TRITON_CACHE_DIR": "triton"}


# Lines the frameworks' C++ logging (absl) writes to stderr whatever TF_CPP_MIN_LOG_LEVEL says (TensorFlow 2.19+,
# tensorflow#100442): info, warnings and errors that repeat what a row's `error` already holds. Fatal ones stay.
NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWE]\d{4} [\d:.]+\s+\d+ [^\]]+\] |WARNING: All log messages before absl::InitializeLog\(\)"
    # PaddlePaddle's import, whenever OMP_NUM_THREADS is not 1 (the harness sets each worker's threads)
    rb"|WARNING: OMP_NUM_THREADS set to \d+, not 1\.|PLEASE USE OMP_NUM_THREADS WISELY\.)"
)


def forward_stderr(fd: int, out: BinaryIO, keep_native_logs: bool) -> None:
    """Copy a worker's stderr (read end `fd`) to `out` line by line, without the frameworks' native log
    lines (unless `keep_native_logs`), until the worker exits; then close `fd`. Runs in the parent, so
    nothing is lost when the worker dies."""
    pending = b""
    try:
        while chunk := os.read(fd, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = [line + b"\n" for line in lines if keep_native_logs or not NATIVE_LOG_LINE.match(line)]
            if kept:
                out.write(b"".join(kept))
                out.flush()
    except OSError:
        pass
    finally:
        if pending and (keep_native_logs or not NATIVE_LOG_LINE.match(pending)):
            out.write(pending)
            out.flush()
        os.close(fd)


def serve(
    conn: Connection, framework: str, device_kind: str, debug: bool, threads: int | None = None,
    timing: bool = False, compiler_cache: str | None = None, cpus: tuple[int, ...] | None = None,
    warm: Sequence[Case] = (), user: UserLoss | None = None,
) -> None:  # fmt: skip
    """Worker process main loop: hello, then one reply per (Case, plan, repeats) (results) or TimingRequest
    (timings and the device's copy bandwidth) received, until None. A `timing` worker warms its
    framework's compiler up before saying hello; `compiler_cache` is a fresh directory for the
    compilers' on-disk caches; `cpus`, the CPUs the process may run on; `warm`, the cases a timing
    worker will time (`warm_up`); `user`, the user's function a verifying worker runs instead of the
    framework's APIs (`harness.verify`)."""
    # Ctrl-C reaches the whole process group; the parent decides what an interrupt means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cpus:  # before any framework is imported: XLA reads the CPU count once, to size its pools
        os.sched_setaffinity(0, cpus)
    if threads:  # before any framework is imported: every framework gets the same intra-op threads
        for var in THREAD_VARIABLES:
            os.environ[var] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    if compiler_cache:
        for var, sub in COMPILER_CACHE_VARIABLES.items():
            os.environ[var] = os.path.join(compiler_cache, sub)
    adapter = registry.load(framework)
    if user is not None:
        adapter = adapter.verifying(user)
    elif not timing:  # before the framework is imported; a timing worker's compiles stay real compiles
        adapter.keep_compiled()
    reason, device, isa = adapter.unavailable(), None, None
    if reason is None:
        try:
            device = adapter.device(device_kind)
            threads = adapter.threads() or threads
            isa = adapter.isa(device)
        except Unavailable as e:
            reason = str(e)
        except Exception as e:  # a framework that fails to initialise is a reason, not a crash
            reason = f"could not start: {error_text(e)}"
    if timing and reason is None and device is not None:
        warm_up(adapter, device, warm)
    python = {"executable": sys.executable, "version": platform.python_version()}
    send(conn, Hello(adapter.version(), device, reason, threads, adapter.versions(), isa, python))
    bandwidth: float | None = None
    while True:
        request = conn.recv()
        if request is None:
            return
        if isinstance(request, TimingRequest):
            if bandwidth is None:
                bandwidth = adapter.bandwidth_gbps(device)
            send(conn, (time_case(adapter, request, device), bandwidth))
        else:
            # one message per result, so that neither side holds a whole case's gradients; arrays
            # are freed by reference counting as they go (a full gc would cost ~0.2 s a case)
            case, plan, repeats = request
            for result in adapter.iter_case(case, device, debug, plan, repeats):
                send(conn, result)
                del result  # before the next is computed: one result's arrays at a time
            send(conn, CASE_DONE)


def main() -> None:
    """A worker process' entry point (``python -c "from harness.runner.worker import main; main()"``): connect
    back to the parent (address and key in the environment), receive `serve`'s arguments, serve."""
    from multiprocessing.connection import Client

    conn = Client(os.environ.pop(ADDRESS_VARIABLE))
    path, args = conn.recv()
    sys.path.extend(p for p in path if p not in sys.path)  # after its own: the caller's modules never shadow
    serve(conn, *args)
    # Done: skip the interpreter's teardown (0.6-1.5 s of collecting TensorFlow's or torch's modules, which the parent
    # would wait for between two frameworks' timings). Nothing is left to do: every result is sent, and what a worker
    # keeps on disk (compiled programs) is written when made.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


ADDRESS_VARIABLE = "CE_HARNESS_WORKER_ADDRESS"
ENTRY = "from harness.runner.worker import main; main()"


def code_path() -> str:
    """A directory holding only the harness' packages (links to them), for a worker's PYTHONPATH: another
    interpreter imports the harness from there and everything else (its framework, numpy) from its own
    environment, where putting the harness' own site-packages on its path would shadow them."""
    root = Path(tempfile.gettempdir()) / f"ce-harness-code-{os.getuid()}-{_code_digest()}"
    if not root.is_dir():
        staging = Path(tempfile.mkdtemp(prefix="ce-harness-code-"))
        for package in ("harness", "adapters", "cases"):
            (staging / package).symlink_to(Path(importlib.import_module(package).__file__).parent)
        try:
            staging.rename(root)
        except OSError:  # another worker made it first: the same links
            shutil.rmtree(staging, ignore_errors=True)
    return str(root)


def _code_digest() -> str:
    """Where this harness' packages live, hashed: one links directory per installation."""
    here = str(Path(__file__).resolve().parents[2])
    return hashlib.sha1(here.encode()).hexdigest()[:12]


def caller_path() -> list[str]:
    """The caller's import path outside its Python installation (its script's directory, the working
    directory, PYTHONPATH): where a user's loss named as ``module:function`` (or pickled by reference) lives."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    out = []
    for p in sys.path:
        full = os.path.realpath(p or os.getcwd())
        if not any(full == r or full.startswith(r + os.sep) for r in roots):
            out.append(full)
    return out


class Child:
    """A worker process started with `subprocess` (any interpreter), with the handful of
    `multiprocessing.Process` methods the parent uses."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self.popen = popen
        self.pid = popen.pid

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()  # negative: killed by that signal, as multiprocessing reports it


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

    def __init__(
        self, framework: str, device_kind: str, debug: bool = False, threads: int | None = None,
        timing: bool = False, cpus: tuple[int, ...] | None = None, warm: Sequence[Case] = (),
        user: UserLoss | None = None, python: str | None = None,
    ) -> None:  # fmt: skip
        self.framework, self.device_kind, self.debug, self.threads = framework, device_kind, debug, threads
        self.python = python or sys.executable  # the interpreter it runs under (`--python FW=PATH`)
        self.user = user  # a verifying worker: the user's function is its one API
        self.cpus = cpus  # the CPUs it may run on (None: all of this process's)
        self.timing = timing  # a timing worker: warms the compiler up before its hello
        self.warm = tuple(warm)  # the cases a timing worker will time (their eager first calls in its warm-up)
        self.compiler_cache: str | None = None  # its compilers' cache directory, removed with it
        self.process: Child | None = None
        self.conn: Connection | None = None
        self.hello: Hello | None = None

    def start(self) -> Hello:
        """Start the process and wait for its hello."""
        self.spawn()
        return self.handshake()

    def spawn(self) -> None:
        """Start the process without waiting: it imports its framework while the caller goes on.

        A fresh interpreter (`python`, this one by default) runs `main`, connects back over a local socket and
        receives its arguments: nothing of the parent's state (imported frameworks, ``__main__``, sys.path)
        reaches it, so another environment's interpreter serves its own framework versions."""
        self._remove_compiler_cache()  # a restarted worker starts from nothing, as the first did
        if self.timing:
            self.compiler_cache = tempfile.mkdtemp(prefix=f"ce-harness-{self.framework}-")
        args = (
            self.framework, self.device_kind, self.debug, self.threads, self.timing, self.compiler_cache,
            self.cpus, self.warm, self.user,
        )  # fmt: skip
        home = tempfile.mkdtemp(prefix="ce-harness-worker-")  # private (0700): only this user can connect
        address = os.path.join(home, "socket")
        try:
            with socket.socket(socket.AF_UNIX) as listener:
                listener.bind(address)
                listener.listen(1)
                listener.settimeout(0.2)
                env = {**os.environ, ADDRESS_VARIABLE: address}
                env["PYTHONPATH"] = os.pathsep.join(filter(None, (code_path(), os.environ.get("PYTHONPATH"))))
                popen = subprocess.Popen([self.python, "-c", ENTRY], env=env, stdin=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)  # fmt: skip
                self.process = Child(popen)
                # the read end now belongs to the forwarding thread, which closes it at the worker's exit
                fd = os.dup(popen.stderr.fileno())
                popen.stderr.close()
                out = getattr(sys.stderr, "buffer", None) or sys.__stderr__.buffer
                threading.Thread(target=forward_stderr, args=(fd, out, self.debug), daemon=True).start()
                self.conn = self._accept(listener)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        if self.conn is not None:
            self.conn.send((caller_path(), args))

    def _accept(self, listener: socket.socket) -> Connection | None:
        """The worker's connection, or None if it exited (or stayed silent) before connecting: `handshake`
        then says which."""
        deadline = time.perf_counter() + STARTUP_TIMEOUT_S
        while self.process.is_alive() and time.perf_counter() < deadline:
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            sock.setblocking(True)
            return Connection(sock.detach())
        return None

    def handshake(self) -> Hello:
        """The hello of a spawned worker (its version and device, or why it cannot run)."""
        parent = self.conn
        if parent is None:
            self.process.join(5)
            if self.process.is_alive():
                self.kill()
                raise WorkerDied("timeout", f"worker did not start within {STARTUP_TIMEOUT_S:.0f} s")
            raise WorkerDied("crashed", f"worker died while starting: {describe_exit(self.process.exitcode)}")
        if not parent.poll(STARTUP_TIMEOUT_S):
            self.kill()
            raise WorkerDied("timeout", f"worker did not start within {STARTUP_TIMEOUT_S:.0f} s")
        try:
            self.hello = receive(parent)
        except (EOFError, OSError):
            self.process.join(5)
            raise WorkerDied("crashed", f"worker died while starting: {describe_exit(self.process.exitcode)}") from None
        return self.hello

    def run(self, request: TimingRequest, timeout_s: float, stop: threading.Event | None = None) -> tuple[Any, float]:
        """The one reply to a timing request and the seconds it took, or raise WorkerDied/Interrupted."""
        t0 = time.perf_counter()
        self._send(request)
        return self._receive(t0 + timeout_s, timeout_s, stop), time.perf_counter() - t0

    def results(
        self,
        case: Case,
        timeout_s: float,
        stop: threading.Event | None = None,
        plan: Plan | None = None,
        repeats: int = 1,
    ) -> Iterator[Result]:
        """The results of one case as the worker sends them; raises WorkerDied or Interrupted.

        The time limit holds for the whole case; a caller that stops early must not reuse the worker.
        """
        deadline = time.perf_counter() + timeout_s
        self._send((case, plan, repeats))
        while True:
            message = self._receive(deadline, timeout_s, stop)
            if isinstance(message, str) and message == CASE_DONE:
                return
            yield message
            del message  # before the next arrives: one result's arrays at a time

    def _send(self, message: Any) -> None:
        assert self.conn is not None
        try:
            self.conn.send(message)
        except (OSError, BrokenPipeError):
            self._died()

    def _receive(self, deadline: float, timeout_s: float, stop: threading.Event | None) -> Any:
        """The next message; polls in short slices so that `stop` (an interrupt) is honoured within ~0.2 s."""
        assert self.conn is not None
        try:
            while not self.conn.poll(0.2):
                if stop is not None and stop.is_set():
                    self.kill()
                    raise Interrupted
                if time.perf_counter() > deadline:
                    self.kill()
                    raise WorkerDied("timeout", f"no answer within --case-timeout={timeout_s:g} s; worker restarted")
            return receive(self.conn)
        except (EOFError, OSError, BrokenPipeError):
            self._died()

    def _died(self) -> NoReturn:
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
        if self.process is not None:
            self.process.join(5)  # reaped: no zombie left behind
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self._remove_compiler_cache()

    def _remove_compiler_cache(self) -> None:
        if self.compiler_cache is not None:
            shutil.rmtree(self.compiler_cache, ignore_errors=True)  # inductor's headers alone are ~150 MB
            self.compiler_cache = None
