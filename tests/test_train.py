"""course_utils.train and course_utils.callbacks: fit, schedules, checkpoints and resume, divergence, History."""

from __future__ import annotations

import errno
import math
import os

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import train
from course_utils._files import atomic_write
from course_utils.callbacks import Callback, epoch_line, recipe
from course_utils.data import DeviceLoader
from course_utils.models import cifar_plain, cifar_resnet
from course_utils.recorders import GradientRecorder
from course_utils.train import Checkpoint, CheckpointError, History, MixedPrecision, Progress, TrainingDiverged, fit


class TinyLoader:
    """A deterministic loader: its shuffle depends only on (seed, epoch), as a DeviceLoader's does."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 16, seed: int = 0) -> None:
        self.x, self.y, self.batch_size, self.seed, self.epoch = x, y, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(self.seed * 1000 + self.epoch))
        for i in range(0, len(order), self.batch_size):
            yield self.x[order[i : i + self.batch_size]], self.y[order[i : i + self.batch_size]]


class StopAt(Callback):
    """Presses stop (KeyboardInterrupt) after batch ``batch`` of epoch ``epoch`` (both from 1), as a learner would."""

    def __init__(self, epoch: int, batch: int = 2) -> None:
        self.epoch, self.batch, self.seen = epoch, batch, 0

    def on_epoch_start(self, run) -> None:
        self.seen = 0

    def on_step_end(self, run) -> None:
        self.seen += 1
        if run.epoch + 1 == self.epoch and self.seen == self.batch:
            raise KeyboardInterrupt


class Unpicklable:
    """Stands for a write that fails part-way: torch.save raises ``error`` when it reaches this object."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __reduce_ex__(self, protocol):
        raise self.error


class FailingSecondSave(Callback):
    """A callback with a record that cannot be written at the second checkpoint (epoch 2)."""

    def __init__(self, error: BaseException) -> None:
        self.error, self.saves = error, 0

    def state_dict(self) -> dict:
        self.saves += 1
        return {"x": Unpicklable(self.error)} if self.saves == 2 else {}

    def load_state_dict(self, state: dict) -> None:
        pass


