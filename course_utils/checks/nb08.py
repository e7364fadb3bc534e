"""Checks for notebook 08 (ResNeXt): the parameter count of a grouped convolution."""

from __future__ import annotations

import random
from typing import Callable

from torch import nn

from ._common import expect_answer, expect_equal, passed

HINT_PARAMS = (
    "a grouped convolution is `groups` separate convolutions, each from in_channels / groups to "
    "out_channels / groups channels; every (input, output) channel pair inside a group has its own "
    "kernel_size x kernel_size kernel, and there is no bias"
)


def _cases(seed: int = 0, n: int = 30) -> list[tuple[int, int, int, int]]:
    """ResNeXt's own settings first, then random ones where ``groups`` divides both channel counts."""
    cases = [(128, 128, 3, 32), (256, 256, 3, 32), (64, 64, 3, 1), (64, 64, 3, 64), (256, 128, 1, 1), (16, 32, 3, 4)]
    rng = random.Random(seed)
    while len(cases) < n:
        groups = rng.choice([1, 2, 4, 8, 16, 32])
        cases.append((groups * rng.randint(1, 8), groups * rng.randint(1, 8), rng.choice([1, 3, 5, 7]), groups))
    return cases


def check_grouped_conv_params(fn: Callable[[int, int, int, int], int]) -> None:
    """``fn(in_channels, out_channels, kernel_size, groups)`` must equal the weights of that ``nn.Conv2d``."""
    cases = _cases()
    for c_in, c_out, k, g in cases:
        what = f"grouped_conv_params({c_in}, {c_out}, kernel_size={k}, groups={g})"
        got = fn(c_in, c_out, k, g)
        expect_answer(got, what, "the count", HINT_PARAMS)
        # On the meta device the layer has shapes but no data: nothing is allocated or initialised.
        expected = nn.Conv2d(c_in, c_out, k, groups=g, bias=False, device="meta").weight.numel()
        expect_equal(got, expected, what, HINT_PARAMS)
    passed(f"your count equals the weights of nn.Conv2d(..., groups=G, bias=False) on {len(cases)} shapes.")
