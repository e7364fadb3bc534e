"""Training and evaluation: :func:`fit`, :func:`evaluate`, :func:`predict` and :class:`History`.

One call trains a network the way the notebooks need it::

    history = fit(model, train_loader, test_loader, epochs=30, lr=0.1, checkpoint=env.cache_dir / "r20.pt")

What :func:`fit` takes care of, so that the notebooks can stay about the ideas:

- the optimizer (SGD with momentum, or AdamW) and a learning-rate schedule
  (one-cycle, cosine, the paper's step schedule, constant), stepped once per batch;
- mixed precision on a GPU (bf16 where the GPU has it, else fp16 with loss scaling),
  ``channels_last`` and ``torch.compile`` as switches;
- a checkpoint after every epoch, written atomically, from which an interrupted
  run resumes and ends with exactly the weights it would have had (on the CPU);
- a progress bar, one printed line per epoch, and a stop with a clear message
  when the loss becomes NaN (:class:`TrainingDiverged`).

Epoch numbers are counted from 1 wherever a learner sees them (history, messages,
checkpoints). Accuracies are fractions (0.91), printed as percentages (91.0%).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import time
import warnings
from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import lr_scheduler
from tqdm.auto import tqdm

from ._files import atomic_write
from .env import seed_everything
from .inspect import count_parameters
from .models._checks import check_positive_int

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine", "step", "constant")
AMP_OPTIONS = ("auto", True, False, "bf16", "fp16")
CHECKPOINT_FORMAT = "course_utils.checkpoint"
LOG_EVERY = 25
"""Batches between progress-bar updates and NaN checks: each one waits for the GPU, so not every batch."""


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite: the weights are no longer usable."""


class CheckpointError(RuntimeError):
    """A checkpoint file is damaged or was not written by :func:`save_checkpoint`."""


# --------------------------------------------------------------------------- history


