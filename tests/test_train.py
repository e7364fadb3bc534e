"""course_utils.train: fit, schedules, checkpoints and resume, divergence, History."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import train
from course_utils.models import cifar_plain
from course_utils.recorders import ActivationRecorder, GradientRecorder
from course_utils.train import CheckpointError, History, TrainingDiverged, fit


class TinyLoader:
    """A deterministic loader: shuffle order depends only on (seed, epoch), like DeviceLoader."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 16, seed: int = 0) -> None:
        self.x, self.y, self.batch_size, self.seed, self.epoch = x, y, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        order = torch.randperm(len(self.x), generator=g)
        for i in range(0, len(order), self.batch_size):
            idx = order[i : i + self.batch_size]
            yield self.x[idx], self.y[idx]


class InterruptingLoader(TinyLoader):
    """Raises KeyboardInterrupt in the middle of epoch ``at_epoch`` (0-based), as a user pressing stop."""

    def __init__(self, *args, at_epoch: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.at_epoch = at_epoch

    def __iter__(self):
        for i, batch in enumerate(super().__iter__()):
            if self.epoch == self.at_epoch and i == 1:
                raise KeyboardInterrupt
            yield batch


def make_data(n: int = 128, classes: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose class sets the mean of one channel pattern: learnable in a few steps."""
    prototypes = torch.randn(classes, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(n) % classes
    x = prototypes[y] + 0.5 * torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed + 1))
    return x, y


def tiny_model(seed: int = 0, classes: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.2),  # uses the RNG: resume must restore it to be exact
        nn.Linear(32, classes),
    )


def loaders(batch_size: int = 16):
    x, y = make_data()
    xt, yt = make_data(64, seed=1)
    return TinyLoader(x, y, batch_size), TinyLoader(xt, yt, 32)


QUIET = {"progress": False, "verbose": False}


# --------------------------------------------------------------------------- fit


def test_fit_learns_and_records_history():
    train_loader, test_loader = loaders()
    history = fit(tiny_model(), train_loader, test_loader, epochs=4, lr=0.05, **QUIET)
    assert len(history) == 4
    assert history["epoch"] == [1, 2, 3, 4]
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history.last["test_acc"] > 0.5
    for key in ("train_acc", "test_loss", "lr", "images_per_s", "epoch_time"):
        assert all(isinstance(v, float) and math.isfinite(v) for v in history[key]), key


def test_fit_prints_one_line_per_epoch(capsys):
    train_loader, test_loader = loaders()
    fit(tiny_model(), train_loader, test_loader, epochs=2, progress=False)
    out = capsys.readouterr().out
    assert out.count("test acc") == 2 and "img/s" in out and "fp32" in out
    epoch_lines = [line for line in out.splitlines() if line.startswith("epoch")]
    assert "to go)" in epoch_lines[0] and "to go" not in epoch_lines[1]  # the estimate, until the last epoch


def test_duration_reads_in_sensible_units():
    assert [train._duration(s) for s in (4.2, 89, 600, 5399, 7200)] == ["4 s", "89 s", "10 min", "90 min", "2.0 h"]


def lr_trajectory(schedule: str, epochs: int = 8, steps: int = 5, **kwargs) -> list[float]:
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    sched = train.make_scheduler(opt, schedule, epochs, steps, **kwargs)
    lrs = []
    for _ in range(epochs * steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_step_schedule_divides_by_ten_at_milestones():
    lrs = lr_trajectory("step", epochs=8, steps=5)
    per_epoch = lrs[::5]
    assert per_epoch == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)
    assert lrs == pytest.approx(sorted(lrs, reverse=True))  # constant within an epoch, never up
    custom = lrs = lr_trajectory("step", epochs=8, steps=5, milestones=[2])[::5]
    assert custom == pytest.approx([0.1] * 2 + [0.01] * 6)


def test_onecycle_cosine_constant_trajectories():
    one = lr_trajectory("onecycle")
    peak = one.index(max(one))
    assert max(one) == pytest.approx(0.1) and 0 < peak < len(one) // 2
    assert one[0] == pytest.approx(0.1 / 25) and one[-1] < 0.01
    cos = lr_trajectory("cosine")
    assert cos[0] == pytest.approx(0.1) and cos == sorted(cos, reverse=True) and cos[-1] < 0.001
    warm = lr_trajectory("cosine", warmup_epochs=2)
    assert warm[:10] == sorted(warm[:10]) and max(warm) == pytest.approx(0.1) and warm[0] < 0.02
    assert lr_trajectory("constant") == pytest.approx([0.1] * 40)


def test_history_lr_follows_step_schedule():
    train_loader, _ = loaders()
    history = fit(tiny_model(), train_loader, epochs=4, schedule="step", lr=0.1, **QUIET)
    assert history["lr"] == pytest.approx([0.1, 0.1, 0.01, 0.001])


def test_label_smoothing_reaches_the_loss():
    # lr=0: the weights never change, so the recorded loss can be recomputed by hand.
    train_loader, _ = loaders()
    model = tiny_model().eval()  # no dropout, BN with running stats: the forward is a fixed function
    model.train = lambda mode=True: model  # keep eval mode inside fit
    history = fit(
        model, train_loader, epochs=1, lr=0.0, weight_decay=0, schedule="constant", label_smoothing=0.3, **QUIET
    )
    with torch.no_grad():
        expected = F.cross_entropy(model(train_loader.x), train_loader.y, label_smoothing=0.3).item()
        plain = F.cross_entropy(model(train_loader.x), train_loader.y).item()
    assert history.last["train_loss"] == pytest.approx(expected, rel=1e-5)
    assert abs(expected - plain) > 1e-3


def test_adamw_and_given_optimizer():
    train_loader, _ = loaders()
    h = fit(tiny_model(), train_loader, epochs=2, optimizer="adamw", lr=1e-2, **QUIET)
    assert h["train_loss"][1] < h["train_loss"][0]
    model = tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    h = fit(model, train_loader, epochs=1, optimizer=opt, schedule="constant", **QUIET)
    assert h.last["lr"] == pytest.approx(0.02)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"epochs": 1, "optimizer": "adam"}, "optimizer must be one of"),
        ({"epochs": 1, "schedule": "linear"}, "schedule must be one of"),
        ({"epochs": 1, "amp": "fp8"}, "amp must be one of"),
        ({"epochs": 2, "warmup_epochs": 5}, "warmup_epochs"),
    ],
)
def test_bad_arguments_say_what_was_expected(kwargs, match):
    train_loader, _ = loaders()
    with pytest.raises(ValueError, match=match):
        fit(tiny_model(), train_loader, **kwargs, **QUIET)


def test_empty_loader_is_a_clear_error():
    x, y = make_data()
    with pytest.raises(ValueError, match="empty"):
        fit(tiny_model(), TinyLoader(x[:0], y[:0]), epochs=1, **QUIET)
    with pytest.raises(ValueError, match="empty"):
        fit(tiny_model(), [], epochs=1, **QUIET)


def test_max_batches_cuts_epochs():
    train_loader, test_loader = loaders(batch_size=8)  # 16 batches
    h = fit(tiny_model(), train_loader, test_loader, epochs=1, max_batches=3, **QUIET)
    assert h.last["images_per_s"] > 0
    assert train.evaluate(tiny_model(), test_loader, max_batches=1)["n"] == 32


def test_diverging_training_stops_with_advice():
    train_loader, _ = loaders()
    with pytest.raises(TrainingDiverged, match="learning rate") as info:
        fit(tiny_model(), train_loader, epochs=3, lr=1e12, schedule="constant", **QUIET)
    assert "epoch 1" in str(info.value) and "amp=False" in str(info.value)


def test_nan_model_stops(tmp_path):
    class NaNNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * 8 * 8, 4)

        def forward(self, x):
            return self.fc(x.flatten(1)) * float("nan")

    train_loader, _ = loaders()
    with pytest.raises(TrainingDiverged, match="learning rate"):
        fit(NaNNet(), train_loader, epochs=1, **QUIET)


def test_compile_failure_falls_back_with_warning(monkeypatch, capsys):
    def broken_compile(model, **kwargs):
        def forward(x):
            raise RuntimeError("no C++ compiler found")

        return forward

    monkeypatch.setattr(torch, "compile", broken_compile)
    train_loader, _ = loaders()
    h = fit(tiny_model(), train_loader, epochs=1, compile=True, progress=False)
    assert len(h) == 1
    assert "torch.compile failed" in capsys.readouterr().out


@pytest.mark.slow
def test_speed_switches_together_on_cpu(tmp_path, capsys):
    # Notebook 06's recipe with every switch on: bf16 autocast, channels_last and a real torch.compile
    # (inductor's CPU backend, gcc). CUDA itself cannot be tested here; everything around it is.
    train_loader, test_loader = loaders()
    checkpoint = tmp_path / "compiled.pt"
    model = tiny_model()
    history = fit(
        model,
        train_loader,
        test_loader,
        epochs=3,
        lr=0.05,
        amp="bf16",
        channels_last=True,
        compile=True,
        checkpoint=checkpoint,
        progress=False,
    )
    out = capsys.readouterr().out
    assert "bf16 autocast, channels_last, torch.compile" in out
    assert "torch.compile failed" not in out  # it really ran compiled
    assert history["train_loss"][-1] < history["train_loss"][0] and history.last["test_acc"] > 0.5

    # The checkpoint of a compiled model loads into a plain one: no "_orig_mod." prefix in its keys.
    state = train.load_checkpoint(checkpoint)["model"]
    assert not any(key.startswith("_orig_mod.") for key in state)
    plain = tiny_model(seed=1)
    plain.load_state_dict(state)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(plain.state_dict()[key], value, msg=key)


# --------------------------------------------------------------------------- checkpoints


def test_resume_after_interrupt_is_bit_exact(tmp_path, capsys):
    x, y = make_data()
    kwargs = dict(epochs=3, lr=0.05, **QUIET)

    straight = tiny_model(seed=0)
    h_straight = fit(straight, TinyLoader(x, y), **kwargs)

    ckpt = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(seed=0), InterruptingLoader(x, y, at_epoch=2), checkpoint=ckpt, **kwargs)
    out = capsys.readouterr().out
    assert str(ckpt) in out and "epoch 2" in out and "resume" in out
    assert train.load_checkpoint(ckpt)["epoch"] == 2

    resumed = tiny_model(seed=123)  # a fresh object with other weights: all must come from the checkpoint
    h_resumed = fit(resumed, TinyLoader(x, y), checkpoint=ckpt, **kwargs)

    assert h_resumed["epoch"] == [1, 2, 3]
    assert h_resumed["train_loss"] == h_straight["train_loss"]
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_of_a_run_on_another_device(tmp_path, monkeypatch):
    """On a GPU, reading the checkpoint with map_location=cuda put the RNG states on the GPU, and
    torch.set_rng_state refused them ("RNG state must be a torch.ByteTensor"). No GPU here: the resume is
    told its run is on the meta device, which tensors read there would show just as well."""
    x, y = make_data()
    ckpt = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(seed=0), InterruptingLoader(x, y, at_epoch=1), epochs=2, lr=0.05, checkpoint=ckpt, **QUIET)

    real_resume = train._resume

    def resume_as_if_elsewhere(run):
        device, run.device = run.device, torch.device("meta")
        try:
            return real_resume(run)
        finally:
            run.device = device

    monkeypatch.setattr(train, "_resume", resume_as_if_elsewhere)
    history = fit(tiny_model(seed=1), TinyLoader(x, y), epochs=2, lr=0.05, checkpoint=ckpt, **QUIET)
    assert history["epoch"] == [1, 2]  # epoch 1 from the checkpoint, epoch 2 trained


class _DeviceTagged(TinyLoader):
    """A loader that says where its batches are, as a DeviceLoader does."""

    def __init__(self, x, y, device):
        super().__init__(x, y)
        self.device = torch.device(device)


class _PreparedOn(Exception):
    pass


def test_fit_trains_where_the_batches_are_unless_told(monkeypatch):
    """A CPU-built model with a DeviceLoader on the GPU trained on the CPU (every batch copied back, fp32),
    silently: notebooks 03, 06 and 07 built their models on the CPU and passed no device. No GPU here: the
    loader says "meta", and fit's set-up is stopped to read the device it was handed."""

    def prepare(**kw):
        raise _PreparedOn(kw["device"])

    monkeypatch.setattr(train, "_prepare", prepare)
    x, y = make_data()

    def device_chosen(model, loader, **kw):
        with pytest.raises(_PreparedOn) as caught:
            fit(model, loader, epochs=1, **kw, **QUIET)
        return caught.value.args[0]

    assert device_chosen(tiny_model(), _DeviceTagged(x, y, "meta")) == torch.device("meta")
    assert device_chosen(tiny_model().to("meta"), TinyLoader(x, y)) == torch.device("meta")
    assert device_chosen(tiny_model().to("meta"), _DeviceTagged(x, y, "cpu")) == torch.device("meta")
    assert device_chosen(tiny_model(), TinyLoader(x, y)) == torch.device("cpu")
    assert device_chosen(tiny_model(), _DeviceTagged(x, y, "meta"), device="cpu") == torch.device("cpu")


def test_fit_says_when_it_trains_on_the_cpu_beside_a_gpu(monkeypatch, capsys):
    x, y = make_data()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU that nothing was put on
    fit(tiny_model(), TinyLoader(x, y), epochs=1, max_batches=1, progress=False)
    assert "a GPU is available" in capsys.readouterr().out
    fit(tiny_model(), TinyLoader(x, y), epochs=1, max_batches=1, progress=False, device="cpu")  # asked for
    assert "a GPU is available" not in capsys.readouterr().out


def make_recorders(model: nn.Module, every: int = 1) -> list:
    return [GradientRecorder(model, every=every), ActivationRecorder(model, every=3, bins=8)]


def test_resumed_run_keeps_its_recorders_record(tmp_path, capsys):
    # A resumed run's recorders must hold the record of the whole run, as if it had never stopped.
    x, y = make_data()
    kwargs = dict(epochs=3, lr=0.05, **QUIET)

    straight = tiny_model(seed=0)
    straight_recorders = make_recorders(straight)
    fit(straight, TinyLoader(x, y), recorders=straight_recorders, **kwargs)

    ckpt = tmp_path / "run.pt"
    interrupted = tiny_model(seed=0)
    with pytest.raises(KeyboardInterrupt):
        fit(
            interrupted,
            InterruptingLoader(x, y, at_epoch=2),
            checkpoint=ckpt,
            recorders=make_recorders(interrupted),
            **kwargs,
        )
    resumed = tiny_model(seed=123)
    resumed_recorders = make_recorders(resumed)  # fresh and empty, as after rerunning a notebook cell
    fit(resumed, TinyLoader(x, y), checkpoint=ckpt, recorders=resumed_recorders, **kwargs)

    # A finished checkpoint trains nothing, but still hands its record to new recorders.
    finished = tiny_model(seed=7)
    finished_recorders = make_recorders(finished)
    fit(finished, TinyLoader(x, y), checkpoint=ckpt, recorders=finished_recorders, **kwargs)

    steps = 3 * len(TinyLoader(x, y))
    for recorders in (resumed_recorders, finished_recorders):
        grads, acts = recorders
        assert grads.norms == straight_recorders[0].norms
        assert all(len(v) == steps for v in grads.norms.values())
        for name, records in acts.stats.items():
            expected = straight_recorders[1].stats[name]
            assert [r["step"] for r in records] == [r["step"] for r in expected] == list(range(0, steps, 3))
            for r, e in zip(records, expected):
                assert (r["mean"], r["std"], r["frac_zero"]) == (e["mean"], e["std"], e["frac_zero"])
                assert torch.equal(r["hist"], e["hist"])

    # Other recorder settings than the saved ones: a clear refusal, not a silently mixed record.
    with pytest.raises(ValueError, match="every=2.*resume=False"):
        fit(tiny_model(), TinyLoader(x, y), checkpoint=ckpt, recorders=make_recorders(tiny_model(), every=2), **kwargs)


def test_recorder_state_dict_round_trip_and_refusals():
    model = tiny_model()
    grads, acts = make_recorders(model)
    fit(model, loaders()[0], epochs=1, recorders=[grads, acts], **QUIET)
    copy_grads, copy_acts = make_recorders(tiny_model(seed=1))
    copy_grads.load_state_dict(grads.state_dict())
    copy_acts.load_state_dict(acts.state_dict())
    assert copy_grads.norms == grads.norms and copy_grads.mean() == grads.mean()
    assert [r["mean"] for r in copy_acts.stats["0"]] == [r["mean"] for r in acts.stats["0"]]
    with pytest.raises(ValueError, match="another model"):
        GradientRecorder(nn.Sequential(nn.Linear(2, 2))).load_state_dict(grads.state_dict())
    with pytest.raises(ValueError, match="bins=9; the saved record was made with 8"):
        ActivationRecorder(model, every=3, bins=9).load_state_dict(acts.state_dict())
    assert ActivationRecorder(tiny_model(), every=3, bins=8).state_dict()["records"][0]["hist"].shape == (0, 8)


def test_finished_checkpoint_returns_history_and_config_mismatch_is_refused(tmp_path):
    train_loader, _ = loaders()
    ckpt = tmp_path / "done.pt"
    h1 = fit(tiny_model(), train_loader, epochs=2, checkpoint=ckpt, **QUIET)
    h2 = fit(tiny_model(), train_loader, epochs=2, checkpoint=ckpt, **QUIET)
    assert h2.records == h1.records
    with pytest.raises(ValueError, match="different training run"):
        fit(tiny_model(), train_loader, epochs=5, checkpoint=ckpt, **QUIET)
    h3 = fit(tiny_model(), train_loader, epochs=1, checkpoint=ckpt, resume=False, **QUIET)
    assert len(h3) == 1 and train.load_checkpoint(ckpt)["epoch"] == 1


def test_a_checkpoint_of_another_recipe_or_model_is_refused(tmp_path):
    """Weight decay, label smoothing, the seed or the network changed: not the run the checkpoint holds."""
    train_loader, _ = loaders()
    ckpt = tmp_path / "run.pt"
    h = fit(tiny_model(), train_loader, epochs=1, checkpoint=ckpt, **QUIET)
    assert h.meta["config"]["weight_decay"] == 5e-4 and "Sequential" in h.meta["config"]["model"]
    for change in (dict(weight_decay=0.0), dict(label_smoothing=0.1), dict(seed=1), dict(nesterov=True)):
        with pytest.raises(ValueError, match=f"different training run.*{next(iter(change))}"):
            fit(tiny_model(), train_loader, epochs=1, checkpoint=ckpt, **change, **QUIET)
    twin = nn.Sequential(*tiny_model(), nn.Identity())  # the same parameters, other layers
    with pytest.raises(ValueError, match="different training run.*model"):
        fit(twin, train_loader, epochs=1, checkpoint=ckpt, **QUIET)
    # What a checkpoint of an older course_utils lacks is not compared.
    state = train.load_checkpoint(ckpt)
    del state["extra"]["config"]["weight_decay"]
    torch.save(state, ckpt)
    assert len(fit(tiny_model(), train_loader, epochs=1, checkpoint=ckpt, weight_decay=0.0, **QUIET)) == 1


def test_checkpoint_write_is_atomic_and_uses_weights_only(tmp_path, monkeypatch):
    model = tiny_model()
    path = tmp_path / "sub" / "c.pt"
    train.save_checkpoint(path, model=model, epoch=1, history=History([{"epoch": 1}]))
    assert os.listdir(path.parent) == ["c.pt"]  # no temporary file left behind

    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real_load(*a, **k))
    state = train.load_checkpoint(path)
    assert calls and calls[0].get("weights_only") is True
    assert state["epoch"] == 1 and state["history"]["records"] == [{"epoch": 1}]

    def failing_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        train.save_checkpoint(path, model=model, epoch=2)
    assert os.listdir(path.parent) == ["c.pt"]  # the old checkpoint survives, no tmp file
    monkeypatch.undo()
    assert train.load_checkpoint(path)["epoch"] == 1


@pytest.mark.parametrize("damage", ["truncated", "random", "text", "bare_state_dict"])
def test_damaged_checkpoint_says_what_to_do(tmp_path, damage):
    path = tmp_path / "c.pt"
    train.save_checkpoint(path, model=tiny_model(), epoch=1)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "random":
        path.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    elif damage == "text":
        path.write_text("this is not a checkpoint\n")
    else:
        torch.save(tiny_model().state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        train.load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "Delete it" in message
    assert "damaged" in message and "not a course_utils checkpoint" in message


def test_fit_with_damaged_checkpoint_raises_checkpoint_error(tmp_path):
    path = tmp_path / "c.pt"
    path.write_text("oops")
    train_loader, _ = loaders()
    with pytest.raises(CheckpointError, match="Delete it"):
        fit(tiny_model(), train_loader, epochs=1, checkpoint=path, **QUIET)


# --------------------------------------------------------------------------- history, predict


def test_history_roundtrip_and_best(tmp_path):
    h = History()
    h.append({"epoch": 1, "test_acc": 0.5, "test_loss": 1.2, "note": "warmup"})
    h.append({"epoch": 2, "test_acc": 0.7, "test_loss": 0.9})
    h.append({"epoch": 3, "test_acc": 0.6, "test_loss": 1.0})
    path = tmp_path / "h.json"
    h.save(path)
    assert os.listdir(tmp_path) == ["h.json"]
    loaded = History.load(path)
    assert loaded.records == h.records and History.from_dict(h.to_dict()).records == h.records
    assert loaded["test_acc"] == [0.5, 0.7, 0.6] and loaded["note"] == ["warmup", None, None]
    assert loaded.best()["epoch"] == 2 and loaded.best("test_loss")["epoch"] == 2
    assert loaded.last["epoch"] == 3 and len(loaded) == 3
    with pytest.raises(KeyError, match="test_acc"):
        loaded["nope"]
    assert "meta" not in h.to_dict()  # a history without notes saves as before


def test_history_meta_is_saved_with_the_records(tmp_path):
    h = History([{"epoch": 1, "test_acc": 0.5}], meta={"measured": "2-core CPU, fp32"})
    h.save(tmp_path / "h.json")
    loaded = History.load(tmp_path / "h.json")
    assert loaded.meta == {"measured": "2-core CPU, fp32"} and loaded.records == h.records
    assert History.load(tmp_path / "h.json").meta is not loaded.meta  # each load gets its own dict


def test_predict_and_most_confident_mistakes():
    _, test_loader = loaders()
    logits, labels = train.predict(tiny_model(), test_loader)
    assert logits.shape == (64, 4) and labels.shape == (64,) and logits.device.type == "cpu"
    logits = torch.tensor([[5.0, 0.0], [0.0, 1.0], [0.0, 9.0], [2.0, 0.0]])
    labels = torch.tensor([1, 1, 0, 0])
    assert train.most_confident_mistakes(logits, labels, k=5).tolist() == [2, 0]
    assert train.most_confident_mistakes(logits, labels, k=1).tolist() == [2]


def test_resolve_amp_on_cpu():
    cpu = torch.device("cpu")
    assert train.resolve_amp("auto", cpu) == (None, False)
    assert train.resolve_amp(False, cpu) == (None, False)
    assert train.resolve_amp("bf16", cpu) == (torch.bfloat16, False)


def test_resume_with_device_loader_is_bit_exact(tmp_path, monkeypatch):
    # The course's own loader: shuffle and crop/flip augmentation must replay exactly after a resume.
    from course_utils.data import make_loaders, synthetic_dataset

    data = synthetic_dataset("cifar10", n_train=96, n_test=32)
    kwargs = dict(epochs=2, lr=0.05, **QUIET)
    straight = tiny_model(seed=0, classes=10)
    fit(straight, make_loaders(data, batch_size=32)[0], **kwargs)

    ckpt = tmp_path / "run.pt"
    train_loader = make_loaders(data, batch_size=32)[0]
    iterate = type(train_loader).__iter__

    def stop_in_second_epoch(self):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return iterate(self)

    with monkeypatch.context() as patch:
        patch.setattr(type(train_loader), "__iter__", stop_in_second_epoch)
        with pytest.raises(KeyboardInterrupt):
            fit(tiny_model(seed=0, classes=10), train_loader, checkpoint=ckpt, **kwargs)
    resumed = tiny_model(seed=5, classes=10)
    fit(resumed, make_loaders(data, batch_size=32)[0], checkpoint=ckpt, **kwargs)
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_epoch_line_keeps_huge_losses_short():
    record = dict(epoch=1, train_loss=2.3456, train_acc=0.5, test_loss=9.9e28, test_acc=0.1, lr=0.1)
    record.update(images_per_s=100.0, epoch_time=1.0)
    line = train._epoch_line(record, epochs=1)
    assert "loss 2.346" in line and "test loss 9.9e+28" in line, line


def test_fit_names_a_cifar_network_as_the_paper_does(capsys):
    train_loader = TinyLoader(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))
    fit(cifar_plain(8), train_loader, epochs=1, lr=0.01, progress=False)
    assert "Training plain-8 on cpu" in capsys.readouterr().out
