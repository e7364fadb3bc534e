"""benchmarks/: the scripts run and print what they promise. Nothing here times anything or asserts a speed.

The scripts run in this process on random images shaped like CIFAR-10 (so no dataset is needed), with
their smallest settings; their figures mean nothing and are not looked at, only the lines around them.
"""

from __future__ import annotations

import re

import pytest
import torch
from conftest import ROOT, load_script

from course_utils import data as course_data

SPEED_UP = re.compile(r"\d+\.\dx")  # "9.5x"


def load_benchmark(name: str):
    """``benchmarks/<name>.py`` as a module."""
    return load_script(ROOT / "benchmarks" / f"{name}.py", f"benchmark_{name}")


@pytest.fixture
def random_cifar(monkeypatch):
    """Random uint8 images in CIFAR-10's shapes stand in for the dataset; torch's thread count is restored after."""
    generator = torch.Generator().manual_seed(0)

    def images(n: int) -> torch.Tensor:
        return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)

    labels = torch.arange(512) % 10
    data = course_data.ImageData(
        images(512), labels, images(128), labels[:128], [f"class {i}" for i in range(10)], "cifar10", "random pixels"
    )
    monkeypatch.setattr(course_data, "load_cifar10", lambda *args, **kwargs: data)
    threads = torch.get_num_threads()
    yield data
    torch.set_num_threads(threads)


def test_data_pipeline_quick_prints_the_table_and_no_ratio(random_cifar, capsys):
    load_benchmark("data_pipeline").main(["--quick", "--device", "cpu"])
    out = capsys.readouterr().out
    assert "load average at start" in out and "torch threads in this process: 1" in out
    assert re.search(r"^pipeline +median +min +max +median +min +max$", out, re.M)
    assert re.search(r"^DeviceLoader \(on cpu\)( +[\d,.]+){6}$", out, re.M)
    assert re.search(r"^torchvision DataLoader \(2 workers\)( +[\d,.]+){6}$", out, re.M)
    assert out.strip().splitlines()[-1].startswith("--quick") and not SPEED_UP.search(out)


def test_data_pipeline_ends_with_the_cpu_time_ratio(random_cifar, capsys):
    args = ["--device", "cpu", "--batch-size", "32", "--batches", "2", "--warmup", "1", "--runs", "1", "--workers", "0"]
    load_benchmark("data_pipeline").main(args)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("CPU time per image, torchvision recipe / DeviceLoader")
    assert SPEED_UP.fullmatch(lines[-1])


def test_train_cifar_quick_runs_every_step_and_prints_no_speed_up(random_cifar, capsys):
    load_benchmark("train_cifar").main(["--quick"])
    out = capsys.readouterr().out
    assert "load average at start" in out and "MFU peak: unknown for cpu" in out
    assert re.search(r"^resnet20 +0\.081 +[\d,]+ \([\d,]+-[\d,]+\)", out, re.M)  # the training table
    for step in ("torchvision DataLoader, 0 workers, fp32", "DeviceLoader (data on cpu)", "+ batch 32"):
        assert re.search(rf"^{re.escape(step)} +\d+ +[\d,]+ \([\d,]+-[\d,]+\) +- +- +unknown$", out, re.M), step
    assert re.search(r"^\+ channels_last +32 ", out, re.M)
    assert re.search(r"^\+ mixed precision +32 +skipped: on cpu", out, re.M)
    assert re.search(r"^\+ torch\.compile +32 +skipped: --quick$", out, re.M)
    assert not SPEED_UP.search(out)


def test_the_ablation_table_gives_speed_ups_outside_quick():
    train_cifar = load_benchmark("train_cifar")
    steps = [
        train_cifar.Step("usual", 128, None, None, images_per_s=[100.0, 90.0, 110.0]),
        train_cifar.Step("+ skipped", 512, None, None, skipped="skipped: here"),
        train_cifar.Step("+ faster", 512, None, None, images_per_s=[300.0, 250.0, 320.0]),
    ]
    table = train_cifar.format_ablation("resnet20", steps, gflops=0.081, peak=None, quick=False)
    assert re.search(r"^\+ faster +512 +300 \(250-320\) +3\.0x +3\.0x +unknown$", table, re.M)
    assert re.search(r"^usual +128 +100 \(90-110\) +- +1\.0x +unknown$", table, re.M)
    assert not SPEED_UP.search(train_cifar.format_ablation("resnet20", steps, 0.081, None, quick=True))


def test_the_peak_comes_from_the_exact_gpu_name():
    peak_tflops = load_benchmark("train_cifar").peak_tflops
    assert peak_tflops("NVIDIA H100 80GB HBM3") == (
        "989.5 TFLOP/s, dense fp16/bf16 tensor peak of the H100 SXM (vendor datasheet)",
        989.5,
    )
    assert peak_tflops("NVIDIA H100 PCIe")[1] == 756.5
    assert peak_tflops("Tesla T4")[1] == 65.0
    # A MIG slice, or a GPU without a datasheet figure here: no guess.
    for name in ("NVIDIA A100-SXM4-80GB MIG 1g.10gb", "NVIDIA GeForce RTX 4090", "cpu"):
        assert peak_tflops(name)[1] is None and "unknown" in peak_tflops(name)[0]
    assert peak_tflops("cpu", given=50.0) == ("50 TFLOP/s (--peak-tflops)", 50.0)
