"""Everything :func:`~course_utils.train.fit` does besides training, as callbacks: objects with some of the hooks of
:class:`Callback`, each called with the :class:`Run`, in the order of their ``order`` (:class:`Progress` last)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from ._files import atomic_write

CHECKPOINT_FORMAT, CHECKPOINT_VERSION = "course_utils.checkpoint", 2
START_OVER = "To start over instead, pass Checkpoint(path, resume=False) (the file is overwritten) or another path."
LOG_EVERY = 25  # batches between progress-bar updates: each update waits for the GPU


class CheckpointError(RuntimeError):
    """A checkpoint file is damaged, or was not written by :class:`Checkpoint`."""


class Callback:
    """A base class whose hooks do nothing: override the ones you need."""

    order = 0

    def on_fit_start(self, run: Run) -> None: ...  # a Checkpoint resumes here
    def on_epoch_start(self, run: Run) -> None: ...
    def on_step_end(self, run: Run) -> None: ...
    def on_epoch_end(self, run: Run, record: dict) -> None: ...  # after the divergence check: a Checkpoint saves
    def on_fit_end(self, run: Run) -> None: ...
    def on_interrupt(self, run: Run) -> None: ...  # an exception (the stop button too) ends training


@dataclass
class Run:
    """What one call of ``fit`` trains with; every hook receives it and may change it."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loss_fn: Callable
    device: torch.device
    epochs: int
    steps: int  # batches per epoch
    config: dict  # what defines the run (see recipe): a checkpoint of another run is refused
    history: Any  # train.History
    callbacks: list = field(default_factory=list)
    start_epoch: int = 0  # epochs trained before this call (a resumed run)
    epoch: int = 0  # the epoch being trained, counted from 0
    loss: torch.Tensor | None = None  # the last batch's loss
    autocast: Callable[[], ContextManager] = contextlib.nullcontext  # MixedPrecision sets these three
    scaler: torch.amp.GradScaler | None = None
    precision: str = "fp32"
    checkpoint: Path | None = None  # Checkpoint sets these two
    saved_epoch: int = 0  # the epoch the checkpoint file holds (0: no epoch of this run)

    def call(self, hook: str, *args: Any) -> None:
        """Call ``hook`` on every callback that has it, in order."""
        for callback in self.callbacks:
            getattr(callback, hook, lambda *_: None)(self, *args)

    def saved(self) -> str:
        """What is safe on disk, in a sentence."""
        if self.checkpoint is None:
            return "No checkpoint is kept: pass callbacks=[cu.train.Checkpoint(path)] to fit to be able to continue."
        if not self.saved_epoch:
            return f"No epoch of this run is saved in {self.checkpoint} yet."
        return f"The checkpoint {self.checkpoint} is intact: it holds the model after epoch {self.saved_epoch}."


class MixedPrecision(Callback):
    """Autocast to 16-bit floats, faster on a GPU. ``"auto"``: on CUDA, bf16 where the GPU computes it natively, else
    fp16 with a GradScaler (small fp16 gradients would round to zero); fp32 elsewhere. ``"bf16"``/``"fp16"``: forced."""

    order = -10  # first: Checkpoint restores the GradScaler it creates

    def __init__(self, dtype: str = "auto") -> None:
        if dtype not in ("auto", "bf16", "fp16"):
            raise ValueError(f'MixedPrecision dtype must be "auto", "bf16" or "fp16"; got {dtype!r}.')
        self.dtype = dtype

    def choose(self, device: torch.device) -> tuple[torch.dtype | None, bool]:
        """``(autocast dtype, or None for fp32; whether a GradScaler is needed)`` on ``device``."""
        if self.dtype == "auto" and device.type != "cuda":
            return None, False
        native_bf16 = self.dtype == "auto" and torch.cuda.is_bf16_supported(including_emulation=False)
        return (torch.bfloat16, False) if self.dtype == "bf16" or native_bf16 else (torch.float16, True)

    def on_fit_start(self, run: Run) -> None:
        dtype, scaled = self.choose(run.device)
        if dtype is not None:
            run.autocast = partial(torch.autocast, run.device.type, dtype=dtype)
            run.precision = f"{'bf16' if dtype == torch.bfloat16 else 'fp16'} autocast"
        if scaled:
            run.scaler = torch.amp.GradScaler(run.device.type)
            run.precision += " + GradScaler"
            # The scaler skips the optimizer's step when fp16 gradients overflowed; the schedule moves on regardless.
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")


