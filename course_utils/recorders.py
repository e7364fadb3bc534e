"""Seeing gradients layer by layer while a network trains, through hooks (the training loop does not change)::

with GradientRecorder(model) as grads:        # hooks attached
    history = cu.train.fit(model, train_loader, epochs=5, callbacks=[grads])
cu.plots.plot_gradient_flow({"ResNet-20": grads.mean()})   # hooks removed on leaving the block
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .callbacks import Callback, Run
from .models._checks import check_positive_int

WEIGHTED = (nn.Conv2d, nn.Linear)  # the layers whose weight gradients are recorded by default
FLUSH_EVERY = 256  # values kept on the device, then copied to Python floats in one go (one wait for the GPU)


def _weighted_layers(model: nn.Module, layer_types: tuple[type, ...]) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` for every module of ``layer_types`` with a trainable ``weight``, in model order."""
    weighted = [(name, m) for name, m in model.named_modules() if isinstance(m, layer_types)]
    return [(name, m) for name, m in weighted if getattr(getattr(m, "weight", None), "requires_grad", False)]


class GradientRecorder(Callback):
    """The L2 norm of each layer's weight gradient at every ``every``-th backward pass, in ``norms[layer]``, layers in
    model order. Use it as a context manager, or call :meth:`remove`: hooks left behind go on recording."""

    def __init__(self, model: nn.Module, layer_types: tuple[type, ...] = WEIGHTED, every: int = 1) -> None:
        self.every = check_positive_int(every, "every")
        self.loss_scale, self._scaler = 1.0, None  # what backward's loss was multiplied by; fit passes its GradScaler
        layers = _weighted_layers(model, tuple(layer_types))
        if not layers:
            raise ValueError(
                f"The model has no {'/'.join(t.__name__ for t in layer_types)} layer with a trainable weight."
            )
        self._floats: dict[str, list[float]] = {name: [] for name, _ in layers}
        self._pending: dict[str, list[torch.Tensor]] = {name: [] for name, _ in layers}
        self._calls = {name: 0 for name, _ in layers}
        self._handles = [m.weight.register_post_accumulate_grad_hook(self._hook(name)) for name, m in layers]

    def on_fit_start(self, run: Run) -> None:
        self._scaler = run.scaler  # under fp16, backward sees the gradients multiplied by the scaler's scale

    def _hook(self, name: str):
        def hook(param: torch.Tensor) -> None:
            if self._calls[name] % self.every == 0 and param.grad is not None:
                scale = getattr(self._scaler, "_scale", None)  # this backward pass's scale, a tensor on the device
                scale = self.loss_scale if scale is None else scale
                self._pending[name].append(param.grad.detach().float().norm() / scale)  # stays on the device
                if len(self._pending[name]) >= FLUSH_EVERY:
                    self._flush(name)
            self._calls[name] += 1

        return hook

    def _flush(self, name: str) -> None:
        if self._pending[name]:
            self._floats[name] += torch.stack(self._pending[name]).tolist()
            self._pending[name] = []

    @property
    def norms(self) -> dict[str, list[float]]:
        """``{layer name: [norm at each recorded step]}``, layers in model order."""
        for name in self._pending:
            self._flush(name)
        return self._floats

    def mean(self) -> dict[str, float]:
        """Each layer's mean recorded gradient norm (layers with no record yet are left out)."""
        return {name: sum(v) / len(v) for name, v in self.norms.items() if v}

    def state_dict(self) -> dict:
        """The record so far: a ``Checkpoint`` saves it, so that a resumed run keeps its record."""
        norms = self.norms
        return {"layers": list(norms), "every": self.every, "calls": list(self._calls.values()), "norms": norms}

    def load_state_dict(self, state: dict) -> None:
        """Replace the record with ``state`` (from :meth:`state_dict` of a recorder on the same layers)."""
        for key, value in {"layers": list(self._floats), "every": self.every}.items():
            if state.get(key) != value:
                raise ValueError(
                    f"This GradientRecorder has {key}={value!r:.80}; the saved record has {state.get(key)!r:.80}."
                )
        self._floats = {name: list(values) for name, values in state["norms"].items()}
        self._pending = {name: [] for name in self._floats}
        self._calls = dict(zip(self._floats, state["calls"]))

    def remove(self) -> None:
        """Detach every hook: nothing more is recorded, what was recorded stays."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> GradientRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def gradient_norms_at_init(
    model: nn.Module, batch_x: torch.Tensor, batch_y: torch.Tensor, layer_types: tuple[type, ...] = WEIGHTED
) -> dict[str, float]:
    """Per-layer weight-gradient norms after one forward/backward of cross-entropy on one batch: gradient flow
    at initialization. The model is left as it was: its mode, its BatchNorm running statistics and any ``.grad``."""
    device, was_training, grads = next(model.parameters()).device, model.training, [p.grad for p in model.parameters()]
    buffers = [b.clone() for b in model.buffers()]  # a training forward updates BatchNorm's running statistics
    layers = _weighted_layers(model, tuple(layer_types))
    try:
        model.train()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(batch_x.to(device)), batch_y.to(device)).backward()
        zero = torch.zeros((), device=device)  # a layer the loss does not reach gets no gradient at all
        norms = torch.stack([m.weight.grad.float().norm() if m.weight.grad is not None else zero for _, m in layers])
    finally:
        model.train(was_training)
        with torch.no_grad():
            for b, saved in zip(model.buffers(), buffers):
                b.copy_(saved)
        for p, g in zip(model.parameters(), grads):
            p.grad = g
    return {name: norm for (name, _), norm in zip(layers, norms.tolist())}


__all__ = ["GradientRecorder", "gradient_norms_at_init"]
