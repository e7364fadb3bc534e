"""Check for notebook 03: option A's shortcut, subsampling plus zero channels."""

from __future__ import annotations

from typing import Callable

import torch

from ..models import PadShortcut
from ._common import expect_answer, expect_close, passed
from ._exercise import exercise

_HINT = (
    "keep every `stride`-th row and column with x[:, :, ::stride, ::stride], then append `extra_channels` "
    "channels of zeros after the existing ones (torch.cat with torch.zeros on dim 1); leave x itself unchanged."
)
# (shape, stride, extra channels): CIFAR's stage changes, odd (7x7 -> 4x4) and non-square maps, the identity.
_CASES = [((2, 16, 32, 32), 2, 16), ((3, 32, 16, 16), 2, 32), ((1, 8, 7, 7), 2, 8), ((2, 4, 9, 6), 2, 12)]
_CASES += [((2, 6, 5, 5), 1, 0), ((2, 6, 5, 5), 1, 3)]


@exercise("pad_shortcut")
def check_pad_shortcut(fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> None:
    """``fn(x, stride, extra_channels)`` must equal ``PadShortcut(stride, extra_channels)(x)`` and not change x."""
    gen = torch.Generator().manual_seed(3)
    expect_answer(fn(torch.randn(1, 4, 8, 8, generator=gen), 2, 4), "pad_shortcut", hint=_HINT)
    for shape, stride, extra in _CASES:
        x = torch.randn(*shape, generator=gen)
        before = x.clone()
        what = f"pad_shortcut(x of shape {shape}, stride={stride}, extra_channels={extra})"
        expect_close(fn(x, stride, extra), PadShortcut(stride, extra)(before), what, _HINT, atol=0.0)
        expect_close(x, before, f"x after {what} (it must not change in place)", _HINT, atol=0.0)
    y = fn(torch.ones(1, 2, 4, 4), 2, 2)
    passed(
        f"your option-A shortcut matches PadShortcut on {len(_CASES)} shapes; e.g. ones of shape (1, 2, 4, 4), "
        f"stride 2, 2 extra channels -> {tuple(y.shape)} with channel sums {y.sum((0, 2, 3)).tolist()}."
    )
