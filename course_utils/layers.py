"""Batch normalization written from scratch, for the lesson that opens it up."""

from __future__ import annotations

import torch
from torch import nn


class BatchNorm2d(nn.Module):
    """Batch normalization over (N, H, W) for each channel, without ``F.batch_norm``, with ``nn.BatchNorm2d``'s
    constructor, parameters and buffers. Training: normalize with the batch's mean and (biased) variance, and update
    the running estimates (with the *unbiased* variance, as PyTorch does). Eval: use the running estimates."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = nn.Parameter(torch.ones(num_features, **factory)) if affine else None  # gamma
        self.bias = nn.Parameter(torch.zeros(num_features, **factory)) if affine else None  # beta
        track = track_running_stats
        self.register_buffer("running_mean", torch.zeros(num_features, **factory) if track else None)
        self.register_buffer("running_var", torch.ones(num_features, **factory) if track else None)
        self.register_buffer("num_batches_tracked", torch.tensor(0, device=device) if track else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize ``x`` of shape (N, C, H, W); the output has ``x``'s shape and dtype."""
        if x.dim() != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm2d({self.num_features}) expects input of shape (N, {self.num_features}, H, W), "
                f"got {tuple(x.shape)}."
            )
        # Statistics in at least float32: a float16 sum over N*H*W values loses too much (nn does the same).
        x_acc = x.to(torch.promote_types(x.dtype, torch.float32))
        if self.training or not self.track_running_stats:
            n = x.numel() // x.shape[1]  # values per channel: N * H * W
            if self.training and n == 1:
                raise ValueError(
                    f"BatchNorm2d needs more than one value per channel in training, got input {tuple(x.shape)}: "
                    "use a batch of 2 or more, or call model.eval()."
                )
            # An empty batch has no statistics (its mean would be NaN): normalize it with placeholders.
            mean = x_acc.mean(dim=(0, 2, 3)) if n else x_acc.new_zeros(self.num_features)
            var = x_acc.var(dim=(0, 2, 3), unbiased=False) if n else x_acc.new_ones(self.num_features)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean, var * n / max(n - 1, 1), n)
        else:
            mean, var = self.running_mean, self.running_var
        shape = (1, -1, 1, 1)
        x_hat = (x_acc - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            x_hat = x_hat * self.weight.view(shape) + self.bias.view(shape)
        return x_hat.to(x.dtype)  # half in, half out, as nn.BatchNorm2d and autocast expect

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, unbiased_var: torch.Tensor, n: int) -> None:
        self.num_batches_tracked += 1
        # momentum=None means a cumulative (equal-weight) average. An empty batch (n = 0) is counted but leaves
        # the estimates as they are: both as in PyTorch.
        m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        if n:
            self.running_mean.mul_(1 - m).add_(mean, alpha=m)
            self.running_var.mul_(1 - m).add_(unbiased_var, alpha=m)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )
