"""Interactive parameter-count comparisons, built from core ipywidgets only.

Every widget works the same under ipywidgets 7.7 (Colab) and 8.x (JupyterLab 4):
sliders, checkboxes and dropdowns, an ``HTML`` readout and an ``Output`` for a
matplotlib bar chart (inline backend; ipympl breaks on Colab).

Each factory returns a ``VBox`` with three extra attributes, so tests (and
curious learners) can drive it without a browser:

- ``controls``: the input widgets by name;
- ``readout``: the ``HTML`` widget that shows the numbers;
- ``expected(**values)``: the numbers the readout must show for those control values.

The numbers come from small formulas (fast enough to follow a slider); the
notebooks and tests check each formula against real modules counted by
:mod:`course_utils.inspect`.
"""

from __future__ import annotations

import math
from typing import Callable

import ipywidgets as W
import matplotlib.pyplot as plt
import torch

from . import inspect as ins
from .models import resnet

# --- formulas --------------------------------------------------------------


def basic_block_params(channels: int, bn: bool = True, bias: bool = False) -> int:
    """Parameters of a BasicBlock at ``channels`` in and out: two 3x3 convs (+ BN, + conv bias)."""
    weights = 2 * ins.conv_weights(channels, channels, 3)
    return weights + (2 * 2 * channels if bn else 0) + (2 * channels if bias else 0)


def bottleneck_params(channels: int, width: int, bn: bool = True, bias: bool = False, groups: int = 1) -> int:
    """Parameters of a bottleneck ``channels -> width -> width -> channels`` (1x1, 3x3 with ``groups``, 1x1)."""
    weights = (
        ins.conv_weights(channels, width, 1)
        + ins.conv_weights(width, width, 3, groups)
        + ins.conv_weights(width, channels, 1)
    )
    return weights + (2 * (width + width + channels) if bn else 0) + ((width + width + channels) if bias else 0)


def block_flops(params_conv: int, height: int, width: int) -> int:
    """FLOPs of stride-1 convolutions with ``params_conv`` weights on an ``height x width`` map (2 per multiply-add)."""
    return 2 * params_conv * height * width


def equal_budget_width(cardinality: int, channels: int = 256, budget: int | None = None) -> int:
    """The bottleneck width d per path that keeps ``C * (2 * channels * d + 9 * d * d)`` closest to ``budget``.

    The budget defaults to a ResNet bottleneck of width 64 (``C = 1, d = 64``):
    this is how the ResNeXt paper's table 2 picks d for each cardinality.
    """
    budget = budget if budget is not None else bottleneck_params(channels, 64, bn=False)
    cost = lambda d: bottleneck_params(channels, cardinality * d, bn=False, groups=cardinality)  # noqa: E731
    return min(range(1, 4 * channels), key=lambda d: (abs(cost(d) - budget), d))


# --- building blocks -------------------------------------------------------


def _fmt(n: int) -> str:
    return f"{n:,}"


def _fmt_flops(n: int) -> str:
    """The exact count, then the same in the unit people quote (``3,670,016,000 FLOPs (3.67 G)``)."""
    short = f"{n / 1e9:.2f} G" if n >= 1e8 else f"{n / 1e6:.1f} M"
    return f"{n:,} FLOPs ({short})"


def _bar_chart(out: W.Output, labels: list[str], values: list[float], ylabel: str, title: str) -> None:
    with out:
        out.clear_output(wait=True)
        fig, ax = plt.subplots(figsize=(5.5, 2.8))
        bars = ax.bar(labels, values, color=["tab:blue", "tab:orange", "tab:green"][: len(values)])
        ax.bar_label(bars, labels=[_fmt(int(v)) for v in values], padding=2)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.set_ylim(0, max(values) * 1.2 if max(values) > 0 else 1)
        fig.tight_layout()
        plt.show()


def _assemble(controls: dict[str, W.ValueWidget], update: Callable[..., None], expected: Callable[..., dict]) -> W.VBox:
    """A VBox of the controls, an HTML readout and a chart, updated on every change."""
    readout = W.HTML()
    chart = W.Output()
    box = W.VBox([W.VBox(list(controls.values())), readout, chart])
    box.controls, box.readout, box.chart, box.expected = controls, readout, chart, expected

    def refresh(_change=None) -> None:
        update(readout, chart, **{name: c.value for name, c in controls.items()})

    for c in controls.values():
        c.observe(refresh, names="value")
    refresh()
    return box


_STYLE = {"description_width": "initial"}
_LAYOUT = W.Layout(width="480px")


def _slider(**kwargs) -> W.IntSlider:
    """An IntSlider in the course's style that updates when released: each update recounts a model and
    redraws a chart, too slow to run on every pixel of a drag."""
    return W.IntSlider(style=_STYLE, layout=_LAYOUT, continuous_update=False, **kwargs)


# --- notebook 04: basic vs bottleneck ----------------------------------------


