"""The environment switches every notebook relies on."""

import sys
import types

import pytest
import torch

from course_utils import env


def test_smoke_switch(monkeypatch):
    monkeypatch.setenv("COURSE_SMOKE", "1")
    assert env.is_smoke()
    e = env.setup(quiet=True)
    assert e.smoke and e.device.type == "cpu"  # smoke runs are CPU-sized everywhere
    assert e.pick(30, 1) == 1
    monkeypatch.setenv("COURSE_SMOKE", "0")
    assert not env.is_smoke() and env.setup(quiet=True, device="cpu").pick(30, 1) == 30


def test_data_and_cache_dirs(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "datasets"))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    assert env.data_dir() == (tmp_path / "datasets").resolve()
    assert env.course_dir() == tmp_path / "cache" and (tmp_path / "cache").is_dir()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU, so asking for one succeeds")
def test_asking_for_a_missing_gpu_says_how_to_get_one():
    with pytest.raises(RuntimeError, match=r"no CUDA GPU.*Runtime > Change runtime type"):
        env.pick_device("cuda")


def test_cpu_line_says_how_to_switch(monkeypatch):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "test")
    assert env.is_colab()
    assert "Change runtime type" in env.describe_device(torch.device("cpu"))


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