def make_data(n: int = 128, classes: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose class sets a channel pattern: learnable in a few steps."""
    prototypes = torch.randn(classes, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(n) % classes
    return prototypes[y] + 0.5 * torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed + 1)), y


def tiny_model(seed: int = 0, classes: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.2),  # draws random numbers: a resume must restore the generator to be exact
        nn.Linear(32, classes),
    )


def loaders(batch_size: int = 16):
    return TinyLoader(*make_data(), batch_size), TinyLoader(*make_data(64, seed=1), 32)


def quiet(*callbacks) -> list:
    return [*callbacks, Progress(bar=False, lines=False)]


def device_loader(images=None, **kwargs) -> DeviceLoader:
    """A DeviceLoader over 96 random uint8 images, built directly (make_loaders needs a whole dataset)."""
    images = torch.randint(0, 256, (96, 3, 8, 8), dtype=torch.uint8) if images is None else images
    kwargs = {"train": True, "mean": (0.5,) * 3, "std": (0.25,) * 3, "name": "random", **kwargs}
    return DeviceLoader(images, torch.arange(len(images)) % 4, kwargs.pop("batch_size", 32), **kwargs)


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    a, b = a.state_dict(), b.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# --------------------------------------------------------------------------- fit


def test_fit_learns_and_records_history():
    train_loader, test_loader = loaders()
    history = fit(tiny_model(), train_loader, test_loader, epochs=4, lr=0.05, callbacks=quiet())
    assert history["epoch"] == [1, 2, 3, 4]
    assert history["train_loss"][-1] < history["train_loss"][0] and history.last["test_acc"] > 0.5
    for key in ("train_acc", "test_loss", "lr", "images_per_s", "epoch_time"):
        assert all(isinstance(v, float) and math.isfinite(v) for v in history[key]), key


def test_progress_prints_one_line_per_epoch(capsys):
    train_loader, test_loader = loaders()
    fit(tiny_model(), train_loader, test_loader, epochs=2, callbacks=[Progress(bar=False)])
    out = capsys.readouterr().out
    assert "Training Sequential on cpu (fp32): 2 epochs x 8 batches, SGD lr 0.1, onecycle schedule." in out
    epoch_lines = [line for line in out.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 2 and all("test acc" in line and "img/s" in line for line in epoch_lines)
    assert "to go)" in epoch_lines[0] and "to go" not in epoch_lines[1]  # the estimate, until the last epoch
    fit(tiny_model(), train_loader, epochs=1, callbacks=quiet())
    assert capsys.readouterr().out == ""  # Progress(bar=False, lines=False): silent


def test_epoch_line_keeps_huge_losses_short():
    record = dict(epoch=1, train_loss=2.3456, train_acc=0.5, test_loss=9.9e28, test_acc=0.1, lr=0.1)
    line = epoch_line({**record, "images_per_s": 100.0, "epoch_time": 100.0}, epochs=3)
    assert "loss 2.346" in line and "test loss 9.9e+28" in line and "(~3 min to go)" in line, line


def lr_trajectory(schedule: str, epochs: int = 8, steps: int = 5) -> list[float]:
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    sched = train.make_scheduler(opt, schedule, epochs, steps)
    lrs = []
    for _ in range(epochs * steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_schedules():
    assert lr_trajectory("step")[::5] == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)
    one = lr_trajectory("onecycle")
    assert max(one) == pytest.approx(0.1) and 0 < one.index(max(one)) < len(one) // 2
    assert one[0] == pytest.approx(0.1 / 25) and one[-1] < 0.01
    cos = lr_trajectory("cosine")
    assert cos[0] == pytest.approx(0.1) and cos == sorted(cos, reverse=True) and cos[-1] < 0.001
    assert lr_trajectory("constant") == pytest.approx([0.1] * 40)
    assert lr_trajectory("onecycle", epochs=1, steps=3) == pytest.approx([0.1] * 3)  # too short for a cycle


def test_history_lr_follows_the_schedule_and_a_schedule_function_is_used():
    train_loader, _ = loaders()
    history = fit(tiny_model(), train_loader, epochs=4, schedule="step", callbacks=quiet())
    assert history["lr"] == pytest.approx([0.1, 0.1, 0.01, 0.001])
    calls = []

    def halving(optimizer, total_steps):
        calls.append(total_steps)
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=len(train_loader), gamma=0.5)

    history = fit(tiny_model(), train_loader, epochs=3, lr=0.08, schedule=halving, callbacks=quiet())
    # Called twice: once on a stand-in optimizer, to read its lr at every step for the recipe, then for real.
    assert calls == [3 * len(train_loader)] * 2 and history["lr"] == pytest.approx([0.08, 0.04, 0.02])


def test_loss_fn_is_the_training_loss():
    class CountingLoss(nn.CrossEntropyLoss):
        calls = 0

        def forward(self, logits, y):
            self.calls += 1
            return super().forward(logits, y) + 100.0  # an offset fit's record must show

    train_loader, _ = loaders()
    loss_fn = CountingLoss(label_smoothing=0.1)
    history = fit(tiny_model(), train_loader, epochs=1, loss_fn=loss_fn, callbacks=quiet())
    assert loss_fn.calls == len(train_loader) and 100 < history.last["train_loss"] < 103


def test_adamw_and_a_ready_optimizer():
    train_loader, _ = loaders()
    history = fit(tiny_model(), train_loader, epochs=2, optimizer="adamw", lr=1e-2, callbacks=quiet())
    assert history["train_loss"][1] < history["train_loss"][0]
    model = tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    assert fit(model, train_loader, epochs=1, optimizer=opt, schedule="constant", callbacks=quiet()).last["lr"] == 0.02


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": float("nan")}, "lr must be a positive finite number"),
        ({"lr": float("inf")}, "lr must be a positive finite number"),
        ({"lr": 0.0}, "lr must be a positive finite number"),
        ({"lr": -0.1}, r"lr must be a positive finite number \(e.g. 0.1"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"epochs": 2.5}, "epochs must be a positive integer"),
        ({"weight_decay": -1e-4}, "weight_decay must be 0 or a small positive number"),
        ({"weight_decay": float("nan")}, "weight_decay must be 0 or a small positive number"),
        ({"optimizer": "adam"}, "optimizer must be one of"),
        ({"schedule": "linear"}, "schedule must be one of"),
    ],
)
def test_bad_hyperparameters_are_refused_before_training(kwargs, match):
    train_loader, _ = loaders()
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=match):
        fit(model, train_loader, **{"epochs": 1, **kwargs}, callbacks=quiet())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing was trained


def test_empty_loader_is_a_clear_error():
    x, y = make_data()
    for empty in (TinyLoader(x[:0], y[:0]), []):
        with pytest.raises(ValueError, match="empty"):
            fit(tiny_model(), empty, epochs=1, callbacks=quiet())


# --------------------------------------------------------------------------- divergence


def random_batches(n: int = 8) -> list:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, 4, (16,), generator=g)) for _ in range(n)]


@pytest.mark.parametrize("lr", [5e3, 50.0])
def test_divergence_stops_before_a_broken_epoch_is_saved(tmp_path, lr):
    # Before: at lr=5e3 the checkpoint of epoch 2 held running_var=inf and was called "the last good epoch";
    # at lr=50 four epochs trained on at a loss of 1e32 (finite) with running_var=inf, and no stop at all.
    path = tmp_path / "run.pt"
    with pytest.raises(TrainingDiverged, match="lower learning rate") as info:
        fit(tiny_model(), random_batches(), epochs=4, lr=lr, schedule="constant", callbacks=quiet(Checkpoint(path)))
    message = str(info.value)
    if path.exists():
        saved = train.load_checkpoint(path)
        assert f"holds the model after epoch {saved['epoch']}." in message and f"epoch {saved['epoch'] + 1}" in message
        assert all(torch.isfinite(t).all() for t in saved["model"].values() if t.is_floating_point())
    else:
        assert f"No epoch of this run is saved in {path}" in message


def test_divergence_message_names_the_epoch_the_checkpoint_holds(tmp_path):
    steps = len(random_batches())

    def explode_after_epoch_1(optimizer, total_steps):  # lr x 1e6 from the second epoch on
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 if step < steps else 1e6)

    path = tmp_path / "run.pt"
    with pytest.raises(TrainingDiverged) as info:
        fit(tiny_model(), random_batches(), epochs=3, schedule=explode_after_epoch_1, callbacks=quiet(Checkpoint(path)))
    assert "diverged in epoch 2" in str(info.value)
    assert f"The checkpoint {path} is intact: it holds the model after epoch 1." in str(info.value)
    assert train.load_checkpoint(path)["epoch"] == 1


def test_a_nan_model_stops_in_its_first_epoch():
    class NaNNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * 8 * 8, 4)

        def forward(self, x):
            return self.fc(x.flatten(1)) * float("nan")

    with pytest.raises(TrainingDiverged, match="epoch 1: the training loss is nan"):
        fit(NaNNet(), loaders()[0], epochs=1, callbacks=quiet())


# --------------------------------------------------------------------------- checkpoints and resume


def test_resume_after_interrupt_is_bit_exact(tmp_path, capsys):
    x, y = make_data()
    straight = tiny_model(seed=0)
    h_straight = fit(straight, TinyLoader(x, y), epochs=3, lr=0.05, callbacks=quiet())

    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(seed=0), TinyLoader(x, y), epochs=3, lr=0.05, callbacks=quiet(Checkpoint(path), StopAt(3)))
    out = capsys.readouterr().out
    assert f"Interrupted in epoch 3 of 3. The checkpoint {path} is intact: it holds the model after epoch 2." in out
    assert "Run the same fit(...) again to continue" in out and train.load_checkpoint(path)["epoch"] == 2

    resumed = tiny_model(seed=123)  # other weights: everything must come from the checkpoint
    h_resumed = fit(resumed, TinyLoader(x, y), epochs=3, lr=0.05, callbacks=quiet(Checkpoint(path)))
    assert h_resumed["epoch"] == [1, 2, 3] and h_resumed["train_loss"] == h_straight["train_loss"]
    assert_same_weights(straight, resumed)


class SavedEpochs(Callback):
    """Notes, at the start of each epoch, which epoch the checkpoint file holds (0: no file)."""

    def __init__(self, path) -> None:
        self.path, self.seen = path, []

    def on_epoch_start(self, run) -> None:
        self.seen.append(train.load_checkpoint(self.path)["epoch"] if self.path.exists() else 0)


@pytest.mark.parametrize("minutes, on_disk", [(0, [0, 1, 2, 3]), (60, [0, 0, 0, 0])])
def test_checkpoint_saves_on_its_timer_at_the_end_and_when_stopped(tmp_path, minutes, on_disk):
    path = tmp_path / "run.pt"
    saved = SavedEpochs(path)
    fit(tiny_model(), loaders()[0], epochs=4, callbacks=quiet(Checkpoint(path, minutes=minutes), saved))
    assert saved.seen == on_disk and train.load_checkpoint(path)["epoch"] == 4  # the last epoch is always saved
    path.unlink()
    with pytest.raises(KeyboardInterrupt):  # stopped in epoch 3: epoch 2, kept in memory, is saved then
        fit(tiny_model(), loaders()[0], epochs=4, callbacks=quiet(Checkpoint(path, minutes=60), StopAt(3)))
    assert train.load_checkpoint(path)["epoch"] == 2
    path.unlink()
    with pytest.raises(KeyboardInterrupt):  # stopped while epoch 2 is copied to memory: epoch 1 is saved
        fit(
            tiny_model(),
            loaders()[0],
            epochs=4,
            callbacks=quiet(Checkpoint(path, minutes=60), FailingSecondSave(KeyboardInterrupt())),
        )
    assert train.load_checkpoint(path)["epoch"] == 1
    with pytest.raises(ValueError, match="minutes must be 0 .save every epoch. or more; got -1"):
        Checkpoint(path, minutes=-1)


def test_interrupt_without_checkpoint_says_how_to_keep_one(capsys):
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), loaders()[0], epochs=2, callbacks=quiet(StopAt(1)))
    assert "Interrupted in epoch 1 of 2. No checkpoint is kept: pass callbacks=[cu.train.Checkpoint(path)]" in (
        capsys.readouterr().out
    )


def test_resume_with_device_loader_is_bit_exact(tmp_path):
    # The course's own loader: its shuffle and crop/flip augmentation must replay exactly after a resume.
    images = torch.randint(0, 256, (96, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    straight = tiny_model(seed=0)
    fit(straight, device_loader(images), epochs=2, lr=0.05, callbacks=quiet())
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(0), device_loader(images), epochs=2, lr=0.05, callbacks=quiet(Checkpoint(path), StopAt(2)))
    resumed = tiny_model(seed=5)
    fit(resumed, device_loader(images), epochs=2, lr=0.05, callbacks=quiet(Checkpoint(path)))
    assert_same_weights(straight, resumed)


def make_recorders(model: nn.Module, every: int = 1) -> list:
    return [GradientRecorder(model, every=every), GradientRecorder(model, layer_types=(nn.Linear,), every=3)]


def test_resumed_run_keeps_its_recorders_record(tmp_path):
    x, y = make_data()
    straight = tiny_model(seed=0)
    expected = make_recorders(straight)
    fit(straight, TinyLoader(x, y), epochs=3, lr=0.05, callbacks=quiet(*expected))

    path = tmp_path / "run.pt"
    interrupted = tiny_model(seed=0)
    with pytest.raises(KeyboardInterrupt):
        callbacks = quiet(Checkpoint(path), StopAt(3), *make_recorders(interrupted))
        fit(interrupted, TinyLoader(x, y), epochs=3, lr=0.05, callbacks=callbacks)
    resumed = tiny_model(seed=123)
    resumed_recorders = make_recorders(resumed)  # fresh and empty, as after rerunning a notebook cell
    fit(resumed, TinyLoader(x, y), epochs=3, lr=0.05, callbacks=quiet(Checkpoint(path), *resumed_recorders))
    finished = tiny_model(seed=7)  # a finished checkpoint trains nothing, but hands its record over too
    finished_recorders = make_recorders(finished)
    fit(finished, TinyLoader(x, y), epochs=3, lr=0.05, callbacks=quiet(Checkpoint(path), *finished_recorders))

    steps = 3 * len(TinyLoader(x, y))
    for grads, linear in (resumed_recorders, finished_recorders):
        assert grads.norms == expected[0].norms and all(len(v) == steps for v in grads.norms.values())
        assert linear.norms == expected[1].norms and len(linear.norms["6"]) == len(range(0, steps, 3))
    other = tiny_model()
    with pytest.raises(ValueError, match="every=2; the saved record has 1.*resume=False"):
        fit(other, TinyLoader(x, y), epochs=3, lr=0.05, callbacks=quiet(Checkpoint(path), *make_recorders(other, 2)))


def test_finished_checkpoint_returns_its_history_and_resume_false_starts_over(tmp_path, capsys):
    train_loader, _ = loaders()
    path = tmp_path / "done.pt"
    h1 = fit(tiny_model(), train_loader, epochs=2, callbacks=quiet(Checkpoint(path)))
    h2 = fit(tiny_model(), train_loader, epochs=2, callbacks=[Checkpoint(path), Progress(bar=False)])
    assert h2.records == h1.records and "nothing left to train" in capsys.readouterr().out
    h3 = fit(tiny_model(), train_loader, epochs=1, callbacks=quiet(Checkpoint(path, resume=False)))
    assert len(h3) == 1 and train.load_checkpoint(path)["epoch"] == 1


def cifar_batches() -> list:
    return [(torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,)))]


def tensor_loader(n: int = 64, name: str = "cifar10", batch_size: int = 16) -> DataLoader:
    dataset = TensorDataset(*make_data(n))
    dataset.name = name
    return DataLoader(dataset, batch_size=batch_size, shuffle=True)


RECIPE_CHANGES = {
    "lr": dict(lr=0.05),
    "epochs": dict(epochs=3),
    "schedule": dict(schedule="cosine"),
    "seed": dict(seed=1),
    "weight_decay": dict(weight_decay=0.0),
    "loss": dict(loss_fn=nn.CrossEntropyLoss(label_smoothing=0.1)),
    "optimizer": dict(optimizer="adamw"),
    "model": dict(model=lambda: nn.Sequential(*tiny_model(), nn.Identity())),  # same parameters, other layers
    "train data batch_size": dict(train_loader=lambda: device_loader(batch_size=30)),  # same number of batches
    "train data seed": dict(train_loader=lambda: device_loader(seed=1)),
    "train data augment": dict(train_loader=lambda: device_loader(augment=False)),
    "train data dataset": dict(train_loader=lambda: device_loader(name="other")),
    "test data images": dict(test_loader=lambda: tensor_loader(32)),
}


@pytest.mark.parametrize("changed", RECIPE_CHANGES)
def test_a_checkpoint_of_another_recipe_is_refused_naming_the_difference(tmp_path, changed):
    def run(**change):
        given = {"model": tiny_model, "train_loader": device_loader, "test_loader": tensor_loader}
        given = {k: change.pop(k, v)() for k, v in given.items()}
        kwargs = {"epochs": 2, "callbacks": quiet(Checkpoint(tmp_path / "run.pt"), StopAt(2)), **change}
        return fit(given.pop("model"), given.pop("train_loader"), given.pop("test_loader"), **kwargs)

    with pytest.raises(KeyboardInterrupt):
        run()  # epoch 1 saved
    with pytest.raises(ValueError, match=f"holds another run: {changed}: .* there, .* here. To start over") as info:
        run(**RECIPE_CHANGES[changed])
    if changed != "optimizer":  # AdamW has other settings than SGD: those are named too
        assert str(info.value).count(" there, ") == 1  # and nothing else


def test_an_edited_schedule_function_is_another_recipe(tmp_path):
    def run(factor: float) -> History:
        def warm(optimizer, total):  # the same name both times; only what it does differs
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor if step < total // 2 else 1.0)

        return fit(tiny_model(), loaders()[0], epochs=2, schedule=warm, callbacks=quiet(Checkpoint(path), StopAt(2)))

    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        run(0.5)  # epoch 1 saved
    with pytest.raises(ValueError, match=r"holds another run: schedule: '.*warm, lr per step \w+' there, '.*warm, lr"):
        run(0.1)
    with pytest.raises(KeyboardInterrupt):
        run(0.5)  # the same function again: resumes, and stops after epoch 2 as before


def test_a_checkpoint_in_another_precision_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), loaders()[0], epochs=2, callbacks=quiet(Checkpoint(path), MixedPrecision("bf16"), StopAt(2)))
    with pytest.raises(ValueError, match="holds another run: mixed_precision: 'bf16' there, None here"):
        fit(tiny_model(), loaders()[0], epochs=2, callbacks=quiet(Checkpoint(path)))


def test_plain_and_residual_twins_are_different_runs(tmp_path):
    # The same parameters and state-dict keys: only the blocks' shortcut differs.
    assert cifar_plain(8).state_dict().keys() == cifar_resnet(8).state_dict().keys()
    path = tmp_path / "run.pt"
    fit(cifar_plain(8), cifar_batches(), epochs=1, lr=0.01, callbacks=quiet(Checkpoint(path)))
    with pytest.raises(ValueError, match="holds another run: model: 'ResNet, 75,290 parameters, layers"):
        fit(cifar_resnet(8), cifar_batches(), epochs=1, lr=0.01, callbacks=quiet(Checkpoint(path)))


def test_damaged_checkpoint_is_named_with_a_fix(tmp_path):
    path = tmp_path / "c.pt"
    fit(tiny_model(), loaders()[0], epochs=1, callbacks=quiet(Checkpoint(path)))
    data = path.read_bytes()
    damages = {
        "truncated": lambda: path.write_bytes(data[: len(data) // 2]),
        "random": lambda: path.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes()),
        "text": lambda: path.write_text("this is not a checkpoint\n"),
        "bare state dict": lambda: torch.save(tiny_model().state_dict(), path),
        "code": lambda: torch.save({"format": "course_utils.checkpoint", "x": Unpicklable}, path),  # weights_only
    }
    for damage, write in damages.items():
        write()
        with pytest.raises(CheckpointError) as info:
            fit(tiny_model(), loaders()[0], epochs=1, callbacks=quiet(Checkpoint(path)))
        message = str(info.value)
        assert f"Checkpoint {path} is damaged or is not a course_utils checkpoint" in message, damage
        assert f"Delete it to start this training over (os.remove('{path}'))" in message, damage


def test_an_interrupted_checkpoint_write_leaves_the_last_one_and_says_so(tmp_path, capsys):
    # Before: the file held epoch 1, and the message said "holds the model after epoch 2".
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(
            tiny_model(),
            loaders()[0],
            epochs=3,
            callbacks=quiet(Checkpoint(path, minutes=0), FailingSecondSave(KeyboardInterrupt())),
        )
    assert os.listdir(tmp_path) == ["run.pt"] and train.load_checkpoint(path)["epoch"] == 1
    assert f"{path} is intact: it holds the model after epoch 1." in capsys.readouterr().out


def test_a_full_disk_says_so_and_which_file_is_intact(tmp_path):
    def full_disk(f):
        f.write(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    path = tmp_path / "h.json"
    with pytest.raises(OSError, match=f"The disk is full: {path} was not written. Nothing was written to {path}."):
        atomic_write(path, full_disk)
    path.write_text("old")
    with pytest.raises(OSError, match=f"{path} is intact, as it was. Free some space and try again.") as info:
        atomic_write(path, full_disk)
    assert info.value.errno == errno.ENOSPC and os.listdir(tmp_path) == ["h.json"] and path.read_text() == "old"

    # The same in fit (before: "[Errno 28] No space left on device", and no word of what was kept).
    path = tmp_path / "run.pt"
    with pytest.raises(OSError) as info:
        full = FailingSecondSave(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        fit(tiny_model(), loaders()[0], epochs=3, callbacks=quiet(Checkpoint(path, minutes=0), full))
    last_line = str(info.value).splitlines()[-1]
    assert (
        f"The disk is full: {path} was not written. The checkpoint {path} is intact: it holds the model after "
        in (last_line)
        and "epoch 1." in last_line
    )
    assert sorted(os.listdir(tmp_path)) == ["h.json", "run.pt"] and train.load_checkpoint(path)["epoch"] == 1


# --------------------------------------------------------------------------- devices and precision


class StopAtStart(Callback):
    """Reads where fit put the model, then stops: the model's weights on "meta" could not train anyway."""

    def on_fit_start(self, run) -> None:
        self.device, self.model_device = run.device, next(run.model.parameters()).device
        raise KeyboardInterrupt


def test_fit_trains_where_the_batches_are_unless_told():
    # No GPU here: a loader that reports its batches on "meta" stands for a DeviceLoader on the GPU.
    class OnMeta(TinyLoader):
        device = torch.device("meta")

    def placed(model, loader, **kwargs) -> tuple[torch.device, torch.device]:
        stop = StopAtStart()
        with pytest.raises(KeyboardInterrupt):
            fit(model, loader, epochs=1, callbacks=quiet(stop), **kwargs)
        return stop.device.type, stop.model_device.type

    x, y = make_data()
    assert placed(tiny_model(), OnMeta(x, y)) == ("meta", "meta")  # the CPU model moved to the batches
    assert placed(tiny_model().to("meta"), TinyLoader(x, y)) == ("meta", "meta")
    assert placed(tiny_model(), TinyLoader(x, y)) == ("cpu", "cpu")
    assert placed(tiny_model(), OnMeta(x, y), device="cpu") == ("cpu", "cpu")


def test_bf16_mixed_precision_trains_on_the_cpu(capsys):
    model = tiny_model()
    before = [p.detach().clone() for p in model.parameters()]
    history = fit(model, loaders()[0], epochs=2, lr=0.05, callbacks=[MixedPrecision("bf16"), Progress(bar=False)])
    assert "(bf16 autocast)" in capsys.readouterr().out
    assert all(math.isfinite(v) for v in history["train_loss"]) and history["train_loss"][1] < history["train_loss"][0]
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert MixedPrecision("auto").choose(torch.device("cpu")) == (None, False)  # "auto" is fp32 on the CPU
    with pytest.raises(ValueError, match='"auto", "bf16" or "fp16"; got \'fp8\''):
        MixedPrecision("fp8")


def test_fp16_with_grad_scaler_trains_and_resumes_on_the_cpu(tmp_path):
    # torch.amp.GradScaler("cpu") and CPU fp16 autocast exist in the torch this course needs (>= 2.4).
    x, y = make_data()
    straight = tiny_model()
    history = fit(straight, TinyLoader(x, y), epochs=2, lr=0.05, callbacks=quiet(MixedPrecision("fp16")))
    assert all(math.isfinite(v) for v in history["train_loss"]) and history["train_loss"][1] < history["train_loss"][0]
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(
            tiny_model(),
            TinyLoader(x, y),
            epochs=2,
            lr=0.05,
            callbacks=quiet(MixedPrecision("fp16"), Checkpoint(path), StopAt(2)),
        )
    assert train.load_checkpoint(path)["scaler"]["scale"] > 1  # the GradScaler's state is saved
    resumed = tiny_model(seed=3)
    fit(resumed, TinyLoader(x, y), epochs=2, lr=0.05, callbacks=quiet(MixedPrecision("fp16"), Checkpoint(path)))
    assert_same_weights(straight, resumed)


@pytest.mark.slow
def test_a_compiled_model_trains_and_checkpoints_without_its_wrapper(tmp_path, capsys):
    # A real torch.compile (inductor's CPU backend, with a C++ compiler): tens of seconds until its kernels are cached.
    model = tiny_model()
    path = tmp_path / "compiled.pt"
    callbacks = [Checkpoint(path), Progress(bar=False)]
    history = fit(torch.compile(model), loaders()[0], epochs=2, lr=0.05, callbacks=callbacks)
    assert "(fp32, torch.compile)" in capsys.readouterr().out
    assert history["train_loss"][1] < history["train_loss"][0]
    state = train.load_checkpoint(path)["model"]
    assert not any(key.startswith("_orig_mod.") for key in state)
    plain = tiny_model(seed=1)
    plain.load_state_dict(state)  # the checkpoint of a compiled model loads into a plain one
    assert_same_weights(plain, model)


# --------------------------------------------------------------------------- history, evaluate, predict


def test_history_columns_best_and_repr():
    h = History([{"epoch": 1, "test_acc": 0.5, "test_loss": 1.2, "note": "warm-up"}])
    h.append({"epoch": 2, "test_acc": 0.7, "test_loss": 0.9})
    h.append({"epoch": 3, "test_acc": 0.6, "test_loss": float("nan")})
    loaded = History(h)
    assert list(loaded)[:2] == h.records[:2] and len(loaded) == 3
    assert loaded["test_acc"] == [0.5, 0.7, 0.6] and loaded["note"] == ["warm-up", None, None]
    assert loaded.best()["epoch"] == 2 and loaded.best("test_loss")["epoch"] == 2 and loaded.last["epoch"] == 3
    assert repr(loaded) == "History(3 epochs, last: test_acc=0.6)"
    with pytest.raises(KeyError, match="No 'nope' in this history; it has"):
        loaded["nope"]


def test_evaluate_predict_and_most_confident_mistakes():
    _, test_loader = loaders()
    model = tiny_model().train()
    result = train.evaluate(model, test_loader)
    assert result["n"] == 64 and 0 <= result["acc"] <= 1 and model.training  # its mode is given back
    logits, labels = train.predict(model, test_loader)
    assert logits.shape == (64, 4) and labels.shape == (64,)
    assert (logits.argmax(1) == labels).float().mean().item() == pytest.approx(result["acc"])
    logits = torch.tensor([[5.0, 0.0], [0.0, 1.0], [0.0, 9.0], [2.0, 0.0]])
    labels = torch.tensor([1, 1, 0, 0])
    assert train.most_confident_mistakes(logits, labels, k=5).tolist() == [2, 0]
    assert train.most_confident_mistakes(logits, labels, k=1).tolist() == [2]


def test_a_fused_optimizer_is_the_same_recipe():
    # fit fuses the optimizer's step on a GPU: a checkpoint written there must resume on a CPU, and back.
    model, loader = tiny_model(), loaders()[0]
    sgd = dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    fused = torch.optim.SGD(model.parameters(), fused=True, **sgd)
    plain = torch.optim.SGD(model.parameters(), **sgd)
    assert recipe(model, fused, (loader, None)) == recipe(model, plain, (loader, None))