class History:
    """One record (a dict) per epoch: ``epoch``, ``train_loss``, ``train_acc``,
    ``test_loss``, ``test_acc``, ``lr``, ``images_per_s``, ``epoch_time``, and
    anything else a caller appends.

    ``history["test_acc"]`` is the list of that value over the epochs,
    ``history.last`` the latest record and ``history.best()`` the best one.
    ``history.meta`` says, where someone filled it in, how the run was made
    (device, precision, command); it is saved with the records.
    """

    def __init__(self, records: Iterable[dict] | None = None, meta: dict | None = None) -> None:
        self.records: list[dict] = [dict(r) for r in records or ()]
        self.meta: dict = dict(meta or {})

    def append(self, record: dict) -> None:
        """Add the record of one epoch."""
        self.records.append(dict(record))

    def __getitem__(self, key: str) -> list:
        if self.records and not any(key in r for r in self.records):
            raise KeyError(f"No {key!r} in this history; it has {self.keys()}.")
        return [r.get(key) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def keys(self) -> list[str]:
        """Every key that appears in a record, in first-seen order."""
        return list(dict.fromkeys(k for r in self.records for k in r))

    @property
    def last(self) -> dict:
        """The latest epoch's record (``{}`` before the first epoch)."""
        return self.records[-1] if self.records else {}

    def best(self, key: str = "test_acc", mode: str | None = None) -> dict:
        """The record where ``key`` is best: lowest for a loss, highest otherwise (or ``mode="min"/"max"``)."""
        mode = mode or ("min" if "loss" in key or "time" in key else "max")
        rows = [r for r in self.records if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        if not rows:
            raise ValueError(f"No epoch has a finite {key!r}; keys in this history: {self.keys()}.")
        pick = min if mode == "min" else max
        return pick(rows, key=lambda r: r[key])

    def to_dict(self) -> dict:
        """A JSON-friendly copy: ``{"records": [...]}``, with ``"meta"`` when there is any."""
        data: dict = {"records": [dict(r) for r in self.records]}
        if self.meta:
            data["meta"] = dict(self.meta)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> History:
        """The inverse of :meth:`to_dict`."""
        return cls(data.get("records", []), data.get("meta"))

    def save(self, path: str | Path) -> None:
        """Write the history as JSON. A crash mid-write never leaves a half-written file behind."""
        text = json.dumps(self.to_dict(), indent=1)
        atomic_write(Path(path), lambda f: f.write(text.encode("utf-8")))

    @classmethod
    def load(cls, path: str | Path) -> History:
        """Read a history written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def __repr__(self) -> str:
        if not self.records:
            return "History(0 epochs)"
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in self.last.items() if k in ("train_loss", "test_acc"))
        return f"History({len(self)} epochs, last: {shown})"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
    epoch: int,
    history: History | None = None,
    extra: dict | None = None,
) -> None:
    """Save everything needed to continue training after ``epoch`` (1-based, completed), atomically.

    Besides the weights, optimizer and schedule, the random-number generators'
    states are saved, so that a resumed run draws the same random numbers as an
    uninterrupted one.
    """
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "epoch": int(epoch),
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "history": (history or History()).to_dict(),
        "rng": _rng_state(),
        "extra": extra or {},
    }
    atomic_write(Path(path), lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    ``torch.load(weights_only=True)`` only rebuilds tensors and plain containers,
    so a checkpoint from elsewhere cannot run code on this machine. A damaged
    file raises :class:`CheckpointError` saying what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # damaged bytes fail in many ways deep inside the unpickler (IndexError, EOFError, ...)
        raise CheckpointError(_damaged(path, f"it could not be read: {type(e).__name__}: {_first_line(e)}")) from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        what = "a bare state dict (load it with model.load_state_dict)" if isinstance(state, dict) else type(state)
        raise CheckpointError(_damaged(path, f"it is not a course checkpoint but {what}"))
    return state


def _damaged(path: Path, reason: str) -> str:
    return (
        f"Checkpoint {path} is damaged or is not a course_utils checkpoint: {reason}. "
        f"Delete it to start this training over (os.remove({str(path)!r})), or pass another checkpoint path."
    )


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:200]


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        # weights_only loading accepts tensors, not NumPy arrays.
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
    }


def _set_rng_state(state: dict) -> None:
    # Generator states are CPU byte tensors, whatever device a checkpoint was loaded to.
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if "python" in state:
        random.setstate(state["python"])
    if "numpy" in state:
        name, keys, *rest = state["numpy"]
        np.random.set_state((name, keys.cpu().numpy().astype(np.uint32), *rest))


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``torch.compile`` wrapper (its state dict has no ``_orig_mod.`` prefix)."""
    return getattr(model, "_orig_mod", model)


# --------------------------------------------------------------------------- building blocks


def make_optimizer(
    model: nn.Module,
    name: str = "sgd",
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    nesterov: bool = False,
) -> torch.optim.Optimizer:
    """SGD with momentum (the paper's choice) or AdamW (which wants a smaller lr, e.g. 1e-3)."""
    if name == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
        )
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS} or a torch.optim.Optimizer; got {name!r}.")


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: str,
    epochs: int,
    steps_per_epoch: int,
    milestones: Sequence[int] | None = None,
    warmup_epochs: float = 0,
) -> lr_scheduler.LRScheduler:
    """The learning-rate schedule, to be stepped once per batch (``scheduler.step()`` after ``optimizer.step()``).

    - ``"onecycle"``: up from lr/25 to lr over the warmup (default: the first 25%), then down to ~0.
    - ``"cosine"``: from lr down to 0 along half a cosine, after an optional linear warmup.
    - ``"step"``: the paper's schedule, lr divided by 10 at each milestone epoch
      (default: at 50% and 75% of training).
    - ``"constant"``: lr throughout (after an optional linear warmup).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}; got {schedule!r}.")
    total = epochs * steps_per_epoch
    warmup = round(warmup_epochs * steps_per_epoch)
    if not 0 <= warmup < total:
        raise ValueError(f"warmup_epochs must be >= 0 and less than epochs={epochs}; got {warmup_epochs}.")
    if schedule == "onecycle":
        if total < 4:  # too short for a warm-up and an annealing phase (smoke runs): keep the rate constant
            return lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        # OneCycleLR needs at least two steps in each phase, or it divides by zero.
        pct_start = min(max(warmup / total if warmup else 0.25, 2 / total), (total - 2) / total)
        max_lr = [g["lr"] for g in optimizer.param_groups]
        # cycle_momentum=False keeps `momentum` what the caller asked for.
        return lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=total, pct_start=pct_start, cycle_momentum=False
        )
    if schedule == "cosine":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup)
    elif schedule == "step":
        milestones = default_milestones(epochs) if milestones is None else list(milestones)
        # Milestones are in epochs; the scheduler counts batches.
        main = lr_scheduler.MultiStepLR(optimizer, [m * steps_per_epoch - warmup for m in milestones], gamma=0.1)
    else:
        main = lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if not warmup:
        return main
    ramp = lr_scheduler.LinearLR(optimizer, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup)
    return lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


def default_milestones(epochs: int) -> list[int]:
    """The paper's step schedule scaled to ``epochs``: divide lr by 10 at 50% and 75% of training."""
    return sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)})


