"""Interactive parameter-count comparisons from core ipywidgets only (the same under ipywidgets 7.7 on Colab and 8.x),
with inline matplotlib charts. Each returns a ``VBox`` with ``controls`` (by name), ``readout`` (HTML) and
``expected(**values)``: the numbers the readout shows, from formulas the tests check against real modules."""

from __future__ import annotations

import math
from typing import Callable

import ipywidgets as W
import matplotlib.pyplot as plt
import torch

from . import inspect as ins
from .models import resnet
from .plots import BLOCK_COLOURS


def basic_block_params(channels: int, bn: bool = True, bias: bool = False) -> int:
    """Parameters of a BasicBlock at ``channels`` in and out: two 3x3 convs (+ BN, + conv bias)."""
    weights = 2 * ins.conv_weights(channels, channels, 3)
    return weights + (2 * 2 * channels if bn else 0) + (2 * channels if bias else 0)


def bottleneck_params(channels: int, width: int, bn: bool = True, bias: bool = False, groups: int = 1) -> int:
    """Parameters of a bottleneck ``channels -> width -> width -> channels`` (1x1, 3x3 with ``groups``, 1x1)."""
    convs = (channels, width, 1, 1), (width, width, 3, groups), (width, channels, 1, 1)
    per_channel = 2 * width + channels  # the outputs of the three convs: one BN (2 each) and one bias (1 each)
    return sum(ins.conv_weights(*c) for c in convs) + (2 * per_channel if bn else 0) + (per_channel if bias else 0)


def equal_budget_width(cardinality: int, channels: int = 256, budget: int | None = None) -> int:
    """The width d per path that keeps the weights ``C * (2 * channels * d + 9 * d * d)`` closest to ``budget``, by
    default a ResNet bottleneck's (``C = 1, d = 64``): how the ResNeXt paper's table 2 picks d for each C."""
    budget = budget if budget is not None else bottleneck_params(channels, 64, bn=False)
    cost = lambda d: bottleneck_params(channels, cardinality * d, bn=False, groups=cardinality)
    return min(range(1, 4 * channels), key=lambda d: (abs(cost(d) - budget), d))


def _fmt_flops(n: int) -> str:
    """The exact count, then the same in the unit people quote (``3,670,016,000 FLOPs (3.67 G)``)."""
    return f"{n:,} FLOPs ({n / 1e9:.2f} G)" if n >= 1e8 else f"{n:,} FLOPs ({n / 1e6:.1f} M)"


def _show(out: W.Output, fig: plt.Figure) -> None:
    with out:
        out.clear_output(wait=True)
        fig.tight_layout()
        plt.show()


def _bar_chart(out: W.Output, bars: dict[str, int], colours: list[str], ylabel: str, title: str) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    drawn = ax.bar(list(bars), list(bars.values()), color=colours)
    ax.bar_label(drawn, labels=[f"{v:,}" for v in bars.values()], padding=2)
    ax.set(ylabel=ylabel, title=title, ylim=(0, 1.2 * max(max(bars.values()), 1)))
    _show(out, fig)


def _assemble(controls: dict[str, W.ValueWidget], update: Callable[..., None], expected: Callable[..., dict]) -> W.VBox:
    """A VBox of the controls, an HTML readout and a chart, updated on every change."""
    readout, chart = W.HTML(), W.Output()
    box = W.VBox([W.VBox(list(controls.values())), readout, chart])
    box.controls, box.readout, box.chart, box.expected = controls, readout, chart, expected

    def refresh(_change: object = None) -> None:
        update(readout, chart, **{name: c.value for name, c in controls.items()})

    for c in controls.values():
        c.observe(refresh, names="value")
    refresh()
    return box


_STYLE = {"description_width": "initial"}


def _slider(**kwargs) -> W.IntSlider:
    # Updates when released: each update recounts and redraws, too slow to run on every pixel of a drag.
    return W.IntSlider(style=_STYLE, layout=W.Layout(width="480px"), continuous_update=False, **kwargs)


