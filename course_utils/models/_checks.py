"""Input checks shared by the models: a wrong input fails with a message that says
what was expected and what was given, before it reaches a cryptic conv error."""

from __future__ import annotations

import torch


def check_image_batch(x: object, in_channels: int, model_name: str) -> None:
    """Raise a clear error unless ``x`` is a float tensor of shape (N, in_channels, H, W)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{model_name} expects a torch.Tensor of shape (N, {in_channels}, H, W), got {type(x).__name__}."
        )
    if x.dim() != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.dim() == 3 else ""
        raise ValueError(
            f"{model_name} expects a 4-D batch (N, {in_channels}, H, W), got shape {tuple(x.shape)}.{hint}"
        )
    if x.shape[1] != in_channels:
        raise ValueError(
            f"{model_name} expects {in_channels} input channel(s), got shape {tuple(x.shape)} "
            f"with {x.shape[1]}. Build the model with in_channels={x.shape[1]} or convert the images."
        )
    if not torch.is_floating_point(x):
        raise TypeError(
            f"{model_name} expects a floating-point tensor, got dtype {x.dtype}. "
            "Convert images with x.float() / 255 (and normalize) first."
        )


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is a positive int, else raise a clear error."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return value
