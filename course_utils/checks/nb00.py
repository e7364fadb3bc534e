"""Checks for notebook 00 (setup and data): per-channel mean and standard deviation."""

from typing import Callable

import torch

from ._common import exercise, expect_answer, expect_close, fail, passed

_MEAN = "the mean over dim=(0, 2, 3) of images / 255."
_STD = "the population std, correction=0, over dim=(0, 2, 3) of images / 255."
_255 = "the values are 255 times too large: divide the uint8 values by 255 first."
_N_1 = "it divides by n - 1: use the population std, correction=0."


@exercise("channel_mean_std")
def check_channel_mean_std(channel_mean_std: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> None:
    """``channel_mean_std(images)``: uint8 images (N, C, H, W) -> (mean, std) per channel, in [0, 1] units."""
    generator = torch.Generator().manual_seed(0)
    for shape in [(5, 3, 4, 4), (7, 1, 6, 5), (1, 3, 32, 32)]:
        images = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
        result, x, where = channel_mean_std(images.clone()), images.double() / 255, f"for images of shape {shape}"
        expect_answer(result, "channel_mean_std")
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            fail(f"expected a pair (mean, std), got {type(result).__name__}.", "return mean, std")
        mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3), correction=0)
        expect_close(result[0], mean, f"mean {where}", _MEAN, slips=[(_255, 255 * mean)])
        expect_close(result[1], std, f"std {where}", _STD, slips=[(_255, 255 * std), (_N_1, x.std(dim=(0, 2, 3)))])
    passed("per-channel mean and std match the reference on 3 random image batches (1 and 3 channels).")
