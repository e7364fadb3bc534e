"""Checks for notebook 03: option A's shortcut, and the residual block against ``course_utils.models.BasicBlock``."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..models import BasicBlock, PadShortcut, conv1x1
from ._common import expect_answer, expect_close, passed
from ._exercise import exercise

_PAD = (
    "keep every `stride`-th row and column with x[:, :, ::stride, ::stride], then append `extra_channels` "
    "channels of zeros after the existing ones (torch.cat with torch.zeros on dim 1); leave x itself unchanged."
)
_PAD_CASES = [((2, 16, 32, 32), 2, 16), ((1, 8, 7, 7), 2, 8), ((2, 4, 9, 6), 2, 12), ((2, 6, 5, 5), 1, 3)]


@exercise("pad_shortcut")
def check_pad_shortcut(fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> None:
    """``fn(x, stride, extra_channels)`` must equal ``PadShortcut(stride, extra_channels)(x)`` and not change x."""
    gen = torch.Generator().manual_seed(3)
    expect_answer(fn(torch.randn(1, 4, 8, 8, generator=gen), 2, 4), "pad_shortcut", hint=_PAD)
    for shape, stride, extra in _PAD_CASES:
        x = torch.randn(*shape, generator=gen)
        what, before = f"pad_shortcut(x of shape {shape}, stride={stride}, extra_channels={extra})", x.clone()
        expect_close(fn(x, stride, extra), PadShortcut(stride, extra)(before), what, _PAD, atol=0.0)
        expect_close(x, before, f"x after {what} (it must not change in place)", _PAD, atol=0.0)
    passed(f"your option-A shortcut matches PadShortcut on {len(_PAD_CASES)} shapes, odd map sizes included.")


def match_block(block: nn.Module, ref: nn.Module, what: str, hints: dict[str, str], slips: Callable) -> None:
    """Load ``ref``'s weights, BN made random first, into ``block`` (strict) and compare outputs in eval and train
    mode. ``hints``: the fix for "load", "out" and a stride on each conv; ``slips(ref, x)``: (hint, output) pairs."""
    gen = torch.Generator().manual_seed(3)
    for bn in [m for m in ref.modules() if isinstance(m, nn.BatchNorm2d)]:  # fresh BN layers could hide a slip
        for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
            t.data.uniform_(0.5, 1.5, generator=gen)
    try:
        block.load_state_dict(ref.state_dict())  # strict: the same names and shapes
    except RuntimeError as e:
        raise AssertionError(f"{what} cannot take the reference's weights: {e} Hint: {hints['load']}") from None
    yours, theirs = (
        sorted(n for n, m in b.named_modules() if isinstance(m, nn.Conv2d) and m.stride != (1, 1)) for b in (block, ref)
    )
    if yours != theirs:  # the same weights, strided elsewhere: name the conv that should (not) have the stride
        fix = hints.get(min(set(yours) ^ set(theirs)), f"put the stride on {', '.join(theirs)} only.")
        raise AssertionError(f"{what} has the stride on {yours}, the reference on {theirs}. Hint: {fix}")
    x = torch.randn(3, ref.conv1.in_channels, 8, 8, generator=gen)
    for mode in ("eval", "train"):
        with torch.no_grad():
            try:
                got, want = block.train(mode == "train")(x.clone()), ref.train(mode == "train")(x.clone())
            except RuntimeError as e:  # e.g. F(x) and the shortcut of different shapes
                raise AssertionError(f"{what} in {mode} mode raised RuntimeError: {e}. Hint: {hints['out']}") from None
            for hint, wrong in slips(ref, x):
                if isinstance(got, torch.Tensor) and got.shape == wrong.shape and torch.allclose(got, wrong, atol=1e-5):
                    raise AssertionError(f"{what} in {mode} mode does not match the reference. Hint: {hint}")
        expect_close(got, want, f"{what} in {mode} mode", hints["out"])


def _relu_before_add(ref: BasicBlock, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    fx, shortcut = ref.residual_function(x), x if ref.downsample is None else ref.downsample(x)
    hint = "apply the ReLU only after the addition, relu(bn2(conv2(out)) + shortcut), not to bn2(conv2(out))."
    return [(hint, F.relu(fx) + shortcut), (hint, F.relu(F.relu(fx) + shortcut))]


_HINTS = {
    "load": "name them conv1, bn1, conv2, bn2 and downsample: nn.Sequential(1x1 conv, BN) wherever "
    "stride != 1 or in_planes != planes, None otherwise.",
    "out": "relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut), the shortcut x or downsample(x).",
    "downsample.0": "give the 1x1 projection the block's stride: nn.Conv2d(in_planes, planes, 1, stride=stride).",
}


@exercise("ResidualBlock")
def check_residual_block(cls: type[nn.Module]) -> None:
    """``cls(in_planes, planes, stride)`` must take ``BasicBlock``'s weights (strict) and give its outputs."""
    expect_answer(cls(4, 4)(torch.randn(2, 4, 6, 6)), "ResidualBlock(4, 4)(x)", "its output", _HINTS["out"])
    cases = [(8, 8, 1), (8, 16, 2), (8, 16, 1), (8, 8, 2)]
    for i, p, s in cases:
        down = None if s == 1 and i == p else nn.Sequential(conv1x1(i, p, s), nn.BatchNorm2d(p))
        match_block(cls(i, p, s), BasicBlock(i, p, s, down), f"ResidualBlock{(i, p, s)}", _HINTS, _relu_before_add)
    passed(f"your block takes BasicBlock's weights and gives its outputs: {len(cases)} shapes, eval and train mode.")
