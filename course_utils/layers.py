"""Layers written from scratch, for the lessons that open them up."""

from __future__ import annotations

import torch
from torch import nn


class BatchNorm2d(nn.Module):
    """Batch normalization over (N, H, W) for each channel, without ``F.batch_norm``.

    Same constructor, parameters and buffers as ``torch.nn.BatchNorm2d``
    (``weight``, ``bias``, ``running_mean``, ``running_var``,
    ``num_batches_tracked``), so state dicts interchange both ways.

    - Training (``self.training``): normalize with the batch's own mean and
      (biased) variance, and update the running estimates, whose variance is
      the *unbiased* one, as PyTorch does.
    - Evaluation: normalize with the running estimates, so one image's output
      no longer depends on the rest of its batch.
    """

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
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features, **factory))  # gamma
            self.bias = nn.Parameter(torch.zeros(num_features, **factory))  # beta
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm2d({self.num_features}) expects input of shape (N, {self.num_features}, H, W), "
                f"got {tuple(x.shape)}."
            )
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            n = x.numel() // x.shape[1]  # values per channel: N * H * W
            if self.training and n == 1:
                raise ValueError(
                    f"BatchNorm2d needs more than one value per channel in training, got input {tuple(x.shape)}: "
                    "use a batch of 2 or more, or call model.eval()."
                )
            mean = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), unbiased=False)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean, var * n / max(n - 1, 1))
        else:
            mean, var = self.running_mean, self.running_var
        x_hat = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + self.eps)
        if self.affine:
            x_hat = x_hat * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return x_hat

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        self.num_batches_tracked += 1
        # momentum=None means a cumulative (equal-weight) average, as in PyTorch.
        m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.mul_(1 - m).add_(mean, alpha=m)
        self.running_var.mul_(1 - m).add_(unbiased_var, alpha=m)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class GroupedConv2d(nn.Module):
    """A grouped convolution spelled out: split the channels into ``groups``, convolve each, concatenate.

    Equal to ``nn.Conv2d(..., groups=groups, bias=False)`` when given its weight
    (``weight[g * out_per_group:(g + 1) * out_per_group]`` is group g's kernel);
    ``nn.Conv2d`` does the same work in one kernel call and is much faster.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0, groups: int = 1
    ) -> None:
        super().__init__()
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"groups={groups} must divide both in_channels={in_channels} and out_channels={out_channels} "
                f"(each group gets in_channels/groups inputs and out_channels/groups outputs)."
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.stride, self.padding = stride, padding
        # One weight tensor laid out exactly like nn.Conv2d's, so weights copy across.
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kernel_size, kernel_size))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"GroupedConv2d expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}.")
        inputs = x.chunk(self.groups, dim=1)
        kernels = self.weight.chunk(self.groups, dim=0)
        outputs = [
            torch.nn.functional.conv2d(xi, wi, stride=self.stride, padding=self.padding)
            for xi, wi in zip(inputs, kernels)
        ]
        return torch.cat(outputs, dim=1)
