"""Checks for notebook 04 (BasicBlock and Bottleneck)."""

from __future__ import annotations

import random

from torch import nn
from torchvision.models import resnet as tv_resnet

from ..inspect import count_parameters
from ..models import Bottleneck, conv1x1, conv3x3
from ._common import expect_answer, expect_equal, passed

_HINT = (
    "a bottleneck has three convolutions without bias: 1x1 from `channels` to `width`, 3x3 from `width` to "
    "`width`, 1x1 from `width` back to `channels` (a k x k conv from a to b channels has k*k*a*b weights). "
    "With bn=True, each conv is followed by a BatchNorm with two parameters (gamma and beta) per channel of its "
    "output; the running mean and variance are buffers, not parameters."
)


def _real_bottleneck(channels: int, width: int, bn: bool) -> nn.Module:
    """The layers of a bottleneck residual branch, as real modules: 1x1 reduce, 3x3, 1x1 expand."""

    def norm(c: int) -> nn.Module:
        return nn.BatchNorm2d(c) if bn else nn.Identity()

    return nn.Sequential(
        conv1x1(channels, width), norm(width), nn.ReLU(),
        conv3x3(width, width), norm(width), nn.ReLU(),
        conv1x1(width, channels), norm(channels),
    )  # fmt: skip


def check_bottleneck_params(fn) -> None:
    """``fn(channels, width, bn)`` must return the parameter count of a bottleneck ``channels -> width -> channels``.

    Compared with ``count_parameters`` of real modules (torchvision's and the
    course's ``Bottleneck`` where ``channels == 4 * width``, a stack of the same
    convolutions and BatchNorms otherwise) for random channel and width values.
    """
    rng = random.Random(4)
    probe = fn(256, 64, True)
    expect_answer(probe, "bottleneck_params", "the formula", _HINT)
    cases = [(256, 64, True), (256, 64, False), (64, 16, True)]
    cases += [(rng.randrange(8, 520, 8), rng.randrange(4, 260, 4), rng.random() < 0.5) for _ in range(8)]
    for channels, width, bn in cases:
        got = fn(channels, width, bn)
        expected = count_parameters(_real_bottleneck(channels, width, bn))
        expect_equal(got, expected, f"bottleneck_params({channels}, {width}, bn={bn})", _HINT)
    # The real blocks of torchvision and the course (width = channels / 4, as in ResNet-50).
    no_bn = lambda c: nn.Identity()  # noqa: E731
    for width in (16, 64, 128):
        for bn in (True, False):
            norm = None if bn else no_bn
            for name, block in (
                ("torchvision.models.resnet.Bottleneck", tv_resnet.Bottleneck(4 * width, width, norm_layer=norm)),
                ("course_utils.models.Bottleneck", Bottleneck(4 * width, width, norm_layer=norm)),
            ):
                expect_equal(
                    fn(4 * width, width, bn),
                    count_parameters(block),
                    f"bottleneck_params({4 * width}, {width}, bn={bn}) against {name}",
                    _HINT,
                )
    passed(
        f"your formula matches count_parameters of real bottlenecks for {len(cases) + 6} channel/width/BN settings "
        f"(e.g. 256 -> 64 -> 256: {fn(256, 64, False):,} weights, {fn(256, 64, True):,} parameters with BN)."
    )


__all__ = ["check_bottleneck_params"]
