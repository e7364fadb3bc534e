"""Figures for the notebooks: training curves, gradient flow, activations, images, confusion matrix.

Every function returns its ``matplotlib`` Figure and leaves showing it to the
notebook (``plt.show()``), so that a figure can also be saved or changed first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

WRONG, RIGHT = "tab:red", "tab:green"


# --------------------------------------------------------------------------- training curves


def plot_history(
    histories: Any,
    metrics: Sequence[str] = ("loss", "acc"),
    error: bool = False,
) -> Figure:
    """Training curves of one run or several (``{"plain-20": h1, "ResNet-20": h2}``), one panel per metric.

    Train curves are dashed and test curves solid, as in figure 6 of the ResNet
    paper; each run has its own colour. Accuracies are shown in percent, or with
    ``error=True`` as the error rate ``100 - accuracy`` (the paper's y-axis).
    """
    runs = histories if isinstance(histories, Mapping) else {"": histories}
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for i, (name, history) in enumerate(runs.items()):
            _plot_run(ax, history, metric, name, f"C{i}", error)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(_metric_label(metric, error))
        ax.set_title(f"{_metric_label(metric, error)} (dashed: train, solid: test)", fontsize=10)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _plot_run(ax, history, metric: str, name: str, color: str, error: bool) -> None:
    epochs = history["epoch"]
    for split, style in (("train", "--"), ("test", "-")):
        key = f"{split}_{metric}"
        if key not in history.keys():
            continue
        values = np.array([np.nan if v is None else v for v in history[key]], dtype=float)
        if metric == "acc":
            values = 100 * (1 - values) if error else 100 * values
        label = split if not name else (name if split == "test" else "_nolegend_")
        # A marker per epoch on short runs, so a one-epoch run still shows its point.
        marker = "o" if len(values) <= 10 else None
        ax.plot(epochs, values, style, color=color, label=label, marker=marker, markersize=4)


def _metric_label(metric: str, error: bool) -> str:
    if metric == "acc":
        return "error (%)" if error else "accuracy (%)"
    return metric


# --------------------------------------------------------------------------- seeing inside


def plot_gradient_flow(
    norms: Mapping[str, Any],
    title: str = "Gradient norm per layer",
    log: bool = True,
) -> Figure:
    """Gradient norm against layer index (input on the left), one line per run.

    ``norms`` is ``{label: {layer: norm}}``, e.g. ``{"plain-56": ..., "ResNet-56": ...}``
    from :func:`recorders.gradient_norms_at_init` or ``GradientRecorder.mean()``;
    a single ``{layer: norm}`` dict is plotted as one line. A log scale shows
    gradients that shrink by factors, as they do in a deep plain network.
    """
    if norms and all(isinstance(v, (int, float)) for v in norms.values()):
        norms = {"": norms}
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for label, layer_norms in norms.items():
        values = list(layer_norms.values())
        ax.plot(range(len(values)), values, "o-", markersize=3, label=label or None)
    ax.set_yscale("log" if log else "linear")
    ax.set_xlabel("layer index (input → output)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("weight-gradient L2 norm")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    if any(norms):
        ax.legend()
    fig.tight_layout()
    return fig


def plot_activation_histograms(recorder: Any, layers: Sequence[str] | None = None, max_layers: int = 8) -> Figure:
    """How each layer's output distribution changes during training: one row per layer.

    Each row is an image: time (recorded step) to the right, activation value
    upward, brightness the fraction of values in that bin (log scale). Takes an
    :class:`recorders.ActivationRecorder`; by default at most ``max_layers``
    layers, evenly spread from input to output.
    """
    stats = recorder.stats
    names = list(layers) if layers is not None else _spread([n for n, s in stats.items() if s], max_layers)
    if not names:
        raise ValueError("The recorder has recorded nothing yet: train the model (in train mode) with it attached.")
    lo, hi = recorder.value_range
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 1.5 * len(names) + 0.6), squeeze=False, sharex=True)
    for ax, name in zip(axes[:, 0], names):
        records = stats[name]
        hist = torch.stack([r["hist"] for r in records]).T.numpy()  # (bins, steps)
        steps = [r["step"] for r in records]
        last = steps[-1] if len(steps) > 1 else steps[0] + 1
        ax.imshow(np.log10(hist + 1e-5), aspect="auto", origin="lower", cmap="magma", extent=(steps[0], last, lo, hi))
        ax.set_ylabel("value", fontsize=8)
        ax.set_title(f"{name}: last mean {records[-1]['mean']:.2f}, std {records[-1]['std']:.2f}", fontsize=9)
    axes[-1, 0].set_xlabel("training step")
    fig.tight_layout()
    return fig


def _spread(items: list, k: int) -> list:
    """At most ``k`` items, evenly spaced, first and last included."""
    if len(items) <= k:
        return items
    picks = np.linspace(0, len(items) - 1, k).round().astype(int)
    return [items[i] for i in dict.fromkeys(picks)]


# --------------------------------------------------------------------------- images


def show_images(
    images: torch.Tensor | np.ndarray,
    labels: Sequence[int] | torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
    preds: Sequence[int] | torch.Tensor | None = None,
    ncols: int = 8,
    title: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Figure:
    """A grid of images (N, C, H, W), uint8 or float, titled with their labels.

    With ``preds``, each title is the prediction, green when right and red when
    wrong (with the true label in brackets). Normalized float images are shown
    correctly when their ``mean`` and ``std`` are given (e.g. ``data.mean``,
    ``data.std``); otherwise each float image is stretched to the full range.
    """
    images = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images).detach().cpu()
    if images.dim() != 4:
        raise ValueError(f"show_images expects a batch (N, C, H, W); got shape {tuple(images.shape)}.")
    n = images.shape[0]
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.6 * nrows + (0.4 if title else 0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            fig.delaxes(ax)
            continue
        _show_one(ax, _displayable(images[i], mean, std))
        if labels is not None or preds is not None:
            text, color = _caption(i, labels, preds, classes)
            ax.set_title(text, fontsize=8, color=color)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _displayable(image: torch.Tensor, mean, std) -> np.ndarray:
    """An (H, W, C) array in [0, 1] for imshow."""
    if image.dtype == torch.uint8:
        x = image.float() / 255
    else:
        x = image.float()
        if mean is not None and std is not None:
            shape = (-1, 1, 1)
            x = x * torch.tensor(std).view(shape) + torch.tensor(mean).view(shape)
        elif x.min() < 0 or x.max() > 1:
            x = (x - x.min()) / (x.max() - x.min() + 1e-8)
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


def _show_one(ax, image: np.ndarray) -> None:
    if image.shape[2] == 1:
        ax.imshow(image[:, :, 0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(image)
    ax.axis("off")


def _caption(i: int, labels, preds, classes) -> tuple[str, str]:
    name = lambda k: classes[int(k)] if classes is not None else str(int(k))
    if preds is None:
        return name(labels[i]), "black"
    if labels is None:
        return name(preds[i]), "black"
    right = int(preds[i]) == int(labels[i])
    return (name(preds[i]), RIGHT) if right else (f"{name(preds[i])} ({name(labels[i])})", WRONG)


def _default_feature_layers(model: nn.Module) -> list[str]:
    """The stem (its ReLU, else its first conv) and each ``layerN`` stage the model has."""
    children = dict(model.named_children())
    stem = [n for n in ("relu", "conv1") if n in children][:1]
    return stem + [n for n in (f"layer{i}" for i in range(1, 5)) if n in children]


def show_feature_maps(
    model: nn.Module,
    image: torch.Tensor,
    layers: Sequence[str] | None = None,
    max_channels: int = 8,
) -> Figure:
    """What the network's stages compute for one image: a row of channels per layer.

    ``image`` is one normalized (C, H, W) image. Forward hooks catch the outputs
    of ``layers`` (default: the stem and each ``layerN`` stage); the first
    ``max_channels`` channels of each are shown, each with its own colour scale.
    Deeper rows are smaller and coarser: stride halves the map at each stage.
    """
    names = list(layers) if layers is not None else _default_feature_layers(model)
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing or not names:
        raise ValueError(f"Pass layers=[...] from model.named_modules(); not found: {missing or 'no default layers'}.")
    outputs: dict[str, torch.Tensor] = {}
    hooks = [modules[n].register_forward_hook(_keep_first_output(outputs, n)) for n in names]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(image.unsqueeze(0).to(device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    ncols = min(max_channels, max(o.shape[1] for o in outputs.values()))
    fig, axes = plt.subplots(len(names), ncols, figsize=(1.4 * ncols, 1.6 * len(names)), squeeze=False)
    for row, name in zip(axes, names):
        fmap = outputs[name][0]
        for c, ax in enumerate(row):
            if c >= fmap.shape[0]:
                fig.delaxes(ax)
                continue
            ax.imshow(fmap[c].float().cpu().numpy(), cmap="viridis")
            ax.axis("off")
        row[0].set_title(f"{name}: {' x '.join(map(str, fmap.shape))}", fontsize=9, loc="left")
    fig.tight_layout()
    return fig


def _keep_first_output(outputs: dict, name: str):
    def hook(module: nn.Module, inputs, output) -> None:
        # A module used twice in one forward (a shared ReLU) keeps its first output only;
        # clone, because a later in-place operation could change the tensor.
        if name not in outputs:
            outputs[name] = output.detach().clone()

    return hook


# --------------------------------------------------------------------------- errors


def plot_confusion_matrix(
    labels: torch.Tensor | Sequence[int],
    preds: torch.Tensor | Sequence[int],
    classes: Sequence[str],
    normalize: bool = True,
) -> Figure:
    """Which classes are mistaken for which: rows are true classes, columns predictions.

    With ``normalize=True`` each row is divided by its count, so the diagonal is
    each class's accuracy (recall).
    """
    k = len(classes)
    labels, preds = torch.as_tensor(labels).long().cpu(), torch.as_tensor(preds).long().cpu()
    counts = torch.bincount(labels * k + preds, minlength=k * k).reshape(k, k).float()
    matrix = counts / counts.sum(1, keepdim=True).clamp(min=1) if normalize else counts
    fig, ax = plt.subplots(figsize=(0.6 * k + 2, 0.6 * k + 1.5))
    ax.imshow(matrix.numpy(), cmap="Blues", vmin=0)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                value = matrix[i, j].item()
                text = f"{value:.2f}" if normalize else f"{int(value)}"
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value > 0.5 * matrix.max().item() else "black",
                )
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix" + (" (each row sums to 1)" if normalize else ""))
    fig.tight_layout()
    return fig


__all__ = [
    "plot_activation_histograms",
    "plot_confusion_matrix",
    "plot_gradient_flow",
    "plot_history",
    "show_feature_maps",
    "show_images",
]