def resolve_amp(amp: bool | str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """``(autocast dtype or None, use a GradScaler)`` for the ``amp`` setting on ``device``.

    ``"auto"``/``True``: on CUDA, bf16 where the GPU computes it natively
    (Ampere and newer), else fp16 with loss scaling (a T4 emulates bf16 slowly);
    off on the CPU and Apple GPUs. ``"bf16"``/``"fp16"`` force a type; ``False`` is fp32.
    """
    if amp not in AMP_OPTIONS:
        raise ValueError(f"amp must be one of {AMP_OPTIONS}; got {amp!r}.")
    if amp is False:
        return None, False
    if amp in ("auto", True):
        if device.type != "cuda":
            return None, False
        amp = "bf16" if _native_bf16(device) else "fp16"
    if amp == "bf16":
        return torch.bfloat16, False
    return torch.float16, True


def _native_bf16(device: torch.device) -> bool:
    try:
        with torch.cuda.device(device):
            return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.3 has no including_emulation; native bf16 starts with Ampere (8.0)
        return torch.cuda.get_device_capability(device) >= (8, 0)


def _make_scaler(device: torch.device):
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(device.type)
    return torch.cuda.amp.GradScaler()  # torch < 2.3


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _model_device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


CPU_BESIDE_GPU = "Note: a GPU is available, but the model and the batches are on the CPU, so this run trains there."
"""What :func:`fit` prints when it falls back to the CPU beside a GPU (``tools/device_kit.py`` looks for it)."""


def _training_device(model: nn.Module, train_loader: Iterable) -> torch.device:
    """Where :func:`fit` trains when not told: on the accelerator that the batches or the model are on.

    A model built on the CPU and a ``DeviceLoader`` holding the data on the GPU
    train on the GPU: falling back to the model's device would copy every batch
    back to the CPU and train there, in fp32, silently and many times slower.
    """
    loader_device = getattr(train_loader, "device", None)
    candidates = [torch.device(loader_device)] if loader_device is not None else []
    candidates.append(_model_device(model))
    return next((d for d in candidates if d.type != "cpu"), torch.device("cpu"))


def _num_batches(loader: Any, max_batches: int | None, what: str) -> int:
    try:
        n = len(loader)
    except TypeError:
        raise ValueError(f"{what} must have a length (len(loader)), like a DataLoader or DeviceLoader.") from None
    if n == 0:
        raise ValueError(
            f"{what} is empty (0 batches): expected at least one batch. Check the dataset size and "
            "batch_size (with drop_last=True, fewer images than batch_size give no batch at all)."
        )
    return min(n, max_batches) if max_batches else n


# --------------------------------------------------------------------------- evaluation


def evaluate(
    model: nn.Module,
    loader: Iterable,
    device: torch.device | str | None = None,
    amp: bool | str = "auto",
    max_batches: int | None = None,
) -> dict[str, float]:
    """Mean cross-entropy loss and accuracy of ``model`` over ``loader``: ``{"loss", "acc", "n"}``.

    The model is put in eval mode (BatchNorm uses its running statistics) and
    back in the mode it was in afterwards.
    """
    device = torch.device(device) if device is not None else _model_device(model)
    dtype, _ = resolve_amp(amp, device)
    return _evaluate(model, loader, device, dtype, max_batches)


def _evaluate(
    model: nn.Module,
    loader: Iterable,
    device: torch.device,
    dtype: torch.dtype | None,
    max_batches: int | None,
    channels_last: bool = False,
) -> dict[str, float]:
    n_batches = _num_batches(loader, max_batches, "The test loader")
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x, y in islice(loader, n_batches):
                x, y = _to_device(x, y, device, channels_last)
                with _autocast(device, dtype):
                    logits = model(x)
                loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
                correct += (logits.argmax(1) == y).sum()
                n += y.shape[0]
    finally:
        model.train(was_training)
    # One wait for the GPU, here at the end, instead of one per batch.
    return {"loss": loss_sum.item() / n, "acc": correct.item() / n, "n": n}


def predict(
    model: nn.Module,
    loader: Iterable,
    device: torch.device | str | None = None,
    max_batches: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, labels)`` for every batch of ``loader``, concatenated, on the CPU (fp32, eval mode)."""
    device = torch.device(device) if device is not None else _model_device(model)
    n_batches = _num_batches(loader, max_batches, "The loader")
    logits, labels = [], []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x, y in islice(loader, n_batches):
                x, y = _to_device(x, y, device)
                logits.append(model(x).float().cpu())
                labels.append(y.cpu())
    finally:
        model.train(was_training)
    return torch.cat(logits), torch.cat(labels)


def most_confident_mistakes(logits: torch.Tensor, labels: torch.Tensor, k: int = 16) -> torch.Tensor:
    """Indices of the ``k`` wrong predictions the model was most sure of (highest softmax probability), surest first.

    Use with :func:`predict` and ``plots.show_images`` to look at what the network gets wrong.
    """
    probs = logits.float().softmax(dim=1)
    confidence, preds = probs.max(dim=1)
    wrong = (preds != labels).nonzero().flatten()
    order = confidence[wrong].argsort(descending=True)
    return wrong[order[:k]]


def _to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool = False):
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


# --------------------------------------------------------------------------- training


class _EpochStats:
    """Loss and accuracy summed on the device, so that no batch waits for the GPU."""

    def __init__(self, device: torch.device) -> None:
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.n = 0

    def add(self, logits: torch.Tensor, loss: torch.Tensor, y: torch.Tensor) -> None:
        self.loss_sum += loss.float() * y.shape[0]
        self.correct += (logits.argmax(1) == y).sum()
        self.n += y.shape[0]

    def read(self) -> tuple[float, float]:
        """``(mean loss, accuracy)``; waits for the GPU."""
        return self.loss_sum.item() / self.n, self.correct.item() / self.n


class _Run:
    """What one call of :func:`fit` trains with; built by :func:`_prepare`."""

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    test_loader: Iterable | None = None,
    *,
    epochs: int,
    device: torch.device | str | None = None,
    optimizer: str | torch.optim.Optimizer = "sgd",
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    nesterov: bool = False,
    schedule: str = "onecycle",
    milestones: Sequence[int] | None = None,
    warmup_epochs: float = 0,
    label_smoothing: float = 0.0,
    amp: bool | str = "auto",
    channels_last: bool = False,
    compile: bool = False,
    checkpoint: str | Path | None = None,
    resume: bool = True,
    recorders: Sequence[Any] = (),
    max_batches: int | None = None,
    progress: bool = True,
    seed: int | None = 0,
    grad_clip: float | None = None,
    verbose: bool = True,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    - ``optimizer``: ``"sgd"`` (``momentum``, ``nesterov``, ``weight_decay``), ``"adamw"``
      (pass a smaller ``lr``, e.g. 1e-3) or a ready ``torch.optim.Optimizer`` (its own lr is used).
    - ``schedule``: ``"onecycle"``, ``"cosine"``, ``"step"`` (÷10 at ``milestones``, epochs) or
      ``"constant"``; ``warmup_epochs`` ramps the lr up linearly first. Stepped after every batch.
    - ``amp``: see :func:`resolve_amp`. ``channels_last`` and ``compile`` are speed switches; if
      ``torch.compile`` fails, training goes on uncompiled with a printed warning.
    - ``checkpoint``: a file written after every epoch. If it exists and ``resume=True``, training
      continues after its last epoch; with ``resume=False`` it starts over and overwrites it.
    - ``recorders``: e.g. ``recorders.GradientRecorder(model)``; their hooks are already attached,
      ``fit`` calls their ``step()`` (if they have one) after each optimizer step. The checkpoint
      keeps their record (``state_dict()``), and a resumed run hands it back to the recorders passed
      in, so their record covers the whole run.
    - ``device``: where to train; the model is moved there. By default the accelerator that the
      training loader's batches (a ``DeviceLoader``'s ``device``) or the model are on, else the CPU.
    - ``max_batches``: cut every epoch (train and test) to this many batches (smoke runs).
    - ``seed``: seeds the random-number generators of a fresh run (``None``: leave them alone).

    Train loss and accuracy are measured on the fly, in train mode, on augmented
    images; the test loss is plain cross-entropy (no label smoothing).

    Pressing stop (KeyboardInterrupt) mid-epoch keeps what was trained: the
    checkpoint of the last completed epoch is on disk; ``fit`` prints where it
    is and how to resume, then re-raises the KeyboardInterrupt so that a
    notebook's "Run all" stops too. A NaN/inf loss raises :class:`TrainingDiverged`.
    """
    check_positive_int(epochs, "epochs")
    if max_batches is not None:
        check_positive_int(max_batches, "max_batches")
    if device is None:
        device = _training_device(model, train_loader)
        if device.type == "cpu" and torch.cuda.is_available() and verbose:
            print(f"{CPU_BESIDE_GPU} Pass device='cuda' to fit (or move the model or the loader to the GPU).")
    device = torch.device(device)
    run = _prepare(**locals())
    history = History()
    start = 0
    if run.checkpoint is not None and run.checkpoint.exists() and resume:
        history, start = _resume(run)
    elif seed is not None:
        seed_everything(seed)
    history.meta["config"] = dict(run.config)  # how the run was made, also in the saved history
    if verbose:
        print(_describe(run, start))
    if start >= epochs:
        return history
    try:
        for epoch in range(start, epochs):
            record = _train_epoch(run, epoch)
            history.append(record)
            if run.checkpoint is not None:
                _save_run(run, epoch + 1, history)
            if verbose:
                print(_epoch_line(record, epochs))
    except KeyboardInterrupt:
        _report_interrupt(run, history)
        raise
    return history


def _prepare(**kw: Any) -> _Run:
    """Check the arguments and build the optimizer, schedule, scaler and loss of one :func:`fit`."""
    model, device, epochs = kw["model"], kw["device"], kw["epochs"]
    if kw["schedule"] not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}; got {kw['schedule']!r}.")
    if not isinstance(kw["optimizer"], torch.optim.Optimizer) and kw["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS} or a torch.optim.Optimizer; got {kw['optimizer']!r}.")
    steps = _num_batches(kw["train_loader"], kw["max_batches"], "The training loader")
    if kw["test_loader"] is not None:
        _num_batches(kw["test_loader"], kw["max_batches"], "The test loader")
    model.to(device)
    if kw["channels_last"]:
        model.to(memory_format=torch.channels_last)
    if isinstance(kw["optimizer"], torch.optim.Optimizer):
        opt, opt_name = kw["optimizer"], type(kw["optimizer"]).__name__
    else:
        opt_name = kw["optimizer"]
        opt = make_optimizer(model, opt_name, kw["lr"], kw["momentum"], kw["weight_decay"], kw["nesterov"])
    base_lrs = [g["lr"] for g in opt.param_groups]  # before the schedule rewrites them
    scheduler = make_scheduler(opt, kw["schedule"], epochs, steps, kw["milestones"], kw["warmup_epochs"])
    dtype, use_scaler = resolve_amp(kw["amp"], device)
    if kw["amp"] is True and dtype is None and kw["verbose"]:
        print(f"amp=True: mixed precision needs a CUDA GPU; training in fp32 on {device.type}.")
    recorders = list(kw["recorders"])
    return _Run(
        model=model,
        forward=_maybe_compile(model, kw["compile"], recorders, kw["verbose"]),
        compile_unverified=kw["compile"] and not recorders,
        train_loader=kw["train_loader"],
        test_loader=kw["test_loader"],
        device=device,
        epochs=epochs,
        steps=steps,
        optimizer=opt,
        scheduler=scheduler,
        scaler=_make_scaler(device) if use_scaler else None,
        dtype=dtype,
        loss_fn=nn.CrossEntropyLoss(label_smoothing=kw["label_smoothing"]),
        channels_last=kw["channels_last"],
        checkpoint=Path(kw["checkpoint"]) if kw["checkpoint"] is not None else None,
        recorders=recorders,
        max_batches=kw["max_batches"],
        progress=kw["progress"],
        grad_clip=kw["grad_clip"],
        lr=base_lrs[0],
        # What a checkpoint must agree on to be resumed by this call: everything that changes the result.
        # (Speed switches, amp and the device may change between sessions.)
        config={
            "epochs": epochs,
            "steps_per_epoch": steps,
            "schedule": kw["schedule"],
            "optimizer": opt_name,
            "lr": base_lrs,
            "momentum": kw["momentum"],
            "weight_decay": kw["weight_decay"],
            "nesterov": kw["nesterov"],
            "milestones": list(kw["milestones"]) if kw["milestones"] is not None else None,
            "warmup_epochs": kw["warmup_epochs"],
            "label_smoothing": kw["label_smoothing"],
            "grad_clip": kw["grad_clip"],
            "seed": kw["seed"],
            "model": _architecture(model),
        },
    )


