"""Checks for notebook 01 (degradation and gradients): per-layer gradient norms measured with hooks."""

import copy
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..models import cifar_plain
from ._common import exercise, expect_answer, expect_equal, fail, passed

_NAMES = "one entry per nn.Conv2d, named as in model.named_modules(), in that order (input to output)."
_NORM = (
    "the norm of the gradient of F.cross_entropy(model(x), y) with respect to the layer's *output* (not its weight): "
    "in a forward hook, call output.register_hook(...) to catch that gradient in backward."
)
_REMOVE = "keep the handles that register_forward_hook returns and call handle.remove() at the end."


def _reference(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    convs, outputs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)], {}
    handles = [m.register_forward_hook(lambda m, inputs, output: outputs.update({m: output})) for _, m in convs]
    loss = F.cross_entropy(model(x), y)
    for handle in handles:
        handle.remove()
    grads = torch.autograd.grad(loss, [outputs[m] for _, m in convs])
    return {name: grad.norm().item() for (name, _), grad in zip(convs, grads)}


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


@exercise("output_grad_norms")
def check_output_grad_norms(output_grad_norms: Callable[..., dict[str, float]]) -> None:
    """``output_grad_norms(model, x, y)`` -> ``{conv name: norm of dLoss/d(conv output)}``, in model order."""
    no_bn = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 10, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    for model, shape in [(no_bn, (3, 3, 10, 10)), (cifar_plain(8), (2, 3, 16, 16))]:
        x, y, what = torch.randn(shape), torch.randint(0, 10, (shape[0],)), f"{type(model).__name__} on {shape} inputs"
        expected = _reference(copy.deepcopy(model), x, y)  # a copy: a forward pass moves BN's running statistics
        hooks, got = _hooks(model), output_grad_norms(model, x, y)
        expect_answer(got, "output_grad_norms")
        expect_equal(list(got) if isinstance(got, dict) else type(got), list(expected), f"{what}: the names", _NAMES)
        for name, value in expected.items():
            if not math.isclose(float(got[name]), value, rel_tol=1e-4):
                fail(f"{what}, layer {name!r}: expected a gradient norm of {value:.6g}, got {got[name]!r}.", _NORM)
        if _hooks(model) != hooks:
            fail(f"{what}: your function left {_hooks(model) - hooks} hook(s) on the model.", _REMOVE)
    passed("gradient norms at every conv output match the reference on 2 models, and no hook was left behind.")
