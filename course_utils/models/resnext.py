"""The three equivalent forms of a ResNeXt block (Xie et al. 2017, figure 3).

All three compute the same function; they differ in how the C paths are laid out:

- (a) :class:`SplitTransformMerge`: C separate paths, each 1x1 -> 3x3 -> 1x1,
  their outputs *summed* (aggregated transformations).
- (b) :class:`EarlyConcat`: C paths of 1x1 -> 3x3, *concatenated*, then one 1x1.
- (c) :class:`~course_utils.models.resnet.Bottleneck` with ``groups=C``: one
  grouped 3x3 convolution does all the paths at once. This is the form that is
  trained, because it is the fastest.

:func:`copy_from_grouped` copies the weights of a form (c) block into (a) or (b),
so that a learner can check the equivalence numerically.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_positive_int
from .resnet import Bottleneck, conv1x1, conv3x3


def _check_block_args(in_channels: int, cardinality: int, bottleneck_width: int, out_channels: int) -> None:
    for value, name in [
        (in_channels, "in_channels"),
        (cardinality, "cardinality"),
        (bottleneck_width, "bottleneck_width"),
        (out_channels, "out_channels"),
    ]:
        check_positive_int(value, name)
    if in_channels != out_channels:
        raise ValueError(
            f"These blocks use an identity shortcut, so in_channels must equal out_channels; "
            f"got {in_channels} and {out_channels}."
        )


def _reduce_path(in_channels: int, width: int) -> list[nn.Module]:
    """1x1 conv to ``width`` channels and a 3x3 conv, each followed by BN and ReLU."""
    return [
        conv1x1(in_channels, width),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        conv3x3(width, width),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]


class SplitTransformMerge(nn.Module):
    """Form (a): ``out = relu(BN(sum_i T_i(x)) + x)`` with C paths T_i of width d."""

    def __init__(
        self, in_channels: int = 256, cardinality: int = 32, bottleneck_width: int = 4, out_channels: int = 256
    ):
        super().__init__()
        _check_block_args(in_channels, cardinality, bottleneck_width, out_channels)
        self.cardinality, self.bottleneck_width = cardinality, bottleneck_width
        self.paths = nn.ModuleList(
            nn.Sequential(*_reduce_path(in_channels, bottleneck_width), conv1x1(bottleneck_width, out_channels))
            for _ in range(cardinality)
        )
        # One BN after the sum: a BN on each path's output would not be the same function.
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        aggregated = sum(path(x) for path in self.paths)
        return self.relu(self.bn3(aggregated) + x)


class EarlyConcat(nn.Module):
    """Form (b): C paths of 1x1 -> 3x3 concatenated, then one 1x1 conv back to ``out_channels``."""

    def __init__(
        self, in_channels: int = 256, cardinality: int = 32, bottleneck_width: int = 4, out_channels: int = 256
    ):
        super().__init__()
        _check_block_args(in_channels, cardinality, bottleneck_width, out_channels)
        self.cardinality, self.bottleneck_width = cardinality, bottleneck_width
        self.paths = nn.ModuleList(
            nn.Sequential(*_reduce_path(in_channels, bottleneck_width)) for _ in range(cardinality)
        )
        self.conv3 = conv1x1(cardinality * bottleneck_width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        concatenated = torch.cat([path(x) for path in self.paths], dim=1)
        return self.relu(self.bn3(self.conv3(concatenated)) + x)


def grouped_block(
    in_channels: int = 256, cardinality: int = 32, bottleneck_width: int = 4, out_channels: int = 256
) -> Bottleneck:
    """Form (c): a Bottleneck whose 3x3 conv has ``groups=cardinality``, ``C * d`` channels wide."""
    _check_block_args(in_channels, cardinality, bottleneck_width, out_channels)
    if out_channels % Bottleneck.expansion:
        raise ValueError(f"out_channels must be a multiple of {Bottleneck.expansion}; got {out_channels}.")
    planes = out_channels // Bottleneck.expansion
    # Bottleneck's width is int(planes * base_width / 64) * groups; pick base_width to give d per group.
    base_width = bottleneck_width * 64 // planes
    if int(planes * base_width / 64) != bottleneck_width:
        raise ValueError(
            f"bottleneck_width={bottleneck_width} cannot be expressed for out_channels={out_channels} "
            f"(need bottleneck_width * 64 divisible by {planes})."
        )
    return Bottleneck(in_channels, planes, groups=cardinality, base_width=base_width)


def _copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, sl: slice = slice(None)) -> None:
    dst.weight.copy_(src.weight[sl])
    dst.bias.copy_(src.bias[sl])
    dst.running_mean.copy_(src.running_mean[sl])
    dst.running_var.copy_(src.running_var[sl])
    dst.num_batches_tracked.copy_(src.num_batches_tracked)


@torch.no_grad()
def copy_from_grouped(dst: SplitTransformMerge | EarlyConcat, src: Bottleneck) -> SplitTransformMerge | EarlyConcat:
    """Copy a grouped block's weights (form c) into form (a) or (b); returns ``dst``.

    Group i of the grouped 3x3 convolution owns output channels
    ``i*d:(i+1)*d``; those slices become path i.
    """
    C, d = dst.cardinality, dst.bottleneck_width
    if src.conv2.groups != C or src.conv2.out_channels != C * d:
        raise ValueError(
            f"Shapes differ: the grouped block has groups={src.conv2.groups} and width {src.conv2.out_channels}, "
            f"the target has cardinality={C} and bottleneck_width={d} (width {C * d})."
        )
    for i, path in enumerate(dst.paths):
        sl = slice(i * d, (i + 1) * d)
        path[0].weight.copy_(src.conv1.weight[sl])
        _copy_bn(path[1], src.bn1, sl)
        path[3].weight.copy_(src.conv2.weight[sl])
        _copy_bn(path[4], src.bn2, sl)
        if isinstance(dst, SplitTransformMerge):
            # Path i's last 1x1 reads only its own d channels of the grouped block's conv3 input.
            path[6].weight.copy_(src.conv3.weight[:, sl])
    if isinstance(dst, EarlyConcat):
        dst.conv3.weight.copy_(src.conv3.weight)
    _copy_bn(dst.bn3, src.bn3)
    return dst