def block_comparison_expected(channels: int, width: int, bn: bool, bias: bool, size: int) -> dict[str, int]:
    """The numbers of :func:`block_comparison`: parameters, and FLOPs on a ``size x size`` map (2 per multiply-add)."""
    return {
        "basic_params": basic_block_params(channels, bn, bias),
        "bottleneck_params": bottleneck_params(channels, width, bn, bias),
        "basic_flops": 2 * basic_block_params(channels, bn=False) * size * size,
        "bottleneck_flops": 2 * bottleneck_params(channels, width, bn=False) * size * size,
    }


def block_comparison(channels: int = 256, width: int = 64) -> W.VBox:
    """Sliders for channels and bottleneck width: parameters and FLOPs of a BasicBlock vs a Bottleneck."""
    controls = {
        "channels": _slider(value=channels, min=64, max=1024, step=64, description="channels in/out"),
        "width": _slider(value=width, min=16, max=512, step=16, description="bottleneck width"),
        "size": _slider(value=56, min=7, max=112, step=7, description="feature map H = W"),
        "bn": W.Checkbox(value=False, description="count BatchNorm γ and β", style=_STYLE),
        "bias": W.Checkbox(value=False, description="conv bias (wasted before BN)", style=_STYLE),
    }

    def update(readout: W.HTML, chart: W.Output, channels: int, width: int, bn: bool, bias: bool, size: int) -> None:
        n = block_comparison_expected(channels, width, bn, bias, size)
        readout.value = (
            f"<b>BasicBlock</b> (3x3, {channels} → 3x3, {channels}): {n['basic_params']:,} parameters, "
            f"{_fmt_flops(n['basic_flops'])} at {size}x{size}<br>"
            f"<b>Bottleneck</b> (1x1, {width} → 3x3, {width} → 1x1, {channels}): "
            f"{n['bottleneck_params']:,} parameters, {_fmt_flops(n['bottleneck_flops'])}<br>"
            f"The basic block has <b>{n['basic_params'] / n['bottleneck_params']:.1f}x</b> the parameters."
        )
        bars = {"BasicBlock": n["basic_params"], "Bottleneck": n["bottleneck_params"]}
        colours = [BLOCK_COLOURS[b] for b in bars]
        _bar_chart(chart, bars, colours, "parameters", f"{channels} channels, bottleneck width {width}")

    return _assemble(controls, update, block_comparison_expected)


