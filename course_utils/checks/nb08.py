"""Checks for notebook 08 (ResNeXt): the parameter count of a grouped convolution."""

import random
from typing import Callable

from torch import nn

from ._common import expect_answer, expect_equal, passed
from ._exercise import exercise

HINT = (
    "a grouped convolution is `groups` separate convolutions, each from in_channels / groups to out_channels / groups "
    "channels, with a kernel_size x kernel_size kernel for every (input, output) channel pair in a group, no bias"
)


@exercise("grouped_conv_params")
def check_grouped_conv_params(fn: Callable[[int, int, int, int], int]) -> None:
    """``fn(in_channels, out_channels, kernel_size, groups)`` must equal the weights of that ``nn.Conv2d``."""
    rng = random.Random(0)
    cases = [(128, 128, 3, 32), (256, 256, 3, 32), (64, 64, 3, 1), (64, 64, 3, 64), (256, 128, 1, 1), (16, 32, 3, 4)]
    for g in rng.choices([1, 2, 4, 8, 16, 32], k=24):  # random shapes where groups divides both channel counts
        cases.append((g * rng.randint(1, 8), g * rng.randint(1, 8), rng.choice([1, 3, 5, 7]), g))
    for c_in, c_out, k, g in cases:
        what = f"grouped_conv_params({c_in}, {c_out}, kernel_size={k}, groups={g})"
        got = fn(c_in, c_out, k, g)
        expect_answer(got, what, "the count", HINT)
        # On the meta device a layer has shapes but no data: nothing is allocated or initialised.
        expect_equal(got, nn.Conv2d(c_in, c_out, k, groups=g, bias=False, device="meta").weight.numel(), what, HINT)
    passed(f"your count equals the weights of nn.Conv2d(..., groups=G, bias=False) on {len(cases)} shapes.")