def _architecture(model: nn.Module) -> str:
    """The model's class, parameter count and a short fingerprint of its layers (plain and residual twins
    have the same parameters but not the same layers)."""
    model = _unwrap(model)
    fingerprint = hashlib.sha1(repr(model).encode()).hexdigest()[:10]
    return f"{type(model).__name__}, {count_parameters(model):,} parameters, layers {fingerprint}"


def _maybe_compile(model: nn.Module, compile: bool, recorders: list, verbose: bool) -> nn.Module:
    if not compile:
        return model
    if recorders:
        if verbose:
            print("compile=True ignored: recorders' hooks need the model uncompiled (eager).")
        return model
    try:
        return torch.compile(model)
    except Exception as e:  # e.g. an unsupported Python version or platform
        _compile_failed(e)
        return model


def _compile_failed(error: BaseException) -> None:
    print(f"Warning: torch.compile failed ({type(error).__name__}: {_first_line(error)}); training uncompiled.")


def _resume(run: _Run) -> tuple[History, int]:
    """Load ``run.checkpoint`` into the model, optimizer, schedule and RNGs; return ``(history, next epoch)``."""
    # On the CPU: the RNG states must come back as CPU tensors (torch.set_rng_state refuses CUDA ones), and
    # load_state_dict moves the weights and the optimizer's moments to wherever the parameters are.
    state = load_checkpoint(run.checkpoint)
    saved = state.get("extra", {}).get("config") or {}
    # A key the checkpoint does not have (written by an older course_utils) is not compared.
    diff = {k: (saved[k], v) for k, v in run.config.items() if k in saved and saved[k] != v}
    if diff:
        raise ValueError(
            f"Checkpoint {run.checkpoint} is from a different training run: (saved, now) = {diff}. "
            "Pass resume=False to start over (it will be overwritten), or another checkpoint path."
        )
    _unwrap(run.model).load_state_dict(state["model"])  # saved unwrapped, without torch.compile's prefix
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if run.scaler is not None and state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])
    _restore_recorders(run, state.get("extra", {}).get("recorders") or [], state["epoch"])
    return History.from_dict(state["history"]), state["epoch"]


