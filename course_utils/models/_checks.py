"""Input checks shared by the models: a wrong input gets a message saying what was expected, not a conv error."""

from __future__ import annotations

import torch


def check_image_batch(x: object, in_channels: int, model_name: str) -> None:
    """Raise a clear error unless ``x`` is a float tensor of shape (N, in_channels, H, W)."""
    expected = f"{model_name} expects a floating-point tensor of shape (N, {in_channels}, H, W)"
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{expected}, got {type(x).__name__}.")
    if x.dim() != 4 or x.shape[1] != in_channels:
        hint = "add a batch dimension with x.unsqueeze(0)" if x.dim() == 3 else "check the layout and channels"
        if x.dim() == 4 and x.shape[1] != in_channels:
            hint = f"build the model with in_channels={x.shape[1]}, or convert the images"
        raise ValueError(f"{expected}, got shape {tuple(x.shape)}: {hint}.")
    if not torch.is_floating_point(x):
        raise TypeError(f"{expected}, got dtype {x.dtype}: convert images with x.float() / 255 (and normalize).")


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is a positive int, else raise a clear error."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return value
