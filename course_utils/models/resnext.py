"""The three equivalent forms of a ResNeXt block (Xie et al. 2017, figure 3), C paths of width d: (a)
:class:`SplitTransformMerge` sums C paths, (b) :class:`EarlyConcat` concatenates them before one 1x1, (c) a
``Bottleneck`` with ``groups=C``, the fastest. :func:`copy_from_grouped` copies (c)'s weights into (a) or (b)."""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_positive_int
from .resnet import Bottleneck, conv1x1, conv3x3


def _check(channels: int, cardinality: int, bottleneck_width: int) -> None:
    for value, name in [(channels, "channels"), (cardinality, "cardinality"), (bottleneck_width, "bottleneck_width")]:
        check_positive_int(value, name)


def _path(channels: int, width: int) -> list[nn.Module]:
    """A 1x1 conv to ``width`` channels and a 3x3 conv, each followed by BN and ReLU."""
    reduce = [conv1x1(channels, width), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
    return reduce + [conv3x3(width, width), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]


class SplitTransformMerge(nn.Module):
    """Form (a): ``out = relu(BN(sum_i T_i(x)) + x)`` with C paths T_i of width d, ``channels`` in and out."""

    def __init__(self, channels: int = 256, cardinality: int = 32, bottleneck_width: int = 4) -> None:
        super().__init__()
        _check(channels, cardinality, bottleneck_width)
        self.cardinality, self.bottleneck_width, d = cardinality, bottleneck_width, bottleneck_width
        self.paths = nn.ModuleList(nn.Sequential(*_path(channels, d), conv1x1(d, channels)) for _ in range(cardinality))
        # One BN after the sum: a BN on each path's output would not be the same function.
        self.bn3 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn3(sum(path(x) for path in self.paths)) + x)


class EarlyConcat(nn.Module):
    """Form (b): C paths of 1x1 -> 3x3 (width d) concatenated, then one 1x1 conv back to ``channels``."""

    def __init__(self, channels: int = 256, cardinality: int = 32, bottleneck_width: int = 4) -> None:
        super().__init__()
        _check(channels, cardinality, bottleneck_width)
        self.cardinality, self.bottleneck_width, d = cardinality, bottleneck_width, bottleneck_width
        self.paths = nn.ModuleList(nn.Sequential(*_path(channels, d)) for _ in range(cardinality))
        self.conv3 = conv1x1(cardinality * d, channels)
        self.bn3 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        concatenated = torch.cat([path(x) for path in self.paths], dim=1)
        return self.relu(self.bn3(self.conv3(concatenated)) + x)


@torch.no_grad()
def copy_from_grouped(dst: SplitTransformMerge | EarlyConcat, src: Bottleneck) -> SplitTransformMerge | EarlyConcat:
    """Copy a grouped block's weights (form c) into form (a) or (b); returns ``dst``. Group i of the grouped 3x3
    convolution owns output channels ``i*d:(i+1)*d``: those slices become path i."""
    C, d = dst.cardinality, dst.bottleneck_width
    if src.conv2.groups != C or src.conv2.out_channels != C * d:
        raise ValueError(
            f"Shapes differ: the grouped block has groups={src.conv2.groups} and width {src.conv2.out_channels}, "
            f"the target has cardinality={C} and bottleneck_width={d} (width {C * d})."
        )
    pairs = [(dst.bn3, src.bn3, slice(None))]  # (BN to fill, BN to copy from, its channels)
    for i, path in enumerate(dst.paths):
        sl = slice(i * d, (i + 1) * d)
        path[0].weight.copy_(src.conv1.weight[sl])
        path[3].weight.copy_(src.conv2.weight[sl])
        pairs += [(path[1], src.bn1, sl), (path[4], src.bn2, sl)]
        if isinstance(dst, SplitTransformMerge):
            # Path i's last 1x1 reads only its own d channels of the grouped block's conv3 input.
            path[6].weight.copy_(src.conv3.weight[:, sl])
    if isinstance(dst, EarlyConcat):
        dst.conv3.weight.copy_(src.conv3.weight)
    for bn, source, sl in pairs:
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(bn, name).copy_(getattr(source, name)[sl])
        bn.num_batches_tracked.copy_(source.num_batches_tracked)
    return dst