def _restore_recorders(run: _Run, saved: list, epoch: int) -> None:
    """Give each recorder back what it recorded before the checkpoint, so that its record covers the whole run."""
    for i, recorder in enumerate(run.recorders):
        if not hasattr(recorder, "load_state_dict"):
            continue
        if i >= len(saved) or saved[i] is None:
            print(
                f"{type(recorder).__name__} (recorder {i}) has no record in {run.checkpoint}: "
                f"it records from epoch {epoch + 1} on."
            )
            continue
        try:
            recorder.load_state_dict(saved[i])
        except ValueError as e:
            raise ValueError(
                f"Checkpoint {run.checkpoint} holds a different record for recorder {i}: {e} "
                "Pass the same recorders as the run that wrote it, or resume=False to start over."
            ) from e


def _save_run(run: _Run, epoch: int, history: History) -> None:
    save_checkpoint(
        run.checkpoint,
        model=run.model,
        optimizer=run.optimizer,
        scheduler=run.scheduler,
        scaler=run.scaler,
        epoch=epoch,
        history=history,
        extra={
            "config": run.config,
            # A recorder's record so far (None for one without state_dict): a resumed run continues it.
            "recorders": [r.state_dict() if hasattr(r, "state_dict") else None for r in run.recorders],
        },
    )


