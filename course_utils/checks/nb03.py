"""Checks for notebook 03 (the shortcut: identity, option A padding, projection)."""

from __future__ import annotations

import torch

from ..models import PadShortcut
from ._common import expect_answer, expect_close, passed

_HINT = (
    "keep every `stride`-th row and column with x[:, :, ::stride, ::stride], then append `extra_channels` "
    "channels of zeros after the existing ones (torch.cat with torch.zeros on dim 1, or F.pad); "
    "the result has no parameters and the same dtype and device as x."
)


def check_pad_shortcut(fn) -> None:
    """``fn(x, stride, extra_channels)`` must equal ``course_utils.models.PadShortcut(stride, extra_channels)(x)``.

    Random inputs of several shapes: stride 1 and 2, no extra channels or some,
    even and odd heights and widths (an odd 7x7 map subsamples to 4x4, as a
    stride-2 3x3 convolution with padding 1 does).
    """
    gen = torch.Generator().manual_seed(3)
    probe = fn(torch.randn(1, 4, 8, 8, generator=gen), 2, 4)
    expect_answer(probe, "pad_shortcut", hint=_HINT)
    cases = [
        ((2, 16, 32, 32), 2, 16),  # CIFAR ResNet, stage 1 -> 2
        ((3, 32, 16, 16), 2, 32),  # stage 2 -> 3
        ((1, 8, 7, 7), 2, 8),  # odd size
        ((2, 4, 9, 6), 2, 12),  # not square, more than doubling
        ((2, 6, 5, 5), 1, 0),  # nothing changes: the identity
        ((2, 6, 5, 5), 1, 3),  # channels only
    ]
    for shape, stride, extra in cases:
        x = torch.randn(*shape, generator=gen)
        x_before = x.clone()
        got = fn(x, stride, extra)
        expected = PadShortcut(stride, extra)(x_before)
        expect_close(
            got, expected, f"pad_shortcut(x of shape {shape}, stride={stride}, extra_channels={extra})", _HINT, atol=0.0
        )
        if not torch.equal(x, x_before):
            raise AssertionError(f"pad_shortcut changed its input x in place. Hint: {_HINT}")
    y = fn(torch.ones(1, 2, 4, 4), 2, 2)
    passed(
        f"your option-A shortcut matches PadShortcut on {len(cases)} shapes; e.g. ones of shape (1, 2, 4, 4), "
        f"stride 2, 2 extra channels -> {tuple(y.shape)} with channel sums {y.sum((0, 2, 3)).tolist()}."
    )


__all__ = ["check_pad_shortcut"]