class Progress(Callback):
    """A progress bar per epoch (``bar``) and one printed line per epoch (``lines``)."""

    order = 10  # last: it reports what the others did (a resume, a saved epoch)

    def __init__(self, bar: bool = True, lines: bool = True) -> None:
        self.bar, self.lines, self._bar = bar, lines, None

    def on_fit_start(self, run: Run) -> None:
        if self.lines:
            compiled = ", torch.compile" if hasattr(run.model, "_orig_mod") else ""
            resuming = f", resuming after epoch {run.start_epoch} from {run.checkpoint}" if run.start_epoch else ""
            resuming += ": nothing left to train" if run.start_epoch >= run.epochs else ""
            model = unwrap(run.model)
            print(
                f"Training {getattr(model, 'name', type(model).__name__)} on {run.device} ({run.precision}{compiled}): "
                f"{run.epochs} epochs x {run.steps} batches, {run.config['optimizer']} lr {run.config['lr']:g}, "
                f"{run.config['schedule']} schedule{resuming}."
            )

    def on_epoch_start(self, run: Run) -> None:
        if self.bar:
            self._bar = tqdm(total=run.steps, desc=f"epoch {run.epoch + 1}/{run.epochs}", leave=False)

    def on_step_end(self, run: Run) -> None:
        if self._bar is not None:
            self._bar.update(1)
            if self._bar.n % LOG_EVERY == 0:
                self._bar.set_postfix(loss=f"{run.loss.item():.3f}", refresh=False)

    def on_epoch_end(self, run: Run, record: dict) -> None:
        self.on_interrupt(run)
        if self.lines:
            print(epoch_line(record, run.epochs))

    def on_interrupt(self, run: Run) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def epoch_line(r: dict, epochs: int) -> str:
    """One epoch's record as a printed line, with the time left at this epoch's pace."""
    line = f"epoch {r['epoch']:>{len(str(epochs))}}/{epochs}  loss {_loss(r['train_loss'])}  acc {r['train_acc']:6.1%}"
    if "test_acc" in r:
        line += f"  test loss {_loss(r['test_loss'])}  test acc {r['test_acc']:6.1%}"
    line += f"  lr {r['lr']:.3g}  {r['images_per_s']:,.0f} img/s  {r['epoch_time']:.1f} s"
    if r["epoch"] < epochs:  # the first epoch may be slower (compile, cuDNN autotuning)
        line += f"  (~{duration((epochs - r['epoch']) * r['epoch_time'])} to go)"
    return line


def _loss(value: float) -> str:
    # An untrained network's test loss can be astronomically large: keep the line short.
    return f"{value:.3f}" if abs(value) < 1e4 else f"{value:.3g}"


