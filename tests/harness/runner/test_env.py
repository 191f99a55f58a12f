"""env.json names the machine (issue 20): configured, from $HARNESS_MACHINE, or the hostname and the hardware."""

from __future__ import annotations

import os
import platform

import pytest

from harness.runner.env import (
    MACHINE_VARIABLE,
    cpu_instruction_set,
    cpu_model,
    environment,
    gpu_instruction_sets,
    gpu_names,
    hardware_name,
    this_machine,
)


def test_hardware_name_reads_cpu_cores_and_gpus() -> None:
    assert hardware_name("AMD EPYC 9654", 16, ["NVIDIA H100", "NVIDIA H100"]) == "AMD EPYC 9654 (16 cores) / NVIDIA H100"
    assert hardware_name("", None, []) == "unknown CPU"


def test_the_machine_is_configured_or_the_host_and_its_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MACHINE_VARIABLE, raising=False)
    default = f"{platform.node()}: {hardware_name(cpu_model(), os.cpu_count(), gpu_names())}"
    assert this_machine() == default and this_machine() == this_machine(), "stable"
    monkeypatch.setenv(MACHINE_VARIABLE, "lab box")
    assert this_machine() == "lab box" and this_machine(" ci-x64 ") == "ci-x64", "--machine wins, then the variable"


def test_env_json_records_the_machine_and_its_instruction_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MACHINE_VARIABLE, raising=False)
    env = environment("python -m harness run", {}, machine="runner-arm64")
    assert env["machine"] == "runner-arm64" and env["hostname"] == platform.node()
    assert env["cpu_isa"] == cpu_instruction_set() and env["gpu_isa"] == gpu_instruction_sets()
    if not gpu_names():  # no NVIDIA driver: no compute capability either
        assert env["gpu_isa"] == []
    assert environment("x", {})["machine"] == this_machine()
