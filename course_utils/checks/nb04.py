"""Checks for notebook 04: the BasicBlock and Bottleneck against torchvision's, and the FLOPs of a bottleneck."""

import copy
import random
from typing import Callable

from torch import nn
from torchvision.models import resnet as tv_resnet

from ..inspect import count_flops
from ..models import Bottleneck, conv1x1, conv3x3
from ._common import exercise, expect_answer, expect_equal, match_module, passed

_FLOPS = (
    "a k x k conv from a to b channels does k*k*a*b multiply-adds at every position of its *output* map, 2 FLOPs "
    "each. The 1x1 reduce works on the size x size input; the 3x3 has the stride, so it and the 1x1 expand after "
    "it produce maps of ceil(size / stride) per side. BatchNorm and ReLU are not counted."
)
_BUG = "the stride goes on conv1 (and the projection) only: on both 3x3s, the source notes' bug, the map halves twice."
_BLOCKS = {  # each block's layers, its branch before the addition, and a conv given the stride wrongly -> its hint
    "BasicBlock": ("conv1, bn1, conv2, bn2", "bn2(conv2(relu(bn1(conv1(x)))))", {"conv2": _BUG}),
    "Bottleneck": (
        "conv1, bn1, conv2, bn2, conv3, bn3",
        "bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))))",
        {"conv1": "put the stride on the 3x3 conv2 as torchvision does (ResNet v1.5), not on conv1 (the paper's v1)."},
    ),
}


@exercise("bottleneck_flops")
def check_bottleneck_flops(fn: Callable[..., int]) -> None:
    """``fn(channels, width, size, stride)``: the FLOPs of a bottleneck branch's convolutions, as ``count_flops``."""
    expect_answer(fn(256, 64, 56, 1), "bottleneck_flops", "the formula")
    rng = random.Random(4)
    cases = [(256, 64, 56, 1), (256, 64, 56, 2), (64, 16, 7, 2)]
    for _ in range(8):
        cases.append((rng.randrange(8, 264, 8), rng.randrange(4, 132, 4), rng.randrange(3, 40), rng.choice((1, 2))))
    # The branch's convolutions alone (BN and ReLU add no FLOPs), then whole blocks of torchvision and the course.
    real = [(c, w, n, s, nn.Sequential(conv1x1(c, w), conv3x3(w, w, s), conv1x1(w, c))) for c, w, n, s in cases]
    real += [(4 * w, w, n, 1, b(4 * w, w)) for w, n in ((16, 56), (64, 28)) for b in (tv_resnet.Bottleneck, Bottleneck)]
    for c, w, n, s, module in real:
        expect_equal(fn(c, w, n, s), count_flops(module, (1, c, n, n)), f"bottleneck_flops({c}, {w}, {n}, {s})", _FLOPS)
    one, strided = (f"{fn(256, 64, 56, s) / 1e6:,.1f} MFLOPs" for s in (1, 2))
    passed(f"your formula matches {len(real)} real bottlenecks; 256 -> 64 -> 256 at 56x56: {one}, {strided} strided.")


def _check_block(cls: type[nn.Module], ref_cls: type[nn.Module]) -> None:
    name, k = ref_cls.__name__, ref_cls.expansion
    layers, branch, strides = _BLOCKS[name]
    names = f"name them {layers}, relu and downsample, the one passed in (None: the identity)."
    forward = f"out = {branch}, then return relu(out + shortcut), the shortcut x or downsample(x)."
    cases = [(16, 16 // k, 1, False), (8, 4, 1, True), (8, 8, 2, True), (16, 4, 2, True)]  # (inplanes, planes, ...)
    for i, p, s, projected in cases:
        down = nn.Sequential(conv1x1(i, p * k, s), nn.BatchNorm2d(p * k)) if projected else None
        mine, ref = cls(i, p, s, down), ref_cls(i, p, s, copy.deepcopy(down))
        what = f"{name}({i}, {p}, stride={s}{', downsample' if projected else ''})"
        match_module(mine, ref, (3, i, 8, 8), what, forward, names, strides=strides)
    fix = f"set the class attribute expansion = {k}: the block outputs planes * expansion channels."
    expect_equal(getattr(cls, "expansion", None), k, f"{name}.expansion", fix)
    passed(f"your {name} takes torchvision's weights and gives its outputs: {len(cases)} settings, both modes.")


@exercise("BasicBlock", keep=True)
def check_basic_block(cls: type[nn.Module]) -> None:
    """``cls(inplanes, planes, stride, downsample)`` must take torchvision's ``BasicBlock`` weights and outputs."""
    _check_block(cls, tv_resnet.BasicBlock)


@exercise("Bottleneck", keep=True)
def check_bottleneck(cls: type[nn.Module]) -> None:
    """``cls(inplanes, planes, stride, downsample)`` must be torchvision's ``Bottleneck``, the stride on its 3x3."""
    _check_block(cls, tv_resnet.Bottleneck)