def duration(seconds: float) -> str:
    """A duration in the unit a person would say: "40 s", "12 min", "2.5 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 90 * 60 else f"{seconds / 3600:.1f} h"


class Checkpoint(Callback):
    """Save the run to ``path``, atomically: after an epoch once ``minutes`` have passed since the last save, after the
    last epoch, and when training stops early (stop pressed, an error): no finished epoch is lost to an interruption.
    If ``path`` exists and ``resume=True``, training continues from it to exactly the weights of an uninterrupted run
    (on the CPU), recorders' records included. A checkpoint of another recipe is refused."""

    def __init__(self, path: str | Path, resume: bool = True, minutes: float = 1.0) -> None:
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 <= minutes < float("inf"):
            raise ValueError(f"minutes must be 0 (save every epoch) or more; got {minutes!r}.")
        self.path, self.resume, self.minutes = Path(path), resume, minutes
        self._unsaved: dict | None = None  # the last finished epoch, when it is not on disk yet

    def on_fit_start(self, run: Run) -> None:
        run.checkpoint, self._unsaved, self._saved_at = self.path, None, time.monotonic()
        # The precision asked for is part of the recipe (what "auto" becomes may differ by device).
        run.config["mixed_precision"] = next((c.dtype for c in run.callbacks if isinstance(c, MixedPrecision)), None)
        if self.resume and self.path.exists():
            self._restore(run, load_checkpoint(self.path))

    def on_epoch_end(self, run: Run, record: dict) -> None:
        # On a fast GPU a small network's epoch takes seconds, and a write a good share of them: epochs wait in memory.
        state = self._state(run, record["epoch"])
        if time.monotonic() - self._saved_at >= 60 * self.minutes or record["epoch"] == run.epochs:
            self._save(run, state)
            self._unsaved = None
        else:  # (if anything here fails, the epoch before is still kept: on_interrupt writes it)
            self._unsaved = copy.deepcopy(state)  # a copy: the next epoch changes the tensors in place

    def on_interrupt(self, run: Run) -> None:
        if self._unsaved is not None:
            state, self._unsaved = self._unsaved, None
            try:
                self._save(run, state)
            except OSError as e:  # e.g. a full disk: the error that stopped training is the one to raise
                print(e)

    def _state(self, run: Run, epoch: int) -> dict:
        return {
            **{"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "epoch": epoch, "config": run.config},
            "model": unwrap(run.model).state_dict(),  # without torch.compile's "_orig_mod." prefix
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict() if run.scaler is not None else None,
            "history": run.history.records,
            "rng": {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all()},
            "callbacks": {key: callback.state_dict() for key, callback in _recorders(run).items()},
        }

    def _save(self, run: Run, state: dict) -> None:
        atomic_write(self.path, lambda f: torch.save(state, f), kept=run.saved())  # kept: for a full disk's message
        run.saved_epoch, self._saved_at = state["epoch"], time.monotonic()

    def _restore(self, run: Run, state: dict) -> None:
        if state.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(_damaged(self.path, "it was written by an older version of course_utils"))
        saved, now = state["config"], run.config
        diff = [
            f"{k}: {saved.get(k)!r} there, {now.get(k)!r} here" for k in {**saved, **now} if saved.get(k) != now.get(k)
        ]
        if diff:
            raise ValueError(f"Checkpoint {self.path} holds another run: {'; '.join(diff)}. {START_OVER}")
        unwrap(run.model).load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        if run.scaler is not None and state["scaler"]:
            run.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"].cpu())  # a generator's state is a CPU tensor, wherever it was read to
        if torch.cuda.device_count() == len(state["rng"]["cuda"]) > 0:
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        for key, callback in _recorders(run).items():
            try:
                callback.load_state_dict(state["callbacks"][key])
            except KeyError:
                print(f"{key} has no record in {self.path}: it records from epoch {state['epoch'] + 1} on.")
            except ValueError as e:
                raise ValueError(f"{e} Pass the same recorders as the run that wrote {self.path}. {START_OVER}") from e
        run.history.records[:] = state["history"]
        run.start_epoch = run.saved_epoch = state["epoch"]


def _recorders(run: Run) -> dict[str, Any]:
    """The callbacks that keep a record, by class and place: "GradientRecorder 0", "GradientRecorder 1"."""
    keeping = [callback for callback in run.callbacks if hasattr(callback, "state_dict")]
    return {f"{type(callback).__name__} {i}": callback for i, callback in enumerate(keeping)}


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    """Read a checkpoint written by :class:`Checkpoint` (``state["model"]``: the model's state dict); a damaged file
    raises :class:`CheckpointError`. ``weights_only=True``: a file from elsewhere cannot run code here."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # damaged bytes fail in many ways inside the unpickler (EOFError, IndexError, ...)
        first_line = (str(e).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(_damaged(path, f"it could not be read: {type(e).__name__}: {first_line}")) from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        what = "a bare state dict (load it with model.load_state_dict)" if isinstance(state, dict) else type(state)
        raise CheckpointError(_damaged(path, f"it is not a course checkpoint but {what}"))
    return state


def _damaged(path: Path, reason: str) -> str:
    return (
        f"Checkpoint {path} is damaged or is not a course_utils checkpoint: {reason}. "
        f"Delete it to start this training over (os.remove({str(path)!r})), or pass another checkpoint path."
    )


def recipe(model: nn.Module, optimizer: torch.optim.Optimizer, loaders: tuple, **given: Any) -> dict:
    """What defines a run, flat: ``{"epochs": 30, "lr": 0.1, ..., "train data batch_size": 128}``, from the model,
    the optimizer, ``(train_loader, test_loader or None)`` and other arguments of ``fit`` (``given``)."""
    # lr, weight_decay, momentum...; not how the step is computed (fused on a GPU), so a run resumes on any device
    how = ("params", "fused", "foreach", "capturable", "differentiable")
    hyper = {k: v for k, v in optimizer.param_groups[0].items() if k not in how}
    for key, value in given.items():  # a loss module by its settings, a schedule function by its name
        name = getattr(value, "__qualname__", repr(value)) if callable(value) else value
        given[key] = settings(value) if isinstance(value, nn.Module) else name
    test = loader_recipe(loaders[1]) if loaders[1] is not None else {}
    return {
        **given,
        **{"optimizer": type(optimizer).__name__, **hyper, "model": fingerprint(model)},
        **{f"train data {k}": v for k, v in loader_recipe(loaders[0]).items()},
        **{f"test data {k}": test[k] for k in ("dataset", "images") if k in test},
    }


def loader_recipe(loader: Iterable) -> dict:
    """What decides an epoch's batches: a DeviceLoader's ``recipe``, or what another loader shows of it."""
    if hasattr(loader, "recipe"):
        return dict(loader.recipe)
    found = {"batches": len(loader)}
    dataset = getattr(loader, "dataset", None)
    if dataset is not None:  # a torch DataLoader
        found.update(dataset=getattr(dataset, "name", type(dataset).__name__), images=len(dataset))
        found.update(augment=repr(getattr(dataset, "transform", None)), shuffle=type(loader.sampler).__name__)
    keys = ("batch_size", "drop_last", "seed")
    return {**found, **{k: getattr(loader, k) for k in keys if k in getattr(loader, "__dict__", {})}}


def settings(module: Any) -> str:
    """A module's class and plain settings: ``CrossEntropyLoss(ignore_index=-100, label_smoothing=0.1, ...)``."""
    # From its attributes, not its repr: a plain block and a residual one differ only in a flag.
    plain = (bool, int, float, str, type(None))
    attrs = {k: v for k, v in sorted(vars(module).items()) if k[0] != "_" and k != "training"}
    attrs = {k: v for k, v in attrs.items() if all(isinstance(e, plain) for e in (v if isinstance(v, tuple) else [v]))}
    return f"{type(module).__name__}({', '.join(f'{k}={v!r}' for k, v in attrs.items())})"


def fingerprint(model: nn.Module) -> str:
    """The architecture in a line: name, parameter count, and a hash of each layer's settings and shapes."""
    model = unwrap(model)
    parts = [f"{name}: {settings(m)} {m.extra_repr()}" for name, m in model.named_modules()]
    parts += [f"{name}: {tuple(t.shape)}" for name, t in [*model.named_parameters(), *model.named_buffers()]]
    digest = hashlib.sha1("\n".join(parts).encode()).hexdigest()[:10]
    return f"{type(model).__name__}, {sum(p.numel() for p in model.parameters()):,} parameters, layers {digest}"


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``torch.compile`` wrapper (whose state dict keys start with ``_orig_mod.``)."""
    return getattr(model, "_orig_mod", model)
