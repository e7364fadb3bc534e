"""Checks for notebook 06 (training on a GPU): batched crop-and-flip, label-smoothed cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data import crop_and_flip
from ._common import expect_answer, expect_close, expect_equal, passed

_CROP_HINT = (
    "zero-pad every image by `padding` pixels on all four sides (F.pad(images, (p, p, p, p))), cut image b "
    "at rows dy..dy+H and columns dx..dx+W where (dy, dx) = shifts[b], and mirror it left-right "
    "(.flip(-1)) where flips[b] is True. The result has the input's shape and dtype."
)

_SMOOTH_HINT = (
    "the smoothed target is 1 - smoothing on the true class plus smoothing/K spread evenly over all K classes "
    "(the true one included); the loss is -(target * log_softmax(logits)).sum(1), averaged over the batch. "
    "Equivalently (1 - smoothing) * NLL + smoothing * mean over classes of -log_softmax."
)


def check_random_crop_flip(fn) -> None:
    """``fn(images, shifts, flips, padding)`` must equal ``course_utils.data.crop_and_flip`` (uint8 and float)."""
    generator = torch.Generator().manual_seed(6)
    cases = [(4, 3, 32, 32, 4), (3, 1, 28, 28, 2), (5, 3, 8, 8, 1), (2, 2, 6, 10, 3), (3, 3, 5, 5, 0)]
    for b, c, h, w, padding in cases:
        for dtype in (torch.uint8, torch.float32):
            images = torch.randint(0, 256, (b, c, h, w), generator=generator).to(dtype)
            shifts = torch.randint(0, 2 * padding + 1, (b, 2), generator=generator)
            flips = torch.rand(b, generator=generator) < 0.5
            flips[0], flips[-1] = True, False  # both cases in every batch
            if padding:
                shifts[0] = torch.tensor([0, 2 * padding])  # the extreme corners, where the zero padding shows
                shifts[-1] = torch.tensor([2 * padding, 0])
            got = fn(images.clone(), shifts.clone(), flips.clone(), padding)
            expected = crop_and_flip(images, shifts, flips, padding)
            what = f"random_crop_flip on a batch of shape {(b, c, h, w)}, {dtype}, padding={padding}"
            expect_answer(got, what, hint=_CROP_HINT)
            expect_close(got, expected, what, _CROP_HINT, atol=0)
            expect_equal(got.dtype, expected.dtype, f"{what}: dtype", _CROP_HINT)
    passed("your crop and flip match course_utils.data.crop_and_flip on 10 batches (uint8 and float, padding 0 to 4).")


def check_smooth_cross_entropy(fn) -> None:
    """``fn(logits, targets, smoothing)`` must equal ``F.cross_entropy(..., label_smoothing=smoothing)``."""
    generator = torch.Generator().manual_seed(60)
    cases = [(8, 10, 0.0), (8, 10, 0.1), (5, 3, 0.3), (16, 100, 0.05), (1, 2, 0.5), (32, 10, 1.0)]
    for n, k, smoothing in cases:
        logits = torch.randn(n, k, generator=generator) * 3
        targets = torch.randint(0, k, (n,), generator=generator)
        got = fn(logits.clone(), targets.clone(), smoothing)
        expected = F.cross_entropy(logits, targets, label_smoothing=smoothing)
        what = f"smooth_cross_entropy on {n} samples, {k} classes, smoothing={smoothing}"
        expect_answer(got, what, hint=_SMOOTH_HINT)
        expect_close(torch.as_tensor(got), expected, what, _SMOOTH_HINT, atol=1e-5)
    passed("your loss matches F.cross_entropy(logits, targets, label_smoothing=...) for 6 batches and smoothings.")
