"""Checks for notebook 02 (batch normalization): the training-mode forward and the running-statistics update."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import expect_answer, expect_close, passed

# (shape, eps, scale, shift): the last case has a tiny variance, so where eps goes matters.
BN_CASES = [
    ((4, 3, 5, 5), 1e-5, 1.0, 0.0),
    ((2, 6, 3, 4), 1e-5, 3.0, -2.0),
    ((8, 1, 2, 2), 1e-5, 0.5, 1.0),
    ((16, 5, 1, 1), 1e-5, 2.0, 0.5),
    ((3, 4, 6, 6), 0.1, 0.05, 0.0),
]


def _affine_inputs(shape, scale, shift, generator):
    c = shape[1]
    x = torch.randn(shape, generator=generator, dtype=torch.float64) * scale + shift
    gamma = torch.rand(c, generator=generator, dtype=torch.float64) + 0.5
    beta = torch.randn(c, generator=generator, dtype=torch.float64)
    return x, gamma, beta


def _bn_mistakes(x, gamma, beta, eps):
    """What some common slips compute instead, with a hint for each."""
    view = (1, -1, 1, 1)
    g, b = gamma.view(view), beta.view(view)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    mistakes = [
        (
            (x - mean) / torch.sqrt(var + eps),
            "gamma and beta are missing: return gamma * x_hat + beta (reshaped to (1, C, 1, 1)).",
        ),
        (
            (x - mean) / (torch.sqrt(var) + eps) * g + b,
            "eps goes inside the square root: (x - mean) / sqrt(var + eps).",
        ),
    ]
    n = x.numel() // x.shape[1]
    if n > 1:
        unbiased = x.var(dim=(0, 2, 3), unbiased=True, keepdim=True)
        mistakes.append(
            (
                (x - mean) / torch.sqrt(unbiased + eps) * g + b,
                "BN normalizes with the biased variance (divide by n, not n - 1): x.var(..., unbiased=False).",
            )
        )
    if x.shape[2] * x.shape[3] > 1:
        m2 = x.mean(dim=(2, 3), keepdim=True)
        v2 = x.var(dim=(2, 3), unbiased=False, keepdim=True)
        mistakes.append(
            (
                (x - m2) / torch.sqrt(v2 + eps) * g + b,
                "the statistics must also run over the batch: dim=(0, 2, 3), not just (2, 3).",
            )
        )
    if x.shape[0] > 1:
        m0 = x.mean(dim=0, keepdim=True)
        v0 = x.var(dim=0, unbiased=False, keepdim=True)
        mistakes.append(
            (
                (x - m0) / torch.sqrt(v0 + eps) * g + b,
                "one mean and variance per channel, over the batch AND the pixels: dim=(0, 2, 3).",
            )
        )
    return mistakes


def check_bn_forward(bn_forward) -> None:
    """``bn_forward(x, gamma, beta, eps)``: batch norm in training mode, compared with ``F.batch_norm``."""
    generator = torch.Generator().manual_seed(0)
    for shape, eps, scale, shift in BN_CASES:
        x, gamma, beta = _affine_inputs(shape, scale, shift, generator)
        expected = F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)
        xs, gs, bs = (t.clone().requires_grad_(True) for t in (x, gamma, beta))
        got = bn_forward(xs, gs, bs, eps=eps)
        expect_answer(got, "bn_forward")
        what = f"bn_forward on x of shape {shape} (eps={eps})"
        if (
            isinstance(got, torch.Tensor)
            and got.shape == expected.shape
            and not torch.allclose(got.detach().double(), expected, atol=1e-6)
        ):
            for wrong, hint in _bn_mistakes(x, gamma, beta, eps):
                if torch.allclose(got.detach().double(), wrong, atol=1e-6):
                    raise AssertionError(f"{what}: the output does not match F.batch_norm. Hint: {hint}")
        expect_close(
            got,
            expected,
            what,
            "per channel: mean and biased variance over dims (0, 2, 3); x_hat = (x - mean) / sqrt(var + eps); "
            "return gamma * x_hat + beta, with mean, var, gamma, beta viewed as (1, C, 1, 1).",
            atol=1e-6,
        )
        # The gradients must flow through the batch statistics too, as in F.batch_norm.
        weights = torch.randn(shape, generator=generator, dtype=torch.float64)
        if not got.requires_grad:
            raise AssertionError(
                f"{what}: the output does not depend on x in autograd's eyes. Hint: compute it from x with torch "
                "operations only (no .detach(), .item(), .numpy() or torch.no_grad())."
            )
        grads = torch.autograd.grad((got * weights).sum(), (xs, gs, bs), allow_unused=True)
        xr, gr, br = (t.clone().requires_grad_(True) for t in (x, gamma, beta))
        ref_grads = torch.autograd.grad(
            (F.batch_norm(xr, None, None, gr, br, training=True, eps=eps) * weights).sum(), (xr, gr, br)
        )
        for name, g, r in zip(("x", "gamma", "beta"), grads, ref_grads):
            if g is None:
                raise AssertionError(f"{what}: the output does not depend on {name}. Hint: use {name} in the formula.")
            expect_close(
                g,
                r,
                f"{what}: the gradient with respect to {name}",
                "let autograd see the whole computation: compute mean and var from x itself, without .detach().",
                atol=1e-6,
            )
    passed(f"bn_forward matches F.batch_norm (training mode), outputs and gradients, on {len(BN_CASES)} random inputs.")


def check_running_stats(update_running_stats) -> None:
    """``update_running_stats(running_mean, running_var, x, momentum)`` -> nn.BatchNorm2d's next buffers."""
    generator = torch.Generator().manual_seed(1)
    cases = [((6, 3, 4, 4), 0.1), ((2, 5, 3, 3), 0.3), ((32, 2, 1, 1), 0.01), ((4, 4, 2, 5), 0.9)]
    for shape, momentum in cases:
        c = shape[1]
        x = torch.randn(shape, generator=generator) * 2 + 1
        running_mean = torch.randn(c, generator=generator)
        running_var = torch.rand(c, generator=generator) + 0.5
        bn = nn.BatchNorm2d(c, momentum=momentum)
        with torch.no_grad():
            bn.running_mean.copy_(running_mean)
            bn.running_var.copy_(running_var)
            bn(x)
        result = update_running_stats(running_mean.clone(), running_var.clone(), x.clone(), momentum=momentum)
        expect_answer(result, "update_running_stats")
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise AssertionError(
                f"update_running_stats should return a pair (new_mean, new_var), got {type(result).__name__}."
            )
        new_mean, new_var = result
        what = f"for x of shape {shape}, momentum={momentum}"
        mean = x.mean(dim=(0, 2, 3))
        biased = x.var(dim=(0, 2, 3), unbiased=False)
        if (
            isinstance(new_mean, torch.Tensor)
            and torch.allclose(new_mean, momentum * running_mean + (1 - momentum) * mean, atol=1e-5)
            and momentum != 0.5
        ):
            raise AssertionError(
                f"new running mean {what}: momentum is applied the wrong way round. Hint: in PyTorch, "
                "new = (1 - momentum) * running + momentum * batch_value: momentum is the weight of the NEW batch."
            )
        expect_close(
            new_mean,
            bn.running_mean,
            f"new running mean {what}",
            "(1 - momentum) * running_mean + momentum * x.mean(dim=(0, 2, 3)).",
        )
        if isinstance(new_var, torch.Tensor) and torch.allclose(
            new_var, (1 - momentum) * running_var + momentum * biased, atol=1e-5
        ):
            raise AssertionError(
                f"new running variance {what}: you used the biased batch variance. Hint: the running estimate uses the "
                "unbiased variance, x.var(dim=(0, 2, 3), unbiased=True) = biased * n / (n - 1), n = N * H * W."
            )
        expect_close(
            new_var,
            bn.running_var,
            f"new running variance {what}",
            "(1 - momentum) * running_var + momentum * x.var(dim=(0, 2, 3), unbiased=True).",
        )
    passed(f"the running mean and variance match nn.BatchNorm2d's buffers on {len(cases)} random batches.")


__all__ = ["check_bn_forward", "check_running_stats"]
