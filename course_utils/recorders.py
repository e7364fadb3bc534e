"""Seeing inside a network while it trains: gradient norms and activation statistics.

Both recorders work with hooks, functions PyTorch calls for us at a given
moment: a *forward hook* runs when a module has computed its output, a
*post-accumulate-grad hook* when backward has written a parameter's ``.grad``.
The training loop itself does not change::

    with GradientRecorder(model) as grads:       # hooks attached
        history = fit(model, train_loader, epochs=5, recorders=[grads])
    plots.plot_gradient_flow({"ResNet-20": grads.mean()})   # hooks removed on leaving the block

To keep training fast, values are kept as tensors on the device and turned
into Python numbers in batches, rather than waiting for the GPU at every step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .models._checks import check_positive_int

FLUSH_EVERY = 256
"""Recorded values kept on the device before they are copied to Python numbers in one go."""


def _weighted_layers(model: nn.Module, layer_types: tuple[type, ...]) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` for every module of ``layer_types`` that has a trainable ``weight``, in model order."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, layer_types)
        and isinstance(getattr(m, "weight", None), nn.Parameter)
        and m.weight.requires_grad
    ]


class _Hooks:
    """What both recorders share: the hook handles they hold, and taking them off again."""

    _handles: list

    def remove(self) -> None:
        """Detach every hook: nothing more is recorded, what was recorded stays."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _check_state(self, state: dict, layers: list[str], settings: dict) -> None:
        """Refuse a saved record that belongs to other layers or other settings, saying which."""
        kind = type(self).__name__
        saved_layers = list(state.get("layers", []))
        if saved_layers != layers:
            raise ValueError(
                f"This {kind} records {len(layers)} layers ({', '.join(layers[:3])}, ...); the saved record is of "
                f"{len(saved_layers)} ({', '.join(saved_layers[:3])}, ...): it comes from another model."
            )
        for key, value in settings.items():
            if state.get(key) != value:
                raise ValueError(f"This {kind} has {key}={value!r}; the saved record was made with {state.get(key)!r}.")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class GradientRecorder(_Hooks):
    """The L2 norm of each layer's weight gradient, recorded at every ``every``-th backward pass.

    ``norms[layer]`` is the list of recorded norms of that layer; layers are
    listed in model order (input to output), although backward reaches them in
    the opposite order. Use it as a context manager, or call :meth:`remove`
    when done: hooks left behind would go on recording.
    """

    def __init__(
        self,
        model: nn.Module,
        layer_types: tuple[type, ...] = (nn.Conv2d, nn.Linear),
        every: int = 1,
    ) -> None:
        self.every = check_positive_int(every, "every")
        self.loss_scale: float | torch.Tensor = 1.0
        """fit sets this to the GradScaler's scale under fp16, since backward then sees scaled gradients."""
        layers = _weighted_layers(model, tuple(layer_types))
        if not layers:
            names = ", ".join(t.__name__ for t in layer_types)
            raise ValueError(f"The model has no layer of type {names} with a trainable weight to record.")
        self._floats: dict[str, list[float]] = {name: [] for name, _ in layers}
        self._pending: dict[str, list[torch.Tensor]] = {name: [] for name, _ in layers}
        self._calls: dict[str, int] = {name: 0 for name, _ in layers}
        self._handles = [m.weight.register_post_accumulate_grad_hook(self._hook(name)) for name, m in layers]

    def _hook(self, name: str):
        def hook(param: torch.Tensor) -> None:
            calls = self._calls[name]
            self._calls[name] = calls + 1
            if calls % self.every == 0 and param.grad is not None:
                # .norm() stays on the device: no waiting for the GPU here.
                self._pending[name].append(param.grad.detach().float().norm() / self.loss_scale)
                if len(self._pending[name]) >= FLUSH_EVERY:
                    self._flush(name)

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
        """The record so far, as tensors. ``fit`` saves it in its checkpoints, so a resumed run keeps its record."""
        return {
            "layers": list(self._floats),
            "every": self.every,
            "calls": [self._calls[name] for name in self._floats],
            "norms": [torch.tensor(values, dtype=torch.float32) for values in self.norms.values()],
        }

    def load_state_dict(self, state: dict) -> None:
        """Replace the record with ``state`` (from :meth:`state_dict` of a recorder on the same layers)."""
        self._check_state(state, list(self._floats), {"every": self.every})
        layers = list(self._floats)
        self._floats = {name: values.tolist() for name, values in zip(layers, state["norms"])}
        self._pending = {name: [] for name in layers}
        self._calls = dict(zip(layers, state["calls"]))

    def __repr__(self) -> str:
        state = "attached" if self._handles else "removed"
        return f"GradientRecorder({len(self._floats)} layers, every={self.every}, hooks {state})"


