"""Check for notebook 05: the output size of a convolution or pooling layer."""

from __future__ import annotations

import random
from typing import Callable

import torch
from torch import nn

from ._common import expect_answer, expect_equal, passed
from ._exercise import exercise

_HINT = (
    "pad the input on both sides, then count the positions where the kernel fits when it moves `stride` "
    "steps at a time (the formula above the exercise); use // for the floor, so the result is an int"
)


@exercise("conv_output_size")
def check_conv_output_size(fn: Callable[..., int]) -> None:
    """``fn(size, kernel, stride, padding)`` must be the int size nn.Conv2d and nn.MaxPool2d output (random cases)."""
    cases = [(224, 7, 2, 3), (112, 3, 2, 1), (56, 3, 1, 1), (56, 3, 2, 1), (56, 1, 2, 0), (7, 7, 1, 0), (32, 3, 1, 1)]
    rng = random.Random(0)
    for kernel in (rng.randint(1, 7) for _ in range(23)):
        padding = rng.randint(0, kernel // 2)
        cases.append((rng.randint(max(1, kernel - 2 * padding), 64), kernel, rng.randint(1, 4), padding))
    for size, kernel, stride, padding in cases:
        what = f"conv_output_size(size={size}, kernel={kernel}, stride={stride}, padding={padding})"
        got = fn(size, kernel, stride, padding)
        expect_answer(got, what, "the formula", _HINT)
        x = torch.zeros(1, 1, size, size)
        expected = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding)(x).shape[-1]
        assert nn.MaxPool2d(kernel, stride=stride, padding=padding)(x).shape[-1] == expected  # the same rule
        expect_equal(got, expected, what, _HINT)
        expect_equal(type(got), int, f"the type of {what}", _HINT)
    passed(
        "your formula gives the output size of nn.Conv2d and nn.MaxPool2d on "
        f"{len(cases)} settings, including ResNet-34's 224 -> 112 -> 56 -> 28 -> 14 -> 7."
    )