def block_comparison_expected(channels: int, width: int, bn: bool, bias: bool, size: int) -> dict[str, int]:
    """Numbers of :func:`block_comparison` for given control values."""
    basic = basic_block_params(channels, bn, bias)
    bottle = bottleneck_params(channels, width, bn, bias)
    return {
        "basic_params": basic,
        "bottleneck_params": bottle,
        "basic_flops": block_flops(basic_block_params(channels, bn=False), size, size),
        "bottleneck_flops": block_flops(bottleneck_params(channels, width, bn=False), size, size),
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

    def update(readout: W.HTML, chart: W.Output, channels, width, bn, bias, size) -> None:
        n = block_comparison_expected(channels, width, bn, bias, size)
        ratio = n["basic_params"] / n["bottleneck_params"]
        readout.value = (
            f"<b>BasicBlock</b> (3x3, {channels} → 3x3, {channels}): {_fmt(n['basic_params'])} parameters, "
            f"{_fmt_flops(n['basic_flops'])} at {size}x{size}<br>"
            f"<b>Bottleneck</b> (1x1, {width} → 3x3, {width} → 1x1, {channels}): "
            f"{_fmt(n['bottleneck_params'])} parameters, {_fmt_flops(n['bottleneck_flops'])}<br>"
            f"The basic block has <b>{ratio:.1f}x</b> the parameters."
        )
        _bar_chart(
            chart,
            ["BasicBlock", "Bottleneck"],
            [n["basic_params"], n["bottleneck_params"]],
            "parameters",
            f"{channels} channels, bottleneck width {width}",
        )

    return _assemble(controls, update, block_comparison_expected)


# --- notebook 05: the ResNet family ------------------------------------------


_STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4", "fc")


def resnet_explorer_expected(depth: int, base: int, size: int) -> dict[str, object]:
    """Parameters, FLOPs and stage shapes of ``resnet(depth)`` with stage widths ``base * (1, 2, 4, 8)``.

    ``stage_params`` splits the parameters by stage (``conv1`` with its ``bn1``), so that they add up
    to ``params``.
    """
    with torch.device("meta"):  # no memory, no initialisation: counting is instant even for ResNet-152
        model = resnet(depth, widths=(base, 2 * base, 4 * base, 8 * base))
        rows = ins.layer_table(model, (1, 3, size, size), depth=1, device="meta")
        flops = ins.count_flops(model, (1, 3, size, size))
    shapes = {
        r.name: r.output_shape[1:]
        for r in rows
        if r.name in ("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "fc")
    }
    stage_params = {name: ins.count_parameters(getattr(model, name)) for name in _STAGES}
    stage_params["conv1"] += ins.count_parameters(model.bn1)
    return {"params": ins.count_parameters(model), "flops": flops, "shapes": shapes, "stage_params": stage_params}


def _stage_chart(out: W.Output, stage_params: dict[str, int], shapes: dict[str, tuple]) -> None:
    """Two bar charts per stage: its parameters, and the size of its output for one image."""
    with out:
        out.clear_output(wait=True)
        names = list(stage_params)
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 2.8))
        left.bar(names, [stage_params[s] / 1e6 for s in names], color="tab:blue")
        left.set(ylabel="parameters (millions)", title="Where the weights are")
        right.bar(names, [math.prod(shapes[s]) / 1e3 for s in names], color="tab:orange")
        right.set(ylabel="values (thousands)", title="Output C x H x W, one image")
        for ax in (left, right):
            ax.tick_params(axis="x", labelsize=8)
        fig.tight_layout()
        plt.show()


def resnet_explorer(depth: int = 34, base: int = 64, size: int = 224) -> W.VBox:
    """Depth, width and input size of a ResNet: its stage-by-stage shapes, parameters and FLOPs, and a chart
    of where the weights are against where the large feature maps are."""
    controls = {
        "depth": W.Dropdown(options=[18, 34, 50, 101, 152], value=depth, description="depth", style=_STYLE),
        "base": _slider(value=base, min=16, max=128, step=16, description="base width (layer1 planes)"),
        "size": _slider(value=size, min=32, max=448, step=32, description="input H = W"),
    }

    def update(readout: W.HTML, chart: W.Output, depth, base, size) -> None:
        n = resnet_explorer_expected(depth, base, size)
        rows = "".join(
            f"<tr><td>{name}</td><td>{' x '.join(str(d) for d in shape)}</td></tr>"
            for name, shape in n["shapes"].items()
        )
        readout.value = (
            f"<b>ResNet-{depth}</b>, widths {base}/{2 * base}/{4 * base}/{8 * base}, input {size}x{size}: "
            f"{_fmt(n['params'])} parameters, {_fmt_flops(n['flops'])}"
            f"<table><tr><th>stage</th><th>output C x H x W</th></tr>{rows}</table>"
        )
        _stage_chart(chart, n["stage_params"], n["shapes"])

    return _assemble(controls, update, resnet_explorer_expected)


# --- notebook 08: ResNeXt cardinality ---------------------------------------


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

    def update(readout: W.HTML, chart: W.Output, cardinality, bottleneck_width) -> None:
        n = resnext_comparison_expected(cardinality, bottleneck_width)
        readout.value = (
            f"<b>ResNeXt block</b> {cardinality} x {bottleneck_width}d (256 → {cardinality * bottleneck_width} "
            f"grouped → 256): {_fmt(n['resnext_params'])} weights<br>"
            f"<b>ResNet bottleneck</b> (256 → 64 → 256): {_fmt(n['resnet_params'])} weights<br>"
            f"Same budget at C = {cardinality}: d = {n['equal_budget_width']}"
        )
        _bar_chart(
            chart,
            [f"ResNeXt {cardinality}x{bottleneck_width}d", "ResNet 1x64d"],
            [n["resnext_params"], n["resnet_params"]],
            "weights",
            "one block, 256 channels in and out",
        )

    return _assemble(controls, update, resnext_comparison_expected)


WIDGETS: dict[str, Callable[[], W.VBox]] = {
    "block_comparison": block_comparison,
    "resnet_explorer": resnet_explorer,
    "resnext_comparison": resnext_comparison,
}
"""Every widget of the course, by name (the tests construct and drive each one)."""