def _default_activation_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The residual blocks when the model has them (the output of each block), else every conv and linear layer."""
    from .models import BasicBlock, Bottleneck  # here, so that importing recorders stays light

    blocks = [(n, m) for n, m in model.named_modules() if isinstance(m, (BasicBlock, Bottleneck))]
    return blocks or [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


class ActivationRecorder(_Hooks):
    """Statistics of layer outputs at every ``every``-th training forward pass.

    ``stats[layer]`` is a list of dicts ``{"step", "mean", "std", "frac_zero", "hist"}``:
    ``step`` counts the model's training forward passes from 0, ``frac_zero`` is
    the fraction of exact zeros (dead ReLUs), and ``hist`` a tensor of ``bins``
    fractions over ``value_range`` (values outside are counted in the end bins).
    Nothing is recorded in eval mode, so evaluation does not disturb the record.

    Layers: ``layers`` by name (see ``model.named_modules()``), or every module
    of ``layer_types``; by default each residual block's output (or, in a model
    without blocks, each conv and linear layer).
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str] | None = None,
        layer_types: tuple[type, ...] | None = None,
        every: int = 50,
        bins: int = 60,
        value_range: tuple[float, float] = (-5.0, 5.0),
    ) -> None:
        self.every, self.bins, self.value_range = (
            check_positive_int(every, "every"),
            bins,
            (float(value_range[0]), float(value_range[1])),
        )
        selected = self._select(model, layers, layer_types)
        self._records: dict[str, list[dict]] = {name: [] for name, _ in selected}
        self._step = -1
        # The pre-hook on the whole model counts forward passes; the layer hooks read the count.
        self._handles = [model.register_forward_pre_hook(self._count)]
        self._handles += [m.register_forward_hook(self._hook(name)) for name, m in selected]

    @staticmethod
    def _select(model: nn.Module, layers: Sequence[str] | None, layer_types) -> list[tuple[str, nn.Module]]:
        modules = dict(model.named_modules())
        if layers is not None:
            missing = [name for name in layers if name not in modules]
            if missing:
                raise ValueError(f"No layer named {missing} in the model; names look like {list(modules)[1:6]}.")
            return [(name, modules[name]) for name in layers]
        if layer_types is not None:
            chosen = [(n, m) for n, m in model.named_modules() if n and isinstance(m, tuple(layer_types))]
        else:
            chosen = _default_activation_layers(model)
        if not chosen:
            raise ValueError("No layer to record: pass layers=[names] or layer_types=(...).")
        return chosen

    def _count(self, module: nn.Module, inputs) -> None:
        if module.training:
            self._step += 1

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            if not module.training or self._step % self.every or not isinstance(output, torch.Tensor):
                return
            self._records[name].append(self._summarize(output.detach()))

        return hook

    def _summarize(self, x: torch.Tensor) -> dict:
        x = x.float()
        lo, hi = self.value_range
        # Clamping first puts outliers in the end bins instead of dropping them silently.
        hist = torch.histc(x.clamp(lo, hi), bins=self.bins, min=lo, max=hi)
        return {
            "step": self._step,
            "mean": x.mean(),
            "std": x.std(),
            "frac_zero": (x == 0).float().mean(),
            "hist": hist / x.numel(),
        }

    @property
    def stats(self) -> dict[str, list[dict]]:
        """``{layer name: [one dict per recorded step]}`` with Python floats and CPU histograms."""
        for records in self._records.values():
            for r in records:
                if isinstance(r["mean"], torch.Tensor):  # not converted yet
                    r.update(mean=r["mean"].item(), std=r["std"].item(), frac_zero=r["frac_zero"].item())
                    r["hist"] = r["hist"].cpu()
        return self._records

    def state_dict(self) -> dict:
        """The record so far, as tensors. ``fit`` saves it in its checkpoints, so a resumed run keeps its record."""
        columns = []  # one per layer, in model order
        for records in self.stats.values():
            column = {key: torch.tensor([r[key] for r in records]) for key in ("step", "mean", "std", "frac_zero")}
            column["hist"] = torch.stack([r["hist"] for r in records]) if records else torch.zeros(0, self.bins)
            columns.append(column)
        return {
            "layers": list(self._records),
            "every": self.every,
            "bins": self.bins,
            "value_range": list(self.value_range),
            "step": self._step,
            "records": columns,
        }

    def load_state_dict(self, state: dict) -> None:
        """Replace the record with ``state`` (from :meth:`state_dict` of a recorder on the same layers)."""
        settings = {"every": self.every, "bins": self.bins, "value_range": list(self.value_range)}
        self._check_state(state, list(self._records), settings)
        self._step = state["step"]
        for name, c in zip(list(self._records), state["records"]):
            self._records[name] = [
                {"step": int(step), "mean": float(mean), "std": float(std), "frac_zero": float(zero), "hist": hist}
                for step, mean, std, zero, hist in zip(c["step"], c["mean"], c["std"], c["frac_zero"], c["hist"])
            ]

    def bin_edges(self) -> torch.Tensor:
        """The ``bins + 1`` edges of the histogram bins."""
        return torch.linspace(*self.value_range, self.bins + 1)


def gradient_norms_at_init(
    model: nn.Module,
    batch_x: torch.Tensor,
    batch_y: torch.Tensor,
    layer_types: tuple[type, ...] = (nn.Conv2d, nn.Linear),
) -> dict[str, float]:
    """Per-layer weight-gradient norms after one forward/backward of cross-entropy on one batch.

    This is how the course compares gradient flow at initialization: without BN a
    deep plain network's first layers get much smaller gradients than its last
    (vanishing), with BN much larger ones, and its residual twin keeps them within
    a narrow band (notebooks 01 and 03). The model is left as it was: training
    mode, BatchNorm running statistics and any existing ``.grad`` are restored.
    """
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    # A training-mode forward updates BatchNorm's running statistics: keep a copy to put back.
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    saved_grads = {p: p.grad for p in model.parameters()}
    layers = _weighted_layers(model, tuple(layer_types))
    try:
        model.train()
        for p in model.parameters():
            p.grad = None
        loss = F.cross_entropy(model(batch_x.to(device)), batch_y.to(device))
        loss.backward()
        zero = torch.zeros((), device=device)  # a layer the loss does not reach gets no gradient at all
        norms = torch.stack([m.weight.grad.float().norm() if m.weight.grad is not None else zero for _, m in layers])
        norms = norms.tolist()
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        for p, g in saved_grads.items():
            p.grad = g
    return {name: norm for (name, _), norm in zip(layers, norms)}


__all__ = ["ActivationRecorder", "GradientRecorder", "gradient_norms_at_init"]
