"""The adapter contract's shared pieces (adapters/base.py)."""

from __future__ import annotations

import pytest

from adapters.base import error_text


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # TensorFlow 2.21's messages for a label outside [0, C), as the rows held them before
        (
            "{{function_node __wrapped__GatherV2_device_/job:localhost/replica:0/task:0/device:CPU:0}} indices[1] = -100 "
            "is not in [0, 10) [Op:GatherV2] name: ",
            "indices[1] = -100 is not in [0, 10) [Op:GatherV2]",
        ),
        (
            "{{function_node __wrapped__SparseSoftmaxCrossEntropyWithLogits_device_/job:localhost/replica:0/task:0/device:"
            "CPU:0}} Received a label value of 13 which is outside the valid range of [0, 10).  Label values: 13 13 5 4 4 "
            "9 9 0 3 7 [Op:SparseSoftmaxCrossEntropyWithLogits] name:",
            "Received a label value of 13 which is outside the valid range of [0, 10).  Label values: 13 13 5 4 ... "
            "[Op:SparseSoftmaxCrossEntropyWithLogits]",
        ),
        (
            "index 10 is out of bounds for dimension 1 with size 10\nmore",
            "index 10 is out of bounds for dimension 1 with size 10",
        ),
        # torch.compile's kernel for a label outside [0, C): where the kernel was cached is not the reason
        (
            "kernel, /tmp/torchinductor_root/24/c24ts2hzjbrmddtold2vlabqk3kc2i432pu2gt4oa236m2mcg3i5.main.cpp:116, "
            "index out of bounds: 0 <= tmp11 < ks0",
            "kernel, <inductor kernel>.cpp:116, index out of bounds: 0 <= tmp11 < ks0",
        ),
    ],
)
def test_error_text_keeps_the_reason_and_drops_the_noise(message: str, expected: str) -> None:
    class InvalidArgumentError(Exception):
        pass

    assert error_text(InvalidArgumentError(message)) == f"InvalidArgumentError: {expected}"
