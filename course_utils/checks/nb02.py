"""Checks for notebook 02 (batch normalization): the training-mode forward, the running statistics, the module."""

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ._common import exercise, expect_answer, expect_close, expect_equal, fail, load_reference, passed

_AXES = "one mean and one variance per channel, over the batch and the pixels: dim=(0, 2, 3)."
_WAY = "momentum weighs the NEW batch: (1 - momentum) * running + momentum * the batch's value."
_BIASED = "the running variance takes the unbiased batch variance, x.var(dim=(0, 2, 3), unbiased=True)."
_EVAL = "in eval mode (self.training False) use running_mean and running_var, and leave them as they are."
_NAMES = "parameters weight and bias; buffers running_mean, running_var, num_batches_tracked (register_buffer)."
_GRAD = "let autograd see it: no .detach(), .item() or torch.no_grad(), except around the running statistics' update."
_MODULE = "training: bn_forward(x, self.weight, self.bias, self.eps); eval: running_mean and running_var instead."


def _bn(x, g, b, eps, dims=(0, 2, 3), correction=0, outside=False):
    """Batch norm of ``x``, or with other arguments what a slip computes: other dims, n - 1, eps outside the root."""
    std = x.var(dims, correction=correction, keepdim=True).sqrt()
    std = std + eps if outside else (std**2 + eps).sqrt()
    return (x - x.mean(dims, keepdim=True)) / std * g.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)


def _expect_running(got, want, before, x, m: float, what: str, train: bool = True) -> None:
    """The running (mean, var) after a step on ``x`` from ``before``: a training step updates them, eval leaves them."""
    step = lambda old, new, w=m: (1 - w) * old + w * new
    for i, (name, new) in enumerate([("mean", x.mean((0, 2, 3))), ("variance", x.var((0, 2, 3)))]):
        slips = [(_EVAL, step(before[i], new))] * (not train) + [(_WAY, step(before[i], new, 1 - m))]
        slips += [(_BIASED, step(before[1], x.var((0, 2, 3), correction=0)))] * i
        hint = (_BIASED if i else _WAY) if train else _EVAL
        expect_close(got[i], want[i], f"the running {name} {what}", hint, slips=slips)


@exercise("bn_forward")
def check_bn_forward(bn_forward: Callable[..., torch.Tensor]) -> None:
    """``bn_forward(x, gamma, beta, eps)``: training-mode batch norm, outputs and d/dx against F.batch_norm."""
    gen = torch.Generator().manual_seed(0)
    for shape, eps, scale in [((4, 3, 5, 5), 1e-5, 1.0), ((2, 6, 3, 4), 1e-5, 3.0), ((3, 4, 6, 6), 0.1, 0.05)]:
        x = torch.randn(shape, generator=gen, dtype=torch.float64) * scale + 1  # scale 0.05: eps matters
        g, b = torch.randn(2, shape[1], generator=gen, dtype=torch.float64)
        mine, ref = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        got, what = bn_forward(mine, g, b, eps=eps), f"bn_forward on x of shape {shape} (eps={eps})"
        expect_answer(got, "bn_forward")
        want = F.batch_norm(ref, None, None, g, b, training=True, eps=eps)
        slips = [(_AXES, _bn(x, g, b, eps, dims)) for dims in ((2, 3), (0,), (0, 1, 2, 3))]
        slips += [("eps goes inside the square root: (x - mean) / sqrt(var + eps).", _bn(x, g, b, eps, outside=True))]
        slips += [("BN divides by n, not n - 1: x.var(..., unbiased=False).", _bn(x, g, b, eps, correction=1))]
        slips += [("scale by gamma and shift by beta: gamma * x_hat + beta.", _bn(x, g**0, b * 0, eps))]
        expect_close(got, want, what, _AXES, slips=slips)
        w = torch.randn(shape, generator=gen, dtype=torch.float64)  # a random loss: sum(out * w)
        grad = torch.autograd.grad((got * w).sum(), mine, allow_unused=True)[0] if got.requires_grad else None
        want_grad = torch.autograd.grad((want * w).sum(), ref)[0]
        expect_close(0 * x if grad is None else grad, want_grad, f"{what}: the gradient d/dx", _GRAD)
    passed("bn_forward matches F.batch_norm (training mode), outputs and gradients, on 3 random inputs.")


@exercise("update_running_stats")
def check_running_stats(update_running_stats: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> None:
    """``update_running_stats(running_mean, running_var, x, momentum)`` -> nn.BatchNorm2d's next buffers."""
    gen = torch.Generator().manual_seed(1)
    for shape, m in [((6, 3, 4, 4), 0.1), ((2, 5, 3, 3), 0.3), ((4, 4, 2, 5), 0.9)]:
        x = torch.randn(shape, generator=gen) * 2 + 1
        before = torch.randn(shape[1], generator=gen), torch.rand(shape[1], generator=gen) + 0.5
        want = [t.clone() for t in before]
        F.batch_norm(x, *want, training=True, momentum=m)  # updates them in place, as nn.BatchNorm2d does
        got = update_running_stats(*(t.clone() for t in (*before, x)), momentum=m)
        expect_answer(got, "update_running_stats")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            fail(f"expected a pair (new_mean, new_var), got {type(got).__name__}.", "return both")
        _expect_running(got, want, before, x, m, f"for x of shape {shape}, momentum={m}")
    passed("the running mean and variance match what nn.BatchNorm2d keeps on 3 random batches.")


@exercise("BatchNorm2d")
def check_batch_norm(cls: type[nn.Module]) -> None:
    """``cls(num_features, eps, momentum)``: swaps state dicts with nn.BatchNorm2d, then gives its outputs, buffers."""
    gen, m, eps = torch.Generator().manual_seed(2), 0.2, 1e-3  # not the defaults: a constant in their place shows
    batch = lambda: torch.randn(4, 3, 5, 5, generator=gen) * 2 + 1
    buffers = lambda bn: (bn.running_mean, bn.running_var)
    expect_answer(cls(3)(batch()), "BatchNorm2d(3)(x)", "the normalized x")
    ref, mine = nn.BatchNorm2d(3, eps=eps, momentum=m), cls(3, eps=eps, momentum=m)
    load_reference(mine, ref, f"BatchNorm2d(3, eps={eps}, momentum={m})", _NAMES)  # the same names: both ways
    expect_equal(sorted(n for n, _ in mine.named_parameters()), ["bias", "weight"], "its parameters", _NAMES)
    for step, train in [(s, t) for s in (1, 2, 3) for t in (True, False)]:
        x, before, what = batch(), [t.clone() for t in buffers(ref)], f"(step {step}, {'train' if train else 'eval'})"
        got, want, g, b = mine.train(train)(x), ref.train(train)(x).detach(), ref.weight.detach(), ref.bias.detach()
        slips = [(_AXES, _bn(x, g, b, eps, d)) for d in ((0,), (0, 1, 2, 3))] * train + [(_EVAL, _bn(x, g, b, eps))]
        expect_close(got, want, f"the output {what}", _MODULE, slips=slips)
        expect_equal(got.requires_grad, True, f"output.requires_grad {what}", _GRAD)
        _expect_running(buffers(mine), buffers(ref), before, x, m, what, train)
        count = "add 1 to num_batches_tracked at each training step."
        expect_equal(int(mine.num_batches_tracked), int(ref.num_batches_tracked), f"num_batches_tracked {what}", count)
    passed("your BatchNorm2d swaps state dicts with nn.BatchNorm2d and matches it over 3 training and 3 eval steps.")