def _train_epoch(run: _Run, epoch: int) -> dict:
    """Train one epoch (0-based index ``epoch``), evaluate, and return the epoch's record."""
    if hasattr(run.train_loader, "set_epoch"):
        # The loader's shuffle and augmentation then depend only on (seed, epoch): resumable.
        run.train_loader.set_epoch(epoch)
    run.model.train()
    stats = _EpochStats(run.device)
    lr = run.optimizer.param_groups[0]["lr"]
    t0 = _sync_time(run.device)
    bar = tqdm(total=run.steps, desc=f"epoch {epoch + 1}/{run.epochs}", leave=False, disable=not run.progress)
    with bar:
        for i, (x, y) in enumerate(islice(run.train_loader, run.steps)):
            x, y = _to_device(x, y, run.device, run.channels_last)
            lr = run.optimizer.param_groups[0]["lr"]
            logits, loss = _train_step_compiled(run, x, y)
            stats.add(logits, loss, y)
            bar.update(1)
            if (i + 1) % LOG_EVERY == 0:
                _check_finite(stats, epoch, i, run)
                train_loss, train_acc = stats.read()
                bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{100 * train_acc:.1f}%", refresh=False)
    if stats.n == 0:
        raise ValueError("The training loader yielded no batches: expected at least one (x, y) batch per epoch.")
    _check_finite(stats, epoch, stats.n, run, at_end=True)
    train_time = _sync_time(run.device) - t0
    train_loss, train_acc = stats.read()
    record = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc}
    if run.test_loader is not None:
        result = _evaluate(run.forward, run.test_loader, run.device, run.dtype, run.max_batches, run.channels_last)
        record.update(test_loss=result["loss"], test_acc=result["acc"])
    record.update(
        lr=lr,
        images_per_s=stats.n / train_time,
        train_time=train_time,
        epoch_time=_sync_time(run.device) - t0,
    )
    return record


