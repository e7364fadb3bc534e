"""Checks for notebook 06 (training a ResNet): batched crop-and-flip, label-smoothed cross-entropy."""

from typing import Callable

import torch
import torch.nn.functional as F

from ..data import crop_and_flip
from ._common import exercise, expect_answer, expect_close, expect_equal, passed

_HINT = {
    "crop": "zero-pad every image by `padding` pixels on each side (F.pad(images, (p, p, p, p))), cut image b at rows "
    "dy..dy+H and columns dx..dx+W, (dy, dx) = shifts[b], and mirror it left-right (.flip(-1)) where flips[b] is True.",
    "smooth": "the smoothed target is 1 - smoothing on the true class plus smoothing/K on each of the K classes (the "
    "true one included); the loss is -(target * log_softmax(logits)).sum(1), averaged over the batch.",
}


@exercise("random_crop_flip")
def check_random_crop_flip(fn: Callable[..., torch.Tensor]) -> None:
    """``fn(images, shifts, flips, padding)`` must equal ``course_utils.data.crop_and_flip``, dtype included."""
    gen = torch.Generator().manual_seed(6)
    for b, c, h, w, p in [(4, 3, 32, 32, 4), (3, 1, 28, 28, 2), (5, 3, 8, 8, 1), (2, 2, 6, 10, 3), (3, 3, 5, 5, 0)]:
        images = torch.randint(0, 256, (b, c, h, w), generator=gen, dtype=torch.uint8)
        shifts = torch.randint(0, 2 * p + 1, (b, 2), generator=gen)
        shifts[0], shifts[-1] = torch.tensor([0, 2 * p]), torch.tensor([2 * p, 0])  # corners, where the padding shows
        flips = torch.arange(b) % 2 == 0  # flipped and unflipped images in every batch
        got, what = fn(images.clone(), shifts.clone(), flips.clone(), p), f"random_crop_flip({(b, c, h, w)}, p={p})"
        expect_answer(got, what)
        expect_close(got, crop_and_flip(images, shifts, flips, p), what, _HINT["crop"], atol=0)
        expect_equal(got.dtype, torch.uint8, f"{what}: dtype", "keep the input's dtype (no .float()).")
    passed("your crop and flip match course_utils.data.crop_and_flip on 5 uint8 batches (padding 0 to 4).")


@exercise("smooth_cross_entropy")
def check_smooth_cross_entropy(fn: Callable[..., torch.Tensor]) -> None:
    """``fn(logits, targets, smoothing)`` must equal ``F.cross_entropy(..., label_smoothing=smoothing)``."""
    gen = torch.Generator().manual_seed(60)
    for n, k, eps in [(8, 10, 0.0), (8, 10, 0.1), (5, 3, 0.3), (16, 100, 0.05), (1, 2, 0.5), (32, 10, 1.0)]:
        logits, targets = torch.randn(n, k, generator=gen) * 3, torch.randint(0, k, (n,), generator=gen)
        got, what = fn(logits.clone(), targets.clone(), eps), f"smooth_cross_entropy({n} samples, {k} classes, {eps})"
        expect_answer(got, what)
        want = F.cross_entropy(logits, targets, label_smoothing=eps)
        expect_close(torch.as_tensor(got), want, what, _HINT["smooth"], atol=1e-5)
    passed("your loss matches F.cross_entropy(logits, targets, label_smoothing=...) for 6 batches and smoothings.")
