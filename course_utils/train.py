"""Training and evaluation: :func:`fit` (the loop; checkpoints, mixed precision, progress and recorders are callbacks,
:mod:`course_utils.callbacks`), :func:`evaluate`, :func:`predict`, :class:`History`. Epochs are numbered from 1."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import lr_scheduler

from .callbacks import (  # noqa: F401 (re-exported: cu.train.Checkpoint, cu.train.MixedPrecision...)
    Callback,
    Checkpoint,
    CheckpointError,
    MixedPrecision,
    Progress,
    Run,
    load_checkpoint,
    recipe,
    unwrap,
)
from .env import seed_everything
from .models._checks import check_positive_int

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine", "step", "constant")
CHECK_EVERY = 25  # batches between checks that the loss is finite: each check waits for the GPU


class TrainingDiverged(RuntimeError):
    """The loss, a weight or a BatchNorm statistic became NaN or infinite: the model is no longer usable."""


class History:
    """One record (a dict) per epoch: ``epoch``, ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``, ``lr``
    (at the epoch's start), ``images_per_s``, ``epoch_time``. ``history["test_acc"]``: that value over the epochs."""

    def __init__(self, records: Iterable[dict] = ()) -> None:
        self.records: list[dict] = [dict(r) for r in records]

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

    def best(self, key: str = "test_acc") -> dict:
        """The record where ``key`` is best: the lowest loss or time, the highest anything else."""
        lowest = "loss" in key or "time" in key
        rows = [r for r in self.records if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        if not rows:
            raise ValueError(f"No epoch has a finite {key!r}; keys in this history: {self.keys()}.")
        return (min if lowest else max)(rows, key=lambda r: r[key])

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={self.last[k]:.4g}" for k in ("train_loss", "test_acc") if k in self.last)
        return f"History({len(self)} epochs{', last: ' + shown if shown else ''})"


def fit(
    model: nn.Module,
    train_loader: Iterable,
    test_loader: Iterable | None = None,
    *,
    epochs: int,
    lr: float = 0.1,
    weight_decay: float = 5e-4,
    optimizer: str | torch.optim.Optimizer = "sgd",
    schedule: str | Callable = "onecycle",
    loss_fn: nn.Module | None = None,
    device: torch.device | str | None = None,
    seed: int | None = 0,
    callbacks: Sequence[Any] = (),
) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    - ``optimizer``: ``"sgd"`` (momentum 0.9, Nesterov), ``"adamw"`` (pass a smaller ``lr``,
      e.g. 1e-3), or a ready ``torch.optim.Optimizer`` (then its own lr and weight decay are used).
    - ``schedule``: one of :func:`make_scheduler`'s, or a function ``(optimizer, total_steps) -> LRScheduler`` (also
      run once on a stand-in optimizer: its lr at each step is part of the recipe a checkpoint checks).
    - ``loss_fn``: ``nn.CrossEntropyLoss()`` by default; e.g. ``nn.CrossEntropyLoss(label_smoothing=0.1)``.
    - ``device``: by default the accelerator the batches or the model are on, else the CPU; the model moves there.
    - ``seed``: seeds the random generators before training (``None``: leave them alone).
    - ``callbacks``: e.g. ``Checkpoint(path)``, ``MixedPrecision()``, ``GradientRecorder(model)``;
      a ``Progress()`` is added unless one is passed (``Progress(bar=False, lines=False)``: silent).

    Pressing stop prints what the checkpoint holds and how to continue, then re-raises: "Run all" stops too.
    """
    _check_arguments(epochs, lr, weight_decay, optimizer, schedule)
    device = torch.device(device) if device is not None else _default_device(model, train_loader)
    model.to(device)
    steps = _num_batches(train_loader, "The training loader")
    if test_loader is not None:
        _num_batches(test_loader, "The test loader")
    opt = _make_optimizer(model, optimizer, lr, weight_decay, fused=device.type == "cuda")
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    # What defines the run, read before the schedule changes the optimizer's lr: a checkpoint compares it.
    planned = _schedule_recipe(schedule, opt, epochs * steps) if callable(schedule) else schedule
    config = recipe(model, opt, (train_loader, test_loader), epochs=epochs, seed=seed, schedule=planned, loss=loss_fn)
    scheduler = schedule(opt, epochs * steps) if callable(schedule) else make_scheduler(opt, schedule, epochs, steps)
    if not any(isinstance(callback, Progress) for callback in callbacks):
        callbacks = [*callbacks, Progress()]
    run = Run(model, opt, scheduler, loss_fn, device, epochs, steps, config, History())
    run.callbacks = sorted(callbacks, key=lambda callback: getattr(callback, "order", 0))
    if seed is not None:
        seed_everything(seed)  # a resumed run gets its generators' states back from the checkpoint
    try:
        run.call("on_fit_start")
        for epoch in range(run.start_epoch, epochs):
            run.epoch = epoch
            run.call("on_epoch_start")
            if hasattr(train_loader, "set_epoch"):
                train_loader.set_epoch(epoch)  # the epoch's shuffle and augmentation: a resumed run replays them
            model.train()
            loss_sum, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
            lr_now, start = opt.param_groups[0]["lr"], time.perf_counter()
            for i, (x, y) in enumerate(train_loader):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with run.autocast():
                    logits = model(x)
                    loss = run.loss_fn(logits, y)
                opt.zero_grad(set_to_none=True)
                if run.scaler is None:
                    loss.backward()
                    opt.step()
                else:  # fp16: scale the loss up so that small gradients do not round to zero, down for the step
                    run.scaler.scale(loss).backward()
                    run.scaler.step(opt)
                    run.scaler.update()
                scheduler.step()
                run.loss = loss.detach()
                loss_sum += run.loss.float() * len(y)
                correct += (logits.argmax(1) == y).sum()
                seen += len(y)
                if (i + 1) % CHECK_EVERY == 0:
                    _check_finite(run, loss_sum)
                run.call("on_step_end")
            # .item() waits for the GPU to finish the epoch, so the time measured after it is honest.
            record = {"epoch": epoch + 1, "train_loss": loss_sum.item() / seen, "train_acc": correct.item() / seen}
            record.update(lr=lr_now, images_per_s=seen / (time.perf_counter() - start))
            if test_loader is not None:
                with run.autocast():  # uncompiled: a compiled model would recompile for eval mode and a short batch
                    result = evaluate(unwrap(model), test_loader, device)
                record.update(test_loss=result["loss"], test_acc=result["acc"])
            record["epoch_time"] = time.perf_counter() - start
            _check_finite(run, loss_sum, record)  # before any callback saves this epoch
            run.history.append(record)
            run.call("on_epoch_end", record)
    except BaseException as stop:
        run.call("on_interrupt")  # Checkpoint saves the last finished epoch, Progress closes its bar
        if isinstance(stop, TrainingDiverged):
            raise TrainingDiverged(f"{stop} {run.saved()}") from None  # what the checkpoint holds now
        if isinstance(stop, KeyboardInterrupt):
            then = "Run the same fit(...) again to continue from there." if run.saved_epoch else ""
            print(f"\nInterrupted in epoch {run.epoch + 1} of {epochs}. {run.saved()} {then}".rstrip())
        raise
    run.call("on_fit_end")
    return run.history


def _check_arguments(epochs: int, lr: float, weight_decay: float, optimizer: Any, schedule: Any) -> None:
    check_positive_int(epochs, "epochs")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number (e.g. 0.1 for SGD, 1e-3 for AdamW); got {lr!r}.")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not 0 <= weight_decay < math.inf:
        raise ValueError(f"weight_decay must be 0 or a small positive number (e.g. 5e-4); got {weight_decay!r}.")
    if not isinstance(optimizer, torch.optim.Optimizer) and optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS} or a torch.optim.Optimizer; got {optimizer!r}.")
    if not callable(schedule) and schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES} or a function (optimizer, steps); got {schedule!r}.")


def _default_device(model: nn.Module, train_loader: Iterable) -> torch.device:
    # Not the model's CPU when the batches are on the GPU: every batch would be copied back to the CPU.
    loader_device = getattr(train_loader, "device", None)
    candidates = [torch.device(loader_device)] if loader_device is not None else []
    candidates += [p.device for p in model.parameters()][:1]
    return next((d for d in candidates if d.type != "cpu"), torch.device("cpu"))


def _num_batches(loader: Any, what: str) -> int:
    try:
        n = len(loader)
    except TypeError:
        raise ValueError(f"{what} must have a length (len(loader)), like a DataLoader or DeviceLoader.") from None
    if n == 0:
        raise ValueError(
            f"{what} is empty (0 batches): expected at least one batch. Check the dataset size and "
            "batch_size (with drop_last=True, fewer images than batch_size give no batch at all)."
        )
    return n


def _make_optimizer(
    model: nn.Module, optimizer: Any, lr: float, weight_decay: float, fused: bool
) -> torch.optim.Optimizer:
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    # Fused (one kernel for all parameters, on a GPU): under fp16 the GradScaler then checks for overflow on the
    # device instead of waiting for the host at every step.
    settings = dict(lr=lr, weight_decay=weight_decay, fused=fused or None)
    if optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), momentum=0.9, nesterov=True, **settings)
    return torch.optim.AdamW(model.parameters(), **settings)


def make_scheduler(
    optimizer: torch.optim.Optimizer, schedule: str, epochs: int, steps_per_epoch: int
) -> lr_scheduler.LRScheduler:
    """The learning-rate schedule ``fit`` uses, to be stepped after every batch.

    - ``"onecycle"``: up from lr/25 to lr over the first 25% of the steps, then down to ~0.
    - ``"cosine"``: from lr down to 0 along half a cosine.
    - ``"step"``: the paper's schedule, lr ÷ 10 after 50% and 75% of the epochs.
    - ``"constant"``: lr throughout.
    """
    total = epochs * steps_per_epoch
    if schedule == "constant" or (schedule == "onecycle" and total < 4):  # too short for a warm-up (smoke runs)
        return lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if schedule == "onecycle":
        pct_start = min(max(0.25, 2 / total), (total - 2) / total)  # OneCycleLR needs 2 steps in each phase
        max_lr = [g["lr"] for g in optimizer.param_groups]
        # cycle_momentum=False keeps SGD's momentum at 0.9 throughout.
        return lr_scheduler.OneCycleLR(optimizer, max_lr, total_steps=total, pct_start=pct_start, cycle_momentum=False)
    if schedule == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if schedule == "step":
        milestones = sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)})
        return lr_scheduler.MultiStepLR(optimizer, [m * steps_per_epoch for m in milestones], 0.1)
    raise ValueError(f"schedule must be one of {SCHEDULES}; got {schedule!r}.")


def _schedule_recipe(schedule: Callable, optimizer: torch.optim.Optimizer, total: int) -> str:
    """A schedule function by its name and the lr it gives at every step: an edited function is another recipe."""
    probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=optimizer.param_groups[0]["lr"], momentum=0.9)
    scheduler, lrs = schedule(probe, total), []
    for _ in range(total):
        lrs.append(probe.param_groups[0]["lr"])
        probe.step()
        scheduler.step()
    return f"{getattr(schedule, '__qualname__', repr(schedule))}, lr per step {hash(tuple(lrs)) & 0xFFFFFFFF:08x}"


def _check_finite(run: Run, loss_sum: torch.Tensor, record: dict | None = None) -> None:
    """Stop before a broken model is saved: a NaN/inf loss, weight or BatchNorm statistic."""
    problem = None if torch.isfinite(loss_sum) else f"the training loss is {loss_sum.item()}"
    if problem is None and record is not None:
        tensors = [
            (n, t) for n, t in [*run.model.named_parameters(), *run.model.named_buffers()] if t.is_floating_point()
        ]
        finite = torch.stack([torch.isfinite(t).all() for _, t in tensors]).tolist() if tensors else []
        bad = [name for (name, _), ok in zip(tensors, finite) if not ok]
        if bad:
            problem = f"NaN or inf in {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}"
        elif not math.isfinite(record.get("test_loss", 0.0)):
            problem = f"the test loss is {record['test_loss']}"
    if problem is None:
        return
    lr = run.config.get("lr", 0.0)
    mixed = " or train without MixedPrecision" if run.precision != "fp32" else ""
    raise TrainingDiverged(
        f"Training diverged in epoch {run.epoch + 1}: {problem}. Try a lower learning rate (e.g. lr={lr / 10:g}, "
        f"a tenth of {lr:g}){mixed}."
    )


def evaluate(model: nn.Module, loader: Iterable, device: torch.device | str | None = None) -> dict[str, float]:
    """``{"loss", "acc", "n"}``: mean cross-entropy and accuracy over ``loader``, in eval mode (BatchNorm uses its
    running statistics); the model goes back to the mode it was in."""
    loss_sum, correct, n = 0.0, 0, 0
    for logits, y in _outputs(model, loader, device):
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        n += len(y)
    if n == 0:
        raise ValueError("The loader yielded no batches: expected at least one (x, y) batch.")
    return {"loss": float(loss_sum) / n, "acc": int(correct) / n, "n": n}  # one wait for the GPU, at the end


def predict(
    model: nn.Module, loader: Iterable, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, labels)`` for every batch of ``loader``, concatenated, on the CPU (fp32, eval mode)."""
    outputs = [(logits.float().cpu(), y.cpu()) for logits, y in _outputs(model, loader, device)]
    return torch.cat([o[0] for o in outputs]), torch.cat([o[1] for o in outputs])


def _outputs(model: nn.Module, loader: Iterable, device: torch.device | str | None):
    """``(logits, labels)`` of each batch, in eval mode and without gradients."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    _num_batches(loader, "The loader")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x, y in loader:
                yield model(x.to(device, non_blocking=True)), y.to(device, non_blocking=True)
    finally:
        model.train(was_training)


def most_confident_mistakes(logits: torch.Tensor, labels: torch.Tensor, k: int = 16) -> torch.Tensor:
    """Indices of the ``k`` wrong predictions the model was surest of, surest first (with :func:`predict`)."""
    confidence, preds = logits.float().softmax(dim=1).max(dim=1)
    wrong = (preds != labels).nonzero().flatten()
    return wrong[confidence[wrong].argsort(descending=True)[:k]]
