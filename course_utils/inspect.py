"""Looking inside a network: parameter counts, a per-layer shape table, FLOPs.

The shape table uses forward hooks, the same mechanism
:mod:`course_utils.recorders` uses to record gradients and activations during
training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (weights and biases; BN's gamma and beta count, its running stats do not)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def parameter_summary(model: nn.Module) -> dict[str, int]:
    """``{"total": ..., "trainable": ..., <child>: ...}``: totals and one entry per top-level child."""
    summary = {"total": count_parameters(model), "trainable": count_parameters(model, trainable_only=True)}
    for name, child in model.named_children():
        summary[name] = count_parameters(child)
    return summary


@dataclass
class LayerInfo:
    """One row of :func:`layer_table`."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    depth: int


def layer_table(
    model: nn.Module,
    input_size: tuple[int, ...] = (1, 3, 224, 224),
    depth: int = 2,
    device: torch.device | str | None = None,
) -> list[LayerInfo]:
    """Run one forward pass and record every module's output shape, like Keras' ``summary()``.

    ``depth`` limits how deep in the module tree rows are kept (1: top-level
    children only). A forward hook is attached to each module, and all hooks
    are removed afterwards, even if the forward pass fails.
    """
    if len(input_size) != 4:
        raise ValueError(f"input_size must be (N, C, H, W), got {input_size!r}.")
    device = device or next((p.device for p in model.parameters()), torch.device("cpu"))
    rows: list[LayerInfo] = []
    handles = []

    def make_hook(name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else ()
            own = sum(p.numel() for p in module.parameters())
            rows.append(LayerInfo(name, type(module).__name__, shape, own, name.count(".") + 1))

        return hook

    for name, module in model.named_modules():
        if name and name.count(".") < depth:
            handles.append(module.register_forward_hook(make_hook(name)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(input_size, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return rows


def format_layer_table(rows: list[LayerInfo], total: int | None = None) -> str:
    """The rows of :func:`layer_table` as an aligned text table."""
    lines = [f"{'layer':<28}{'type':<20}{'output shape':<22}{'params':>12}", "-" * 82]
    for r in rows:
        indent = "  " * (r.depth - 1)
        lines.append(f"{indent + r.name:<28}{r.kind:<20}{str(list(r.output_shape)):<22}{r.params:>12,}")
    if total is not None:
        lines += ["-" * 82, f"{'total parameters':<70}{total:>12,}"]
    return "\n".join(lines)


def summary(model: nn.Module, input_size: tuple[int, ...] = (1, 3, 224, 224), depth: int = 1) -> str:
    """A printable per-layer table of output shapes and parameters, with the total."""
    return format_layer_table(layer_table(model, input_size, depth), count_parameters(model))


def count_flops(model: nn.Module, input_size: tuple[int, ...] = (1, 3, 224, 224), per_module: bool = False):
    """FLOPs of one forward pass, counted by ``torch.utils.flop_counter``.

    Convention: a multiply-add counts as **2** FLOPs (PyTorch's counter and
    most papers since), so ResNet-50 at 224x224 is about 8.2 GFLOPs, i.e. the
    4.1 "G multiply-adds" in the ResNet paper's table. Only matrix products
    and convolutions are counted; BN, ReLU and pooling are not.

    Returns the total, or with ``per_module=True`` a dict ``{module name: flops}``
    over the top-level children as well (key ``"total"`` for the whole).
    """
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            model(torch.zeros(input_size, device=device))
    finally:
        model.train(was_training)
    total = counter.get_total_flops()
    if not per_module:
        return total
    by_module = counter.get_flop_counts()
    root = type(model).__name__
    out = {"total": total}
    for name, _ in model.named_children():
        counts = by_module.get(f"{root}.{name}", {})
        out[name] = int(sum(counts.values()))
    return out


def conv_weights(in_channels: int, out_channels: int, kernel_size: int, groups: int = 1) -> int:
    """Weights of one convolution without bias: k * k * (C_in / groups) * C_out."""
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide both in_channels={in_channels} and out_channels={out_channels}.")
    return kernel_size * kernel_size * (in_channels // groups) * out_channels
