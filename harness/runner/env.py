"""env.json: what a result depends on besides the code (docs/DESIGN.md, "Results")."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.version import __version__

ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=5)
        return out + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
              "avx512_fp16", "amx_tile", "amx_bf16", "neon", "asimd", "sve", "sve2")  # fmt: skip


def cpu_instruction_set() -> str:
    """The CPU's SIMD extensions that decide which kernels the frameworks run (from /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    found = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            found |= set(line.split(":", 1)[1].split())
            break
    return " ".join(f for f in SIMD_FLAGS if f in found) or platform.machine()


def no_gpu_reason() -> str | None:
    """Why no framework can have a GPU here (no NVIDIA or AMD device node), or None if one may.

    Checked before starting GPU workers, so a CPU-only machine does not import every framework just
    to be told so."""
    if Path("/dev/nvidiactl").exists() or any(Path("/dev").glob("nvidia[0-9]*")) or Path("/dev/kfd").exists():
        return None
    return "no GPU: this machine has no NVIDIA or AMD GPU device (/dev/nvidia*, /dev/kfd)"


def present_devices() -> tuple[str, ...]:
    """The device kinds this machine has: cpu, and gpu where a GPU device node exists."""
    return ("cpu",) if no_gpu_reason() else ("cpu", "gpu")


def gpu_names() -> list[str]:
    """NVIDIA GPUs as nvidia-smi names them (empty where there is none or no driver)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def gpu_instruction_sets() -> list[str]:
    """Each NVIDIA GPU's instruction set as its compute capability (``sm_90``; empty where none)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    caps = [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []
    return ["sm_" + c.replace(".", "") for c in caps]


MACHINE_VARIABLE = "HARNESS_MACHINE"  # the machine's name where --machine is not given


def hardware_name(cpu: str, cores: int | None, gpus: list[str]) -> str:
    """``AMD EPYC 9654 (16 cores) / NVIDIA H100 80GB HBM3``: the CPU model and core count, then the GPUs."""
    head = (cpu or "unknown CPU") + (f" ({cores} cores)" if cores else "")
    return " / ".join([head, *dict.fromkeys(gpus)])


def this_machine(configured: str | None = None) -> str:
    """The name a run's rows are filed under (env.json ``machine``; merged reports pair rows by it and put
    machines side by side): `configured` (``--machine``), else $HARNESS_MACHINE, else the hostname and the
    hardware (``node7: AMD EPYC 9654 (16 cores) / NVIDIA H100 80GB HBM3``). Stable across runs on one box;
    name shards that run on several boxes of one kind alike (a CI runner label, a SLURM partition)."""
    name = (configured or os.environ.get(MACHINE_VARIABLE) or "").strip()
    return name or f"{platform.node()}: {hardware_name(cpu_model(), os.cpu_count(), gpu_names())}"


def environment(command: str, frameworks: dict[str, dict[str, Any]], machine: str | None = None) -> dict[str, Any]:
    """Everything but the per-framework part, which the workers report (version, devices, threads)."""
    return {
        "harness_version": __version__,
        "git_commit": git_commit(),
        "frameworks": frameworks,
        "machine": this_machine(machine),
        "hostname": platform.node(),
        "cpu": cpu_model(),
        "cpu_isa": cpu_instruction_set(),
        "gpus": gpu_names(),
        "gpu_isa": gpu_instruction_sets(),
        "cpu_count": os.cpu_count(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": __import__("numpy").__version__,
        "utc_time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command,
    }
