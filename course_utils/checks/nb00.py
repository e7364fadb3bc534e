"""Checks for notebook 00 (setup and data): per-channel mean and standard deviation."""

from __future__ import annotations

import torch

from ._common import expect_answer, expect_close, passed
from ._exercise import exercise


def _is(got: object, slip: torch.Tensor) -> bool:
    return isinstance(got, torch.Tensor) and got.shape == slip.shape and torch.allclose(got.double(), slip)


@exercise("channel_mean_std")
def check_channel_mean_std(channel_mean_std) -> None:
    """``channel_mean_std(images)``: uint8 images (N, C, H, W) -> (mean, std) per channel, in [0, 1] units."""
    generator = torch.Generator().manual_seed(0)
    for shape in [(5, 3, 4, 4), (7, 1, 6, 5), (1, 3, 32, 32)]:
        images = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
        result, x, where = channel_mean_std(images.clone()), images.double() / 255, f"for images of shape {shape}"
        expect_answer(result, "channel_mean_std")
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise AssertionError(f"expected a pair (mean, std), got {type(result).__name__}. Hint: return mean, std")
        if _is(result[0], 255 * x.mean(dim=(0, 2, 3))):
            raise AssertionError(f"mean {where} is 255 times too large. Hint: divide the uint8 values by 255 first.")
        expect_close(result[0], x.mean(dim=(0, 2, 3)), f"mean {where}", "the mean over dim=(0, 2, 3) of images / 255.")
        if _is(result[1], x.std(dim=(0, 2, 3))):
            raise AssertionError(f"std {where} divides by n - 1. Hint: use the population std, correction=0.")
        expect_close(result[1], x.std(dim=(0, 2, 3), correction=0), f"std {where}", "correction=0, over dim=(0, 2, 3).")
    passed("per-channel mean and std match the reference on 3 random image batches (1 and 3 channels).")
