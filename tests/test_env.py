"""The environment every notebook relies on: sizes, devices, paths, and the verdict line."""

import sys
import types

import pytest
import torch

import course_utils as cu
from course_utils import env


@pytest.fixture
def no_size_switches(monkeypatch):
    monkeypatch.delenv("COURSE_SIZE", raising=False)
    monkeypatch.delenv("COURSE_SMOKE", raising=False)
    monkeypatch.delenv("COURSE_DEVICE", raising=False)


def test_size_follows_the_device(no_size_switches):
    assert env.course_size(torch.device("cpu")) == "cpu"
    assert env.course_size(torch.device("cuda")) == "gpu"
    assert env.course_size(torch.device("mps")) == "gpu"


def test_smoke_switch_and_size_override(no_size_switches, monkeypatch):
    monkeypatch.setenv("COURSE_SMOKE", "1")
    e = env.setup(quiet=True)
    assert e.size == "smoke" and e.device.type == "cpu"  # smoke runs are CPU-sized everywhere
    assert e.pick(gpu=30, cpu=8, smoke=1) == 1
    monkeypatch.setenv("COURSE_SIZE", "gpu")  # COURSE_SIZE wins over COURSE_SMOKE
    assert env.setup(quiet=True, device="cpu").pick(gpu=30, cpu=8, smoke=1) == 30
    monkeypatch.setenv("COURSE_SIZE", "cpu")
    assert env.setup(quiet=True).pick(gpu=30, cpu=8, smoke=1) == 8


def test_a_wrong_size_says_what_is_allowed(no_size_switches, monkeypatch):
    monkeypatch.setenv("COURSE_SIZE", "huge")
    with pytest.raises(ValueError, match="smoke, cpu, gpu.*'huge'"):
        env.setup(quiet=True)


def test_pick_needs_every_size(no_size_switches):
    e = env.setup(quiet=True, device="cpu")
    with pytest.raises(TypeError):
        e.pick(gpu=30, cpu=8)  # a size without a value would crash only at that size


def test_setup_says_where_it_runs(no_size_switches, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_SIZE", "cpu")
    env.setup(device="cpu")
    line = capsys.readouterr().out
    assert "Size 'cpu'" in line and "CPU" in line and f"torch {torch.__version__}" in line
    assert "cores" in line


def test_verdict_reports_and_never_raises(no_size_switches, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_SIZE", "cpu")
    env.setup(quiet=True)
    assert cu.verdict(True, "plain-56 trains worse", measured="12% vs 8%") is True
    assert cu.verdict(False, "ResNet-56 beats ResNet-20", measured="7% vs 6%") is False
    assert capsys.readouterr().out.splitlines() == [
        "✓ plain-56 trains worse (12% vs 8%)",
        "✗ ResNet-56 beats ResNet-20 (7% vs 6%)",
    ]
    monkeypatch.setenv("COURSE_SIZE", "smoke")
    env.setup(quiet=True)
    cu.verdict(False, "plain-56 trains worse", measured="1 batch")
    out = capsys.readouterr().out
    assert out.startswith("· plain-56 trains worse: not judged") and "(1 batch)" in out


def test_data_and_cache_dirs(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "datasets"))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    assert env.data_dir() == (tmp_path / "datasets").resolve()
    assert env.course_dir() == tmp_path / "cache" and (tmp_path / "cache").is_dir()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU, so asking for one succeeds")
def test_asking_for_a_missing_gpu_says_how_to_get_one():
    with pytest.raises(RuntimeError, match=r"cannot use it here.*Runtime > Change runtime type"):
        env.pick_device("cuda")


def test_seed_everything_repeats():
    env.seed_everything(3)
    a = torch.randn(4)
    env.seed_everything(3)
    assert torch.equal(a, torch.randn(4))


def test_runs_dir_local_and_on_colab(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert env.runs_dir() == tmp_path / "runs"
    assert env.runs_dir(save_to_drive=True) == tmp_path / "runs"  # not on Colab: says so, keeps them local
    assert "only applies on Colab" in capsys.readouterr().out

    mounted = []
    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    assert env.is_colab()
    assert env.runs_dir(save_to_drive=True) == env.DRIVE_RUNS_DIR
    assert mounted == ["/content/drive"]
    assert env.runs_dir() == tmp_path / "runs"  # on Colab without the switch: the session's disk
