"""Checks for notebook 01 (degradation and gradients): per-layer gradient norms measured with hooks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._common import expect_answer, expect_equal, passed


def _small_plain(bn: bool, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    layers, c_in = [], 3
    for width, stride in [(8, 1), (8, 1), (16, 2), (16, 1)]:
        layers.append(nn.Conv2d(c_in, width, 3, stride=stride, padding=1, bias=not bn))
        if bn:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU())
        c_in = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 10))


def _cases():
    """(model, x, y) triples: small plain nets with and without BN, and the course's own plain-8."""
    from ..models import cifar_plain

    generator = torch.Generator().manual_seed(1)
    for model, shape in [
        (_small_plain(bn=True, seed=0), (4, 3, 12, 12)),
        (_small_plain(bn=False, seed=1), (3, 3, 10, 10)),
        (cifar_plain(8), (2, 3, 16, 16)),
    ]:
        x = torch.randn(shape, generator=generator)
        y = torch.randint(0, 10, (shape[0],), generator=generator)
        yield model, x, y


def _reference(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """The gradient of the cross-entropy with respect to each Conv2d's output, via retain_grad."""
    outputs: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(module, inputs, output):
            output.retain_grad()
            outputs[name] = output

        return hook

    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    handles = [m.register_forward_hook(keep(name)) for name, m in convs]
    try:
        F.cross_entropy(model(x), y).backward()
    finally:
        for h in handles:
            h.remove()
    model.zero_grad(set_to_none=True)
    return {name: outputs[name].grad.norm().item() for name, _ in convs}


def _hook_count(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks)
        for m in model.modules()
    )


def check_output_grad_norms(output_grad_norms) -> None:
    """``output_grad_norms(model, x, y)`` -> ``{conv name: norm of dLoss/d(conv output)}``, in model order."""
    for i, (model, x, y) in enumerate(_cases()):
        state = {k: v.clone() for k, v in model.state_dict().items()}
        expected = _reference(model, x, y)
        model.load_state_dict(state)  # the reference's forward pass moved the BN running statistics
        hooks_before = _hook_count(model)
        got = output_grad_norms(model, x, y)
        what = f"model {i + 1} ({type(model).__name__}, input {tuple(x.shape)})"
        expect_answer(got, "output_grad_norms")
        if not isinstance(got, dict):
            raise AssertionError(f"{what}: expected a dict {{layer name: norm}}, got {type(got).__name__}.")
        expect_equal(
            list(got),
            list(expected),
            f"{what}: the layer names",
            "one entry per nn.Conv2d, named as in model.named_modules(), in that order (input to output).",
        )
        for name, value in expected.items():
            value_got = got[name]
            if isinstance(value_got, torch.Tensor):
                value_got = value_got.item()
            if not isinstance(value_got, (int, float)) or not math.isclose(
                value_got, value, rel_tol=1e-4, abs_tol=1e-12
            ):
                raise AssertionError(
                    f"{what}, layer {name!r}: expected a gradient norm of {value:.6g}, got {value_got!r}. Hint: the "
                    "norm of the gradient of F.cross_entropy(model(x), y) with respect to the layer's *output* (not "
                    "its weight): in a forward hook, call output.register_hook(...) to catch that gradient in backward."
                )
        if _hook_count(model) != hooks_before:
            raise AssertionError(
                f"{what}: your function left {_hook_count(model) - hooks_before} hook(s) attached to the model. "
                "Hint: keep the handles that register_forward_hook returns and call handle.remove() at the end."
            )
    passed("gradient norms at every conv output match the reference on 3 models, and no hook was left behind.")


__all__ = ["check_output_grad_norms"]