def resnet_explorer_expected(depth: int, base: int, size: int) -> dict[str, object]:
    """Parameters, FLOPs, stage output shapes (C, H, W) and parameters per stage (``conv1`` with ``bn1``) of
    ``resnet(depth)`` with planes ``base * (1, 2, 4, 8)``."""
    with torch.device("meta"):  # no memory, no initialisation: counting is instant even for ResNet-152
        model = resnet(depth, widths=(base, 2 * base, 4 * base, 8 * base))
        rows = ins.layer_table(model, (1, 3, size, size), depth=1)
        flops = ins.count_flops(model, (1, 3, size, size))
    stages = ("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "fc")
    shapes = {r.name: r.output_shape[1:] for r in rows if r.name in stages}
    stage_params = {name: ins.count_parameters(getattr(model, name)) for name in stages if name != "maxpool"}
    stage_params["conv1"] += ins.count_parameters(model.bn1)
    return {"params": ins.count_parameters(model), "flops": flops, "shapes": shapes, "stage_params": stage_params}


def resnet_explorer(depth: int = 34, base: int = 64, size: int = 224) -> W.VBox:
    """Depth, width and input size of a ResNet: its stage-by-stage shapes, parameters and FLOPs, and a chart of
    where the weights are against where the large feature maps are."""
    controls = {
        "depth": W.Dropdown(options=[18, 34, 50, 101, 152], value=depth, description="depth", style=_STYLE),
        "base": _slider(value=base, min=16, max=128, step=16, description="base width (layer1 planes)"),
        "size": _slider(value=size, min=32, max=448, step=32, description="input H = W"),
    }

    def update(readout: W.HTML, chart: W.Output, depth: int, base: int, size: int) -> None:
        n = resnet_explorer_expected(depth, base, size)
        shapes, stage_params = n["shapes"], n["stage_params"]
        block = "BasicBlock" if depth < 50 else "Bottleneck"
        channels = "/".join(str(shapes[f"layer{i}"][0]) for i in range(1, 5))
        # A bottleneck narrows to its planes inside and outputs 4x as many channels: say both.
        inner = "" if block == "BasicBlock" else f", {'/'.join(str(base * k) for k in (1, 2, 4, 8))} inside the blocks"
        rows = "".join(f"<tr><td>{k}</td><td>{' x '.join(map(str, s))}</td></tr>" for k, s in shapes.items())
        readout.value = (
            f"<b>ResNet-{depth}</b> ({block}s; stages of {channels} channels{inner}), input {size}x{size}: "
            f"{n['params']:,} parameters, {_fmt_flops(n['flops'])}"
            f"<table><tr><th>stage</th><th>output C x H x W</th></tr>{rows}</table>"
        )
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 2.8))
        left.bar(list(stage_params), [p / 1e6 for p in stage_params.values()], color=BLOCK_COLOURS[block])
        left.set(ylabel="parameters (millions)", title="Where the weights are")
        right.bar(list(stage_params), [math.prod(shapes[s]) / 1e3 for s in stage_params], color="tab:gray")
        right.set(ylabel="values (thousands)", title="Output C x H x W, one image")
        for ax in (left, right):
            ax.tick_params(axis="x", labelsize=8)
        _show(chart, fig)

    return _assemble(controls, update, resnet_explorer_expected)


def resnext_comparison_expected(cardinality: int, bottleneck_width: int, channels: int = 256) -> dict[str, int]:
    """Weights of a ResNeXt block (C paths of width d) vs the ResNet bottleneck of width 64."""
    return {
        "resnext_params": bottleneck_params(channels, cardinality * bottleneck_width, bn=False, groups=cardinality),
        "resnet_params": bottleneck_params(channels, 64, bn=False),
        "equal_budget_width": equal_budget_width(cardinality, channels),
    }


def resnext_comparison(cardinality: int = 32, bottleneck_width: int = 4) -> W.VBox:
    """Cardinality C and path width d of a ResNeXt block against a ResNet bottleneck's budget."""
    controls = {
        "cardinality": _slider(value=cardinality, min=1, max=64, step=1, description="cardinality C"),
        "bottleneck_width": _slider(value=bottleneck_width, min=1, max=64, step=1, description="width per path d"),
    }

    def update(readout: W.HTML, chart: W.Output, cardinality: int, bottleneck_width: int) -> None:
        n, C, d = resnext_comparison_expected(cardinality, bottleneck_width), cardinality, bottleneck_width
        readout.value = (
            f"<b>ResNeXt block</b> {C} x {d}d (256 → {C * d} grouped → 256): {n['resnext_params']:,} weights<br>"
            f"<b>ResNet bottleneck</b> (256 → 64 → 256): {n['resnet_params']:,} weights<br>"
            f"Same budget at C = {C}: d = {n['equal_budget_width']}"
        )
        bars = {f"ResNeXt {C}x{d}d": n["resnext_params"], "ResNet 1x64d": n["resnet_params"]}
        _bar_chart(
            chart, bars, ["tab:green", BLOCK_COLOURS["Bottleneck"]], "weights", "one block, 256 channels in and out"
        )

    return _assemble(controls, update, resnext_comparison_expected)


# Every widget of the course, by name (the tests construct and drive each one).
WIDGETS: dict[str, Callable[[], W.VBox]] = {
    f.__name__: f for f in (block_comparison, resnet_explorer, resnext_comparison)
}
