"""Checks for notebook 05 (ResNet-34): the output size of a convolution or pooling layer."""

from __future__ import annotations

import random
from typing import Callable

import torch
from torch import nn

from ._common import expect_answer, expect_equal, passed

HINT_SIZE = (
    "pad the input on both sides, then count the positions where the kernel fits when it moves `stride` "
    "steps at a time (the formula above the exercise); use // for the floor, so the result is an int"
)


def _cases(seed: int = 0, n: int = 30) -> list[tuple[int, int, int, int]]:
    """The ResNet-34 stem and stages, then random (size, kernel, stride, padding) settings."""
    cases = [(224, 7, 2, 3), (112, 3, 2, 1), (56, 3, 1, 1), (56, 3, 2, 1), (56, 1, 2, 0), (7, 7, 1, 0), (32, 3, 1, 1)]
    rng = random.Random(seed)
    while len(cases) < n:
        kernel = rng.randint(1, 7)
        padding = rng.randint(0, kernel // 2)
        size = rng.randint(max(1, kernel - 2 * padding), 64)
        cases.append((size, kernel, rng.randint(1, 4), padding))
    return cases


def check_conv_output_size(fn: Callable[..., int]) -> None:
    """``fn(size, kernel, stride, padding)`` must give the output size nn.Conv2d and nn.MaxPool2d produce."""
    for size, kernel, stride, padding in _cases():
        got = fn(size, kernel, stride, padding)
        what = f"conv_output_size(size={size}, kernel={kernel}, stride={stride}, padding={padding})"
        expect_answer(got, what, "the formula", HINT_SIZE)
        x = torch.zeros(1, 1, size, size)
        conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, bias=False)
        pool = nn.MaxPool2d(kernel, stride=stride, padding=padding)
        with torch.no_grad():
            expected = conv(x).shape[-1]
            assert pool(x).shape[-1] == expected  # pooling follows the same rule
        expect_equal(got, expected, what, HINT_SIZE)
        if not isinstance(got, int):
            raise AssertionError(f"{what}: expected an int, got {type(got).__name__} {got!r}. Hint: {HINT_SIZE}")
    passed(
        "your formula gives the output size of nn.Conv2d and nn.MaxPool2d on "
        f"{len(_cases())} settings, including ResNet-34's 224 -> 112 -> 56 -> 28 -> 14 -> 7."
    )
