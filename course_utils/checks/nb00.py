"""Checks for notebook 00 (setup and data): per-channel mean and standard deviation."""

from __future__ import annotations

import torch

from ._common import expect_answer, expect_close, passed

SHAPES = [(5, 3, 4, 4), (7, 1, 6, 5), (3, 2, 8, 8), (1, 3, 32, 32)]


def _reference(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = images.double() / 255
    return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3), correction=0)


def _as_tensor(value: object, what: str) -> torch.Tensor:
    try:
        return torch.as_tensor(value, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError):
        raise AssertionError(
            f"{what}: expected a tensor (or list/tuple) of one number per channel, got {type(value).__name__}."
        ) from None


def check_channel_mean_std(channel_mean_std) -> None:
    """``channel_mean_std(images)``: uint8 images (N, C, H, W) -> (mean, std) per channel, in [0, 1] units."""
    generator = torch.Generator().manual_seed(0)
    for shape in SHAPES:
        images = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
        result = channel_mean_std(images.clone())
        expect_answer(result, "channel_mean_std")
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise AssertionError(f"channel_mean_std should return a pair (mean, std); got {type(result).__name__}.")
        mean, std = (_as_tensor(v, name) for v, name in zip(result, ("mean", "std")))
        ref_mean, ref_std = _reference(images)
        where = f"for images of shape {shape}"
        if mean.shape == ref_mean.shape and torch.allclose(mean, ref_mean * 255, atol=1e-3):
            raise AssertionError(f"mean {where} is 255 times too large. Hint: divide the uint8 values by 255 first.")
        expect_close(
            mean,
            ref_mean,
            f"mean {where}",
            "one mean per channel: average over the images, rows and columns, i.e. dim=(0, 2, 3), of images / 255.",
            atol=1e-5,
        )
        unbiased = images.double().div(255).std(dim=(0, 2, 3))
        if std.shape == ref_std.shape and not torch.allclose(std, ref_std, atol=1e-5):
            if torch.allclose(std, unbiased, atol=1e-5):
                raise AssertionError(
                    f"std {where} is the unbiased (n - 1) estimate. Hint: use the population std, "
                    "x.std(dim=(0, 2, 3), correction=0) (or unbiased=False), as data.std does."
                )
        expect_close(
            std,
            ref_std,
            f"std {where}",
            "the population std over dim=(0, 2, 3) of images / 255 (correction=0).",
            atol=1e-5,
        )
    passed("per-channel mean and std match the reference on 4 random image batches (1 to 3 channels).")


__all__ = ["check_channel_mean_std"]