def _train_step_compiled(run: _Run, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step; if a compiled model fails on its first batches, go on with the plain model."""
    if not run.compile_unverified:
        return _train_step(run, x, y)
    try:
        out = _train_step(run, x, y)
    except Exception as e:  # torch.compile compiles lazily, so its failures surface at the first call
        _compile_failed(e)
        run.forward, run.compile_unverified = run.model, False
        return _train_step(run, x, y)
    run.compile_unverified = False  # it worked once: from now on errors are real errors
    return out


def _train_step(run: _Run, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, backward, optimizer and schedule step on one batch; returns detached ``(logits, loss)``."""
    with _autocast(run.device, run.dtype):
        logits = run.forward(x)
        loss = run.loss_fn(logits, y)
    run.optimizer.zero_grad(set_to_none=True)
    if run.scaler is not None:
        scaled = run.scaler.scale(loss)
        _tell_recorders_scale(run)
        scaled.backward()
        if run.grad_clip:
            run.scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(run.model.parameters(), run.grad_clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        loss.backward()
        if run.grad_clip:
            nn.utils.clip_grad_norm_(run.model.parameters(), run.grad_clip)
        run.optimizer.step()
    with warnings.catch_warnings():
        # GradScaler skips the optimizer step when fp16 gradients overflow; the schedule moves on regardless.
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step()` before")
        run.scheduler.step()
    for recorder in run.recorders:
        if hasattr(recorder, "step"):
            recorder.step()
    return logits.detach(), loss.detach()


def _tell_recorders_scale(run: _Run) -> None:
    """Gradients seen during backward are multiplied by the GradScaler's scale; recorders divide it out."""
    scale = getattr(run.scaler, "_scale", None)
    for recorder in run.recorders:
        if hasattr(recorder, "loss_scale") and scale is not None:
            recorder.loss_scale = scale


def _check_finite(stats: _EpochStats, epoch: int, batch: int, run: _Run, at_end: bool = False) -> None:
    if torch.isfinite(stats.loss_sum):
        return
    where = "by the end" if at_end else f"by batch {batch + 1}"
    saved = (
        f" The checkpoint {run.checkpoint} still holds the last good epoch."
        if run.checkpoint is not None and run.checkpoint.exists()
        else ""
    )
    raise TrainingDiverged(
        f"Training diverged in epoch {epoch + 1} ({where} of {run.steps} batches): the loss is "
        f"{stats.loss_sum.item()}. Try a lower learning rate (e.g. lr={run.lr / 10:g}, a tenth of {run.lr:g}) "
        f"or disable mixed precision (amp=False).{saved}"
    )


def _sync_time(device: torch.device) -> float:
    """The time after the GPU has finished its queued work: without the wait, img/s would be flattered."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _model_name(model: nn.Module) -> str:
    """A model's own ``name`` if it has one (the CIFAR networks: "plain-56"), else its class name."""
    model = _unwrap(model)
    name = getattr(model, "name", None)
    return name if isinstance(name, str) else type(model).__name__


def _describe(run: _Run, start: int) -> str:
    precision = {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast + GradScaler"}
    features = [precision[run.dtype]] + [name for name in ("channels_last",) if run.channels_last]
    if run.forward is not run.model:
        features.append("torch.compile")
    where = f", resuming after epoch {start} from {run.checkpoint}" if start else ""
    if start >= run.epochs:
        return f"Already trained for {start} epochs (checkpoint {run.checkpoint}); nothing to do."
    return (
        f"Training {_model_name(run.model)} on {run.device} ({', '.join(features)}): "
        f"{run.epochs} epochs x {run.steps} batches, {run.config['optimizer']} "
        f"lr {run.config['lr'][0]:g}, {run.config['schedule']} schedule{where}."
    )


def _loss(value: float) -> str:
    # Three decimals for the usual losses; an untrained network's test loss can be astronomically large.
    return f"{value:.3f}" if abs(value) < 1e4 else f"{value:.3g}"


def _epoch_line(r: dict, epochs: int) -> str:
    width = len(str(epochs))
    line = f"epoch {r['epoch']:>{width}}/{epochs}  loss {_loss(r['train_loss'])}  acc {100 * r['train_acc']:5.1f}%"
    if "test_acc" in r:
        line += f"  test loss {_loss(r['test_loss'])}  test acc {100 * r['test_acc']:5.1f}%"
    line += f"  lr {r['lr']:.3g}  {r['images_per_s']:,.0f} img/s  {r['epoch_time']:.1f} s"
    if r["epoch"] < epochs:  # at this epoch's pace; the first may be slower (compile, cuDNN autotuning)
        line += f"  (~{_duration((epochs - r['epoch']) * r['epoch_time'])} to go)"
    return line


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _report_interrupt(run: _Run, history: History) -> None:
    done = len(history)
    if run.checkpoint is not None and done:
        print(
            f"\nInterrupted. Nothing trained is lost: {run.checkpoint} holds the model after epoch "
            f"{history.last['epoch']}. Run the same fit(...) call again (resume=True) to continue "
            "from there; the interrupted epoch is trained again from its start."
        )
    elif run.checkpoint is not None:
        print(f"\nInterrupted during the first epoch; no checkpoint was written yet to {run.checkpoint}.")
    else:
        print(
            f"\nInterrupted after {done} completed epoch(s). The model keeps the weights of its last "
            "batch; pass checkpoint=... to fit to be able to resume an interrupted run."
        )


__all__ = [
    "CheckpointError",
    "History",
    "TrainingDiverged",
    "default_milestones",
    "evaluate",
    "fit",
    "load_checkpoint",
    "make_optimizer",
    "make_scheduler",
    "most_confident_mistakes",
    "predict",
    "resolve_amp",
    "save_checkpoint",
]
