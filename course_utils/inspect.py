"""Looking inside a network: parameter counts, a per-layer shape table (by forward hooks), FLOPs."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (weights and biases; BN's gamma and beta count, its running stats do not)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class LayerInfo(NamedTuple):
    """One row of :func:`layer_table`: a module's name, class name, output shape, parameters and tree depth."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    depth: int


def _device_of(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def layer_table(
    model: nn.Module,
    input_size: tuple[int, ...] = (1, 3, 224, 224),
    depth: int = 2,
    device: torch.device | str | None = None,
) -> list[LayerInfo]:
    """Every module's output shape, in call order, from one forward pass (eval mode, no gradients) with forward hooks,
    removed afterwards even if it fails. ``depth``: how deep in the module tree (1: top-level children only)."""
    if len(input_size) != 4:
        raise ValueError(f"input_size must be (N, C, H, W), got {input_size!r}.")
    rows: list[LayerInfo] = []

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, output: object) -> None:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else ()
            own = count_parameters(module)
            rows.append(LayerInfo(name, type(module).__name__, shape, own, name.count(".") + 1))

        return record

    modules = [(name, m) for name, m in model.named_modules() if name and name.count(".") < depth]
    handles = [m.register_forward_hook(hook(name)) for name, m in modules]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(input_size, device=device or _device_of(model)))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return rows


def summary(model: nn.Module, input_size: tuple[int, ...] = (1, 3, 224, 224), depth: int = 1) -> str:
    """A printable table of each layer's type, output shape and parameters (see :func:`layer_table`), with the total."""
    lines = [f"{'layer':<28}{'type':<20}{'output shape':<22}{'params':>12}", "-" * 82]
    for r in layer_table(model, input_size, depth):
        indent = "  " * (r.depth - 1)
        lines.append(f"{indent + r.name:<28}{r.kind:<20}{str(list(r.output_shape)):<22}{r.params:>12,}")
    lines += ["-" * 82, f"{'total parameters':<70}{count_parameters(model):>12,}"]
    return "\n".join(lines)


def count_flops(model: nn.Module, input_size: tuple[int, ...] = (1, 3, 224, 224)) -> int:
    """FLOPs of one forward pass in eval mode, by ``torch.utils.flop_counter``: matrix products and convolutions only,
    a multiply-add as **2** FLOPs. ResNet-50 at 224x224: 8.18 GFLOPs, 4.09 G multiply-adds as torchvision lists. The
    paper's table 1 says 3.8 G: its v1 bottleneck strides the first 1x1, not the 3x3 (v1.5); counted so, 3.86 G
    multiply-adds."""
    was_training = model.training
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            model.eval()(torch.zeros(input_size, device=_device_of(model)))
    finally:
        model.train(was_training)
    return counter.get_total_flops()


def conv_weights(in_channels: int, out_channels: int, kernel_size: int, groups: int = 1) -> int:
    """Weights of one convolution without bias: k * k * (C_in / groups) * C_out."""
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide both in_channels={in_channels} and out_channels={out_channels}.")
    return kernel_size * kernel_size * (in_channels // groups) * out_channels
