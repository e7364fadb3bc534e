"""Checks for notebook 02 (batch normalization): the training-mode forward and the running-statistics update."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import expect_answer, expect_close, passed
from ._exercise import exercise


def _reject_slips(got: object, slips: dict[str, torch.Tensor], what: str) -> None:
    """Raise with the hint that fixes a slip if ``got`` is what that slip computes (``slips``: {hint: its result})."""
    for hint, wrong in slips.items():
        if isinstance(got, torch.Tensor) and got.shape == wrong.shape and torch.allclose(got.detach().double(), wrong):
            raise AssertionError(f"{what} does not match the reference. Hint: {hint}")


@exercise("bn_forward")
def check_bn_forward(bn_forward) -> None:
    """``bn_forward(x, gamma, beta, eps)``: training-mode batch norm, outputs and gradients against F.batch_norm."""
    generator = torch.Generator().manual_seed(0)
    for shape, eps, scale in [((4, 3, 5, 5), 1e-5, 1.0), ((2, 6, 3, 4), 1e-5, 3.0), ((3, 4, 6, 6), 0.1, 0.05)]:
        x = torch.randn(shape, generator=generator, dtype=torch.float64) * scale + 1  # scale 0.05: eps matters
        gamma, beta = (torch.randn(shape[1], generator=generator, dtype=torch.float64) for _ in range(2))
        inputs, reference = ([t.clone().requires_grad_(True) for t in (x, gamma, beta)] for _ in range(2))
        got, what = bn_forward(*inputs, eps=eps), f"bn_forward on x of shape {shape} (eps={eps})"
        expect_answer(got, "bn_forward")
        g, b, mean = gamma.view(1, -1, 1, 1), beta.view(1, -1, 1, 1), x.mean(dim=(0, 2, 3), keepdim=True)
        var, unbiased = (x.var(dim=(0, 2, 3), correction=c, keepdim=True) for c in (0, 1))
        slips = {
            "gamma and beta are missing: return gamma * x_hat + beta.": (x - mean) / (var + eps).sqrt(),
            "eps goes inside the square root: (x - mean) / sqrt(var + eps).": (x - mean) / (var.sqrt() + eps) * g + b,
            "BN divides by n, not n - 1: x.var(..., unbiased=False).": (x - mean) / (unbiased + eps).sqrt() * g + b,
            "statistics over the batch AND the pixels: dim=(0, 2, 3).": F.instance_norm(x, eps=eps) * g + b,
        }
        _reject_slips(got, slips, what)
        expected = F.batch_norm(reference[0], None, None, *reference[1:], training=True, eps=eps)
        expect_close(got, expected, what, "mean and biased variance per channel over dims (0, 2, 3).")
        w = torch.randn(shape, generator=generator, dtype=torch.float64)  # a random loss: sum(out * w)
        hint = "let autograd see it all: compute mean and var from x, no .detach(), .item() or torch.no_grad()."
        grads = torch.autograd.grad((got * w).sum(), inputs, allow_unused=True) if got.requires_grad else [None] * 3
        for name, mine, ref in zip(("x", "gamma", "beta"), grads, torch.autograd.grad((expected * w).sum(), reference)):
            expect_close(torch.zeros_like(ref) if mine is None else mine, ref, f"{what}: d/d{name}", hint)
    passed("bn_forward matches F.batch_norm (training mode), outputs and gradients, on 3 random inputs.")


@exercise("update_running_stats")
def check_running_stats(update_running_stats) -> None:
    """``update_running_stats(running_mean, running_var, x, momentum)`` -> nn.BatchNorm2d's next buffers."""
    generator = torch.Generator().manual_seed(1)
    for shape, m in [((6, 3, 4, 4), 0.1), ((2, 5, 3, 3), 0.3), ((4, 4, 2, 5), 0.9)]:
        x = torch.randn(shape, generator=generator) * 2 + 1
        mean, var = torch.randn(shape[1], generator=generator), torch.rand(shape[1], generator=generator) + 0.5
        want_mean, want_var = mean.clone(), var.clone()
        F.batch_norm(x, want_mean, want_var, training=True, momentum=m)  # updates them in place, as nn.BatchNorm2d does
        result = update_running_stats(mean.clone(), var.clone(), x.clone(), momentum=m)
        expect_answer(result, "update_running_stats")
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise AssertionError(f"expected a pair (new_mean, new_var), got {type(result).__name__}. Hint: return both")
        what = f"for x of shape {shape}, momentum={m}"
        wrong_way = (m * mean + (1 - m) * x.mean(dim=(0, 2, 3))).double()
        hint = "momentum is the weight of the NEW batch: (1 - momentum) * running + momentum * batch value."
        _reject_slips(result[0], {hint: wrong_way}, f"new running mean {what}")
        expect_close(result[0], want_mean, f"new running mean {what}", hint)
        biased = ((1 - m) * var + m * x.var(dim=(0, 2, 3), correction=0)).double()
        hint = "the running estimate uses the unbiased variance, x.var(dim=(0, 2, 3), unbiased=True)."
        _reject_slips(result[1], {f"you used the biased batch variance; {hint}": biased}, f"new running var {what}")
        expect_close(result[1], want_var, f"new running variance {what}", hint)
    passed("the running mean and variance match what nn.BatchNorm2d keeps on 3 random batches.")
