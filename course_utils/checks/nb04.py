"""Checks for notebook 04 (BasicBlock and Bottleneck)."""

from __future__ import annotations

import random

from torch import nn
from torchvision.models import resnet as tv_resnet

from ..inspect import count_flops
from ..models import Bottleneck, conv1x1, conv3x3
from ._common import expect_answer, expect_equal, passed

_HINT = (
    "a k x k convolution from a to b channels does k*k*a*b multiply-adds at every position of its *output* map, "
    "and the course counts 2 FLOPs per multiply-add. The 1x1 reduce works on the size x size input; the 3x3 "
    "has the stride, so it and the 1x1 expand after it produce maps of ceil(size / stride) per side. "
    "BatchNorm and ReLU are not counted."
)


def _real_branch(channels: int, width: int, stride: int) -> nn.Module:
    """The layers of a bottleneck residual branch, as real modules: 1x1 reduce, strided 3x3, 1x1 expand."""
    return nn.Sequential(
        conv1x1(channels, width), nn.BatchNorm2d(width), nn.ReLU(),
        conv3x3(width, width, stride), nn.BatchNorm2d(width), nn.ReLU(),
        conv1x1(width, channels), nn.BatchNorm2d(channels),
    )  # fmt: skip


def check_bottleneck_flops(fn) -> None:
    """``fn(channels, width, size, stride)`` must return the FLOPs of a bottleneck branch on a size x size map.

    Compared with ``count_flops`` of real modules (a stack of the branch's layers for random channels, widths,
    sizes and strides; torchvision's and the course's ``Bottleneck`` where ``channels == 4 * width``).
    """
    rng = random.Random(4)
    probe = fn(256, 64, 56, 1)
    expect_answer(probe, "bottleneck_flops", "the formula", _HINT)
    cases = [(256, 64, 56, 1), (256, 64, 56, 2), (64, 16, 7, 2)]
    cases += [
        (rng.randrange(8, 264, 8), rng.randrange(4, 132, 4), rng.randrange(3, 40), rng.choice((1, 2))) for _ in range(8)
    ]
    for channels, width, size, stride in cases:
        expected = count_flops(_real_branch(channels, width, stride), (1, channels, size, size))
        expect_equal(
            fn(channels, width, size, stride),
            expected,
            f"bottleneck_flops({channels}, {width}, {size}, {stride})",
            _HINT,
        )
    # The real blocks of torchvision and the course (width = channels / 4, as in ResNet-50; identity shortcut).
    for width, size in ((16, 56), (64, 28), (128, 14)):
        for name, block in (
            ("torchvision.models.resnet.Bottleneck", tv_resnet.Bottleneck(4 * width, width)),
            ("course_utils.models.Bottleneck", Bottleneck(4 * width, width)),
        ):
            expected = count_flops(block, (1, 4 * width, size, size))
            what = f"bottleneck_flops({4 * width}, {width}, {size}, 1) against {name}"
            expect_equal(fn(4 * width, width, size, 1), expected, what, _HINT)
    passed(
        f"your formula matches count_flops of real bottlenecks for {len(cases) + 6} settings "
        f"(e.g. 256 -> 64 -> 256 at 56x56: {fn(256, 64, 56, 1) / 1e6:,.1f} MFLOPs, "
        f"{fn(256, 64, 56, 2) / 1e6:,.1f} with stride 2)."
    )


__all__ = ["check_bottleneck_flops"]
