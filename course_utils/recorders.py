"""Seeing inside a network while it trains: gradient norms and activation statistics.

Both work with hooks, functions PyTorch calls at a given moment: a *forward hook* when a module has
computed its output, a *post-accumulate-grad hook* when backward has written a parameter's ``.grad``.
The training loop does not change; passed to ``fit`` as callbacks, their records are kept in checkpoints::

    with GradientRecorder(model) as grads:        # hooks attached
        history = cu.train.fit(model, train_loader, epochs=5, callbacks=[grads])
    cu.plots.plot_gradient_flow({"ResNet-20": grads.mean()})   # hooks removed on leaving the block
"""

from __future__ import annotations

from collections.abc import Sequence

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


class _Recorder(Callback):
    """What both recorders share: their hooks, taking them off, and checking a saved record."""

    _handles: list

    def remove(self) -> None:
        """Detach every hook: nothing more is recorded, what was recorded stays."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _check_state(self, state: dict, mine: dict) -> None:
        """Refuse a saved record of other layers or other settings, saying which."""
        for key, value in mine.items():
            if state.get(key) != value:
                raise ValueError(
                    f"This {type(self).__name__} has {key}={value!r:.80}; the saved record has {state.get(key)!r:.80}."
                )

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class GradientRecorder(_Recorder):
    """The L2 norm of each layer's weight gradient, at every ``every``-th backward pass.

    ``norms[layer]`` lists the recorded norms of that layer, layers in model order (backward reaches them in
    the opposite order). Use it as a context manager, or call :meth:`remove`: hooks left behind go on recording.
    """

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

    def last(self) -> dict[str, float]:
        """Each layer's most recently recorded gradient norm."""
        return {name: v[-1] for name, v in self.norms.items() if v}

    def state_dict(self) -> dict:
        """The record so far: a ``Checkpoint`` saves it, so that a resumed run keeps its record."""
        norms = self.norms
        return {"layers": list(norms), "every": self.every, "calls": list(self._calls.values()), "norms": norms}

    def load_state_dict(self, state: dict) -> None:
        """Replace the record with ``state`` (from :meth:`state_dict` of a recorder on the same layers)."""
        self._check_state(state, {"layers": list(self._floats), "every": self.every})
        self._floats = {name: list(values) for name, values in state["norms"].items()}
        self._pending = {name: [] for name in self._floats}
        self._calls = dict(zip(self._floats, state["calls"]))


class ActivationRecorder(_Recorder):
    """Statistics of layer outputs at every ``every``-th training forward pass.

    ``stats[layer]`` is a list of dicts ``{"step", "mean", "std", "frac_zero", "hist"}``: ``step``
    counts the model's training forward passes from 0, ``frac_zero`` is the fraction of exact zeros
    (dead ReLUs), ``hist`` a tensor of ``bins`` fractions over ``value_range`` (values outside count
    in the end bins). Nothing is recorded in eval mode. ``layers``: names (see ``model.named_modules()``).
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str] | None = None,
        every: int = 50,
        bins: int = 60,
        value_range: tuple[float, float] = (-5.0, 5.0),
    ) -> None:
        self.every, self.bins = check_positive_int(every, "every"), bins
        self.value_range = (float(value_range[0]), float(value_range[1]))
        modules = dict(model.named_modules())
        if layers is None:  # each residual block, or in a network without blocks each conv and linear layer
            from .models import BasicBlock, Bottleneck  # here, so that importing recorders stays light

            layers = [n for n, m in modules.items() if isinstance(m, (BasicBlock, Bottleneck))]
            layers = layers or [n for n, m in modules.items() if isinstance(m, (nn.Conv2d, nn.Linear))]
        missing = [name for name in layers if name not in modules]
        if missing or not layers:
            raise ValueError(f"No layer named {missing} in the model; names look like {list(modules)[1:6]}.")
        self.stats: dict[str, list[dict]] = {name: [] for name in layers}
        self._step = -1
        # The pre-hook on the whole model counts training forward passes; the layer hooks read the count.
        self._handles = [model.register_forward_pre_hook(self._count)]
        self._handles += [modules[name].register_forward_hook(self._hook(name)) for name in layers]

    def _count(self, module: nn.Module, inputs) -> None:
        if module.training:
            self._step += 1

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            if module.training and self._step % self.every == 0 and isinstance(output, torch.Tensor):
                x, (lo, hi) = output.detach().float(), self.value_range
                # Clamping first puts outliers in the end bins instead of dropping them silently.
                hist = torch.histc(x.clamp(lo, hi), bins=self.bins, min=lo, max=hi) / x.numel()
                mean, std, zero = torch.stack([x.mean(), x.std(), (x == 0).float().mean()]).tolist()  # one GPU wait
                record = {"step": self._step, "mean": mean, "std": std, "frac_zero": zero, "hist": hist.cpu()}
                self.stats[name].append(record)

        return hook

    def _settings(self) -> dict:
        return {"layers": list(self.stats), "every": self.every, "bins": self.bins, "range": self.value_range}

    def state_dict(self) -> dict:
        """The record so far: a ``Checkpoint`` saves it, so that a resumed run keeps its record."""
        return {**self._settings(), "step": self._step, "records": self.stats}

    def load_state_dict(self, state: dict) -> None:
        """Replace the record with ``state`` (from :meth:`state_dict` of a recorder on the same layers)."""
        self._check_state(state, self._settings())
        self._step, self.stats = state["step"], {name: list(records) for name, records in state["records"].items()}

    def bin_edges(self) -> torch.Tensor:
        """The ``bins + 1`` edges of the histogram bins."""
        return torch.linspace(*self.value_range, self.bins + 1)


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


__all__ = ["ActivationRecorder", "GradientRecorder", "gradient_norms_at_init"]
