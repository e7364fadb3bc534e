"""Slips for notebook 02's exercises: wrong pieces a learner would plausibly write, and words their hints contain."""

from __future__ import annotations

import torch
from torch import nn


def _bn_eps_outside(x, gamma, beta, eps=1e-5):
    mean, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / (var.sqrt() + eps) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)  # eps outside


def _bn_unbiased(x, gamma, beta, eps=1e-5):
    mean, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), keepdim=True)  # divides by n - 1
    return (x - mean) / (var + eps).sqrt() * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def _bn_per_image(x, gamma, beta, eps=1e-5):
    mean, var = x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), unbiased=False, keepdim=True)  # no batch axis
    return (x - mean) / (var + eps).sqrt() * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def _bn_detached(x, gamma, beta, eps=1e-5):
    mean, var = x.mean(dim=(0, 2, 3), keepdim=True).detach(), x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / (var.detach() + eps).sqrt() * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def _running_biased(running_mean, running_var, x, momentum=0.1):
    mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)  # the biased variance
    return (1 - momentum) * running_mean + momentum * mean, (1 - momentum) * running_var + momentum * var


def _running_wrong_way(running_mean, running_var, x, momentum=0.1):
    mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3))
    return momentum * running_mean + (1 - momentum) * mean, momentum * running_var + (1 - momentum) * var


class _BatchNorm2d(nn.Module):
    """A BatchNorm2d whose class attributes switch one slip on."""

    dims, unbiased_running, momentum_wrong_way, batch_stats_in_eval, counts, no_grad_forward = (0, 2, 3), 1, 0, 0, 1, 0

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight, self.bias = nn.Parameter(torch.ones(num_features)), nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0))

    def forward(self, x):
        with torch.set_grad_enabled(not self.no_grad_forward and torch.is_grad_enabled()):
            if self.training:
                with torch.no_grad():
                    m = 1 - self.momentum if self.momentum_wrong_way else self.momentum
                    var = x.var(dim=(0, 2, 3), unbiased=bool(self.unbiased_running))
                    self.running_mean.mul_(1 - m).add_(m * x.mean(dim=(0, 2, 3)))
                    self.running_var.mul_(1 - m).add_(m * var)
                    self.num_batches_tracked += self.counts
            if self.training or self.batch_stats_in_eval:
                mean, var = x.mean(dim=self.dims, keepdim=True), x.var(dim=self.dims, unbiased=False, keepdim=True)
            else:
                mean, var = self.running_mean.view(1, -1, 1, 1), self.running_var.view(1, -1, 1, 1)
            return (x - mean) / (var + self.eps).sqrt() * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class _BiasedRunningVar(_BatchNorm2d):
    unbiased_running = 0


class _StatsOverDim0(_BatchNorm2d):
    dims = (0,)


class _StatsOverEverything(_BatchNorm2d):
    dims = (0, 1, 2, 3)


class _MomentumWrongWay(_BatchNorm2d):
    momentum_wrong_way = 1


class _BatchStatsInEval(_BatchNorm2d):
    batch_stats_in_eval = 1


class _NotCounting(_BatchNorm2d):
    counts = 0


class _AllUnderNoGrad(_BatchNorm2d):
    no_grad_forward = 1


class _StatsAsAttributes(_BatchNorm2d):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__(num_features, eps, momentum)
        del self.running_mean, self.running_var  # plain attributes instead: not in the state dict
        self.running_mean, self.running_var = torch.zeros(num_features), torch.ones(num_features)


MISTAKES = {
    "bn_forward": [
        (_bn_eps_outside, "eps goes inside the square root"),
        (_bn_unbiased, "divides by n, not n - 1"),
        (_bn_per_image, r"over the batch and the pixels: dim=\(0, 2, 3\)"),
        (_bn_detached, "no .detach()"),
    ],
    "update_running_stats": [
        (_running_biased, "unbiased batch variance"),
        (_running_wrong_way, "momentum weighs the NEW batch"),
    ],
    "BatchNorm2d": [
        (_BiasedRunningVar, "unbiased batch variance"),
        (_StatsOverDim0, r"dim=\(0, 2, 3\)"),
        (_StatsOverEverything, r"dim=\(0, 2, 3\)"),
        (_MomentumWrongWay, "momentum weighs the NEW batch"),
        (_BatchStatsInEval, "in eval mode .* use running_mean and running_var"),
        (_NotCounting, "add 1 to num_batches_tracked"),
        (_AllUnderNoGrad, "torch.no_grad"),
        (_StatsAsAttributes, "register_buffer"),
    ],
}
