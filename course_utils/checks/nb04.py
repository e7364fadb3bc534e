"""Check for notebook 04: the FLOPs of a bottleneck branch, against real modules."""

from __future__ import annotations

import random
from typing import Callable

from torch import nn
from torchvision.models import resnet as tv_resnet

from ..inspect import count_flops
from ..models import Bottleneck, conv1x1, conv3x3
from ._common import expect_answer, expect_equal, passed
from ._exercise import exercise

_HINT = (
    "a k x k conv from a to b channels does k*k*a*b multiply-adds at every position of its *output* map, 2 FLOPs "
    "each. The 1x1 reduce works on the size x size input; the 3x3 has the stride, so it and the 1x1 expand after "
    "it produce maps of ceil(size / stride) per side. BatchNorm and ReLU are not counted."
)


@exercise("bottleneck_flops")
def check_bottleneck_flops(fn: Callable[..., int]) -> None:
    """``fn(channels, width, size, stride)`` must equal ``count_flops`` of a bottleneck branch's convolutions
    (random settings) and of torchvision's and the course's ``Bottleneck`` (``channels == 4 * width``)."""
    expect_answer(fn(256, 64, 56, 1), "bottleneck_flops", "the formula", _HINT)
    rng = random.Random(4)
    cases = [(256, 64, 56, 1), (256, 64, 56, 2), (64, 16, 7, 2)]
    for _ in range(8):
        cases.append((rng.randrange(8, 264, 8), rng.randrange(4, 132, 4), rng.randrange(3, 40), rng.choice((1, 2))))
    # The branch's convolutions alone (BN and ReLU add no FLOPs), then whole blocks of torchvision and the course.
    real = [(c, w, n, s, nn.Sequential(conv1x1(c, w), conv3x3(w, w, s), conv1x1(w, c))) for c, w, n, s in cases]
    real += [(4 * w, w, n, 1, b(4 * w, w)) for w, n in ((16, 56), (64, 28)) for b in (tv_resnet.Bottleneck, Bottleneck)]
    for c, w, n, s, module in real:
        expect_equal(fn(c, w, n, s), count_flops(module, (1, c, n, n)), f"bottleneck_flops({c}, {w}, {n}, {s})", _HINT)
    one, strided = (f"{fn(256, 64, 56, s) / 1e6:,.1f} MFLOPs" for s in (1, 2))
    passed(f"your formula matches {len(real)} real bottlenecks; 256 -> 64 -> 256 at 56x56: {one}, {strided} strided.")
