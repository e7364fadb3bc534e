"""Checks for notebook 03: option A's shortcut, and the residual block against ``course_utils.models.BasicBlock``."""

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..models import BasicBlock, PadShortcut, conv1x1
from ._common import exercise, expect_answer, expect_close, match_module, passed

_HINT = {
    "pad": "keep every `stride`-th row and column with x[:, :, ::stride, ::stride], then append `extra_channels` "
    "channels of zeros after the existing ones (torch.cat with torch.zeros on dim 1); leave x itself unchanged.",
    "out": "relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut), the shortcut x or downsample(x).",
    "names": "name them conv1, bn1, conv2, bn2 and downsample: nn.Sequential(1x1 conv, BN) wherever stride != 1 or "
    "in_planes != planes, None otherwise.",
    "relu": "apply the ReLU only after the addition, relu(bn2(conv2(out)) + shortcut), not to bn2(conv2(out)).",
}
_STRIDE = {"downsample.0": "give the 1x1 projection the block's stride: nn.Conv2d(in_planes, planes, 1, stride)."}


@exercise("pad_shortcut")
def check_pad_shortcut(fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> None:
    """``fn(x, stride, extra_channels)`` must equal ``PadShortcut(stride, extra_channels)(x)`` and not change x."""
    gen = torch.Generator().manual_seed(3)
    expect_answer(fn(torch.randn(1, 4, 8, 8, generator=gen), 2, 4), "pad_shortcut")
    cases = [((2, 16, 32, 32), 2, 16), ((1, 8, 7, 7), 2, 8), ((2, 4, 9, 6), 2, 12), ((2, 6, 5, 5), 1, 3)]
    for shape, stride, extra in cases:
        x = torch.randn(*shape, generator=gen)
        what, before = f"pad_shortcut(x of shape {shape}, stride={stride}, extra_channels={extra})", x.clone()
        expect_close(fn(x, stride, extra), PadShortcut(stride, extra)(before), what, _HINT["pad"], atol=0.0)
        expect_close(x, before, f"x after {what} (it must not change in place)", _HINT["pad"], atol=0.0)
    passed(f"your option-A shortcut matches PadShortcut on {len(cases)} shapes, odd map sizes included.")


def _relu_before_add(ref: BasicBlock, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    fx, shortcut = ref.residual_function(x), x if ref.downsample is None else ref.downsample(x)
    return [(_HINT["relu"], F.relu(fx) + shortcut), (_HINT["relu"], F.relu(F.relu(fx) + shortcut))]


@exercise("ResidualBlock")
def check_residual_block(cls: type[nn.Module]) -> None:
    """``cls(in_planes, planes, stride)`` must take ``BasicBlock``'s weights (strict) and give its outputs."""
    cases = [(8, 8, 1), (8, 16, 2), (8, 16, 1), (8, 8, 2)]
    for i, p, s in cases:
        ref = BasicBlock(i, p, s, None if s == 1 and i == p else nn.Sequential(conv1x1(i, p, s), nn.BatchNorm2d(p)))
        what, hint = f"ResidualBlock{(i, p, s)}", _HINT["out"]
        match_module(cls(i, p, s), ref, (3, i, 8, 8), what, hint, _HINT["names"], _relu_before_add, strides=_STRIDE)
    passed(f"your block takes BasicBlock's weights and gives its outputs: {len(cases)} shapes, eval and train mode.")
