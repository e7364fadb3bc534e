"""Figures for the notebooks: training curves, gradient flow, images, feature maps, confusion matrix. Each returns its
Figure and leaves ``plt.show()`` to the notebook, so a figure can be changed or saved first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Union

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

Ints = Union[torch.Tensor, Sequence[int]]  # labels or predictions
WRONG, RIGHT = "tab:red", "tab:green"
BLOCK_COLOURS = {"BasicBlock": "tab:blue", "Bottleneck": "tab:purple"}
"""One colour per residual block type, shared by the figures and widgets that compare the two blocks."""


def plot_history(histories: Any, metrics: Sequence[str] = ("loss", "acc"), error: bool = False) -> Figure:
    """Training curves of one run or several (``{"plain-20": h1, "ResNet-20": h2}``), one panel per metric: train
    dashed, test solid, as in the paper's figure 6; accuracy in percent, or with ``error=True`` the error rate."""
    runs = histories if isinstance(histories, Mapping) else {"": histories}
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        label = metric if metric != "acc" else "error (%)" if error else "accuracy (%)"
        for i, (name, history) in enumerate(runs.items()):
            for split, style in (("train", "--"), ("test", "-")):
                if f"{split}_{metric}" not in history.keys():
                    continue
                values = np.array([np.nan if v is None else v for v in history[f"{split}_{metric}"]], dtype=float)
                if metric == "acc":
                    values = 100 * (1 - values) if error else 100 * values
                legend = split if not name else (name if split == "test" else "_nolegend_")
                # A marker per epoch on short runs, so a one-epoch run still shows its point.
                marker = "o" if len(values) <= 10 else None
                ax.plot(history["epoch"], values, style, color=f"C{i}", label=legend, marker=marker, markersize=4)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="epoch", ylabel=label)
        ax.set_title(f"{label} (dashed: train, solid: test)", fontsize=10)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_gradient_flow(norms: Mapping[str, Any], title: str = "Gradient norm per layer", log: bool = True) -> Figure:
    """Gradient norm against layer index (input on the left), one line per run of ``{label: {layer: norm}}`` (or one
    ``{layer: norm}``). A log scale shows gradients that shrink by factors, as in a deep plain network."""
    if norms and all(isinstance(v, (int, float)) for v in norms.values()):
        norms = {"": norms}
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for label, layer_norms in norms.items():
        ax.plot(range(len(layer_norms)), list(layer_norms.values()), "o-", markersize=3, label=label or None)
    ax.set_yscale("log" if log else "linear")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="layer index (input → output)", ylabel="weight-gradient L2 norm", title=title)
    ax.grid(alpha=0.3, which="both")
    if any(norms):
        ax.legend()
    fig.tight_layout()
    return fig


def show_images(
    images: torch.Tensor | np.ndarray,
    labels: Ints | None = None,
    classes: Sequence[str] | None = None,
    preds: Ints | None = None,
    ncols: int = 8,
    title: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Figure:
    """A grid of images (N, C, H, W), uint8 or float, titled with their labels; with ``preds``, the prediction, green
    when right, red when wrong (the label in brackets). Normalized images need their ``mean`` and ``std``."""
    images = torch.as_tensor(images).detach().cpu()
    if images.dim() != 4:
        raise ValueError(f"show_images expects a batch (N, C, H, W); got shape {tuple(images.shape)}.")
    n = images.shape[0]
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.6 * nrows + (0.4 if title else 0)), squeeze=False)
    name = lambda k: classes[int(k)] if classes is not None else str(int(k))
    for i, ax in enumerate(axes.flat):
        if i >= n:
            fig.delaxes(ax)
            continue
        image = _displayable(images[i], mean, std)
        ax.imshow(image[:, :, 0] if image.shape[2] == 1 else image, cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
        if preds is not None and labels is not None:
            right = int(preds[i]) == int(labels[i])
            text = name(preds[i]) if right else f"{name(preds[i])} ({name(labels[i])})"
            ax.set_title(text, fontsize=8, color=RIGHT if right else WRONG)
        elif preds is not None or labels is not None:  # whichever was given, in black
            ax.set_title(name((preds if preds is not None else labels)[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _displayable(image: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None) -> np.ndarray:
    """An (H, W, C) array in [0, 1] for imshow."""
    x = image.float() / 255 if image.dtype == torch.uint8 else image.float()
    if image.dtype != torch.uint8 and mean is not None and std is not None:
        x = x * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
    elif image.dtype != torch.uint8 and (x.min() < 0 or x.max() > 1):
        x = (x - x.min()) / (x.max() - x.min() + 1e-8)
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


def show_feature_maps(
    model: nn.Module, image: torch.Tensor, layers: Sequence[str] | None = None, max_channels: int = 8
) -> Figure:
    """What the network computes for one normalized (C, H, W) image: the first ``max_channels`` channels of each of
    ``layers`` (default: the stem's ReLU, else its conv, and each ``layerN``), caught by forward hooks, one row each."""
    modules = dict(model.named_modules())
    stem = [n for n in ("relu", "conv1") if n in dict(model.named_children())][:1]
    names = list(layers) if layers is not None else stem + [f"layer{i}" for i in range(1, 5) if f"layer{i}" in modules]
    missing = [n for n in names if n not in modules]
    if missing or not names:
        raise ValueError(f"Pass layers=[...] from model.named_modules(); not found: {missing or 'no default layers'}.")
    outputs: dict[nn.Module, torch.Tensor] = {}

    def keep(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        # A module used twice (a shared ReLU) keeps its first output, cloned: later in-place operations change it.
        outputs.setdefault(module, output.detach().clone())

    hooks = [modules[n].register_forward_hook(keep) for n in names]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(image.unsqueeze(0).to(next(p.device for p in model.parameters())))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    ncols = min(max_channels, max(o.shape[1] for o in outputs.values()))
    fig, axes = plt.subplots(len(names), ncols, figsize=(1.4 * ncols, 1.6 * len(names)), squeeze=False)
    for row, name in zip(axes, names):
        fmap = outputs[modules[name]][0]
        for c, ax in enumerate(row):
            if c >= fmap.shape[0]:
                fig.delaxes(ax)
                continue
            ax.imshow(fmap[c].float().cpu().numpy(), cmap="viridis")
            ax.axis("off")
        row[0].set_title(f"{name}: {' x '.join(map(str, fmap.shape))}", fontsize=9, loc="left")
    fig.tight_layout()
    return fig


def plot_confusion_matrix(labels: Ints, preds: Ints, classes: Sequence[str], normalize: bool = True) -> Figure:
    """Which classes are mistaken for which: rows are true classes, columns predictions. ``normalize``: each row sums
    to 1, so the diagonal is each class's accuracy (recall)."""
    k = len(classes)
    labels, preds = torch.as_tensor(labels).long().cpu(), torch.as_tensor(preds).long().cpu()
    counts = torch.bincount(labels * k + preds, minlength=k * k).reshape(k, k).float()
    matrix = counts / counts.sum(1, keepdim=True).clamp(min=1) if normalize else counts
    fig, ax = plt.subplots(figsize=(0.6 * k + 2, 0.6 * k + 1.5))
    ax.imshow(matrix.numpy(), cmap="Blues", vmin=0)
    for i, j in np.ndindex(k, k) if k <= 20 else ():  # numbers only where they stay legible
        value = matrix[i, j].item()
        text, colour = f"{value:.2f}" if normalize else f"{int(value)}", "w" if value > 0.5 * matrix.max() else "k"
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix" + (" (each row sums to 1)" if normalize else ""))
    fig.tight_layout()
    return fig
