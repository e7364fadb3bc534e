"""How fast do the course's CIFAR-10 networks train, and what makes them fast?

For each model, two measurements:

1. Training to a target test accuracy with the fast recipe (the whole dataset on the device with augmentation
   there, batch 512, mixed precision, channels_last, optionally torch.compile): the best test accuracy, the time to
   the target, images/s and the model FLOP utilization (MFU).
2. An ablation of the training speed: the usual recipe (torchvision DataLoader with PIL transforms in worker
   processes, batch 128, fp32), then one change at a time: DeviceLoader, + batch 512, + mixed precision,
   + channels_last, + torch.compile. Every step trains the same number of batches after the same warm-up
   batches, which are not timed (they start the workers, fill the pipeline, let cuDNN pick its kernels and
   torch.compile compile). The steps take turns, run after run, and each step's images/s is the median
   (minimum - maximum) of its runs.

    python benchmarks/train_cifar.py                         # all three models, on the GPU
    python benchmarks/train_cifar.py --models resnet56 --compile
    python benchmarks/train_cifar.py --device cpu --ablation-only --models resnet20 --steps 10
    python benchmarks/train_cifar.py --quick                 # seconds, on a CPU: does the script work?

MFU = achieved FLOP/s / the GPU's peak, where achieved = 3 x forward FLOPs x images/s (a backward pass costs
about two forward passes) and the peak is the vendor datasheet's dense fp16/bf16 tensor-core figure for the exact
GPU model (PEAK_TFLOPS below), else "unknown" unless --peak-tflops gives it.

The recipe's targets on one H100 (goals, not measurements): ResNet-56 to 93% in under 60 s, CIFAR ResNet-18 to
94% in under 30 s, and at least 5x the torchvision recipe's images/s for ResNet-20/56.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))  # timing.py, beside this script

from timing import load_average, synchronize  # noqa: E402

from course_utils import data as course_data  # noqa: E402
from course_utils.env import describe_device, pick_device, seed_everything  # noqa: E402
from course_utils.inspect import count_flops  # noqa: E402
from course_utils.models import cifar_resnet, resnet18  # noqa: E402
from course_utils.train import Callback, History, MixedPrecision, Progress, fit  # noqa: E402

MODELS = {
    # name: (factory, default epochs, default target test accuracy)
    "resnet20": (lambda: cifar_resnet(20), 30, 0.91),
    "resnet56": (lambda: cifar_resnet(56), 30, 0.93),
    "resnet18": (lambda: resnet18(num_classes=10, stem="cifar"), 15, 0.94),
}

# Peak dense fp16/bf16 tensor-core TFLOP/s, from the vendor datasheet of each GPU, keyed by the exact name that
# torch.cuda.get_device_name reports. The H100, H200, A100 and L4 datasheets print twice these figures "with
# sparsity", which dense training does not use; the T4's is its "mixed precision (FP16/FP32)" figure. The H100
# SXM and PCIe differ (clocks, SM count): the name tells them apart. Any other name, a MIG slice of one of these
# included, has no peak here: MFU is "unknown" (pass --peak-tflops).
PEAK_TFLOPS = {
    "NVIDIA H100 80GB HBM3": ("H100 SXM", 989.5),
    "NVIDIA H100 PCIe": ("H100 PCIe", 756.5),
    "NVIDIA H200": ("H200 SXM", 989.5),
    "NVIDIA A100-SXM4-40GB": ("A100 SXM", 312.0),
    "NVIDIA A100-SXM4-80GB": ("A100 SXM", 312.0),
    "NVIDIA A100-PCIE-40GB": ("A100 PCIe", 312.0),
    "NVIDIA A100 80GB PCIe": ("A100 PCIe", 312.0),
    "NVIDIA L4": ("L4", 121.0),
    "Tesla T4": ("T4", 65.0),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--help`` lists it."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=None, help="default: all (--quick: resnet20)")
    p.add_argument("--epochs", type=int, default=None, help="epochs for every model (default: 30, 30, 15)")
    p.add_argument("--target-acc", type=float, default=None, help="test accuracy to reach, e.g. 0.93 or 93")
    p.add_argument("--batch-size", type=int, default=512, help="batch size of the fast recipe (default 512)")
    p.add_argument("--baseline-batch-size", type=int, default=128, help="batch size of the torchvision recipe")
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers of the torchvision recipe")
    p.add_argument("--lr", type=float, default=None, help="peak lr (default: 0.1 x batch size / 128)")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--compile", action="store_true", help="torch.compile the model (training, last ablation step)")
    p.add_argument("--runs", type=int, default=5, help="ablation: runs of each step, taking turns (default 5)")
    p.add_argument("--steps", type=int, default=50, help="ablation: timed batches per run (default 50)")
    p.add_argument("--warmup-steps", type=int, default=5, help="ablation: untimed batches first (default 5)")
    p.add_argument("--ablation-only", action="store_true", help="skip the training to a target accuracy")
    p.add_argument("--no-ablation", action="store_true", help="skip the ablation (and so the torchvision recipe)")
    p.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16/fp16 peak, for MFU")
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: the best available)")
    p.add_argument("--threads", type=int, default=None, help="torch threads on a CPU (default: torch's choice)")
    p.add_argument("--quick", action="store_true", help="tiny batches of a small subset, on the CPU: does it run?")
    args = p.parse_args(argv)
    if args.target_acc is not None and args.target_acc > 1:
        args.target_acc /= 100  # accept 93 as well as 0.93
    if args.quick:
        # Just enough to go through every line once: no figure of this mode means anything.
        args.models = args.models or ["resnet20"]
        args.batch_size, args.baseline_batch_size, args.workers = 32, 16, 0
        args.runs, args.steps, args.warmup_steps = 2, 2, 1
        # One thread: where another process holds a core, a second thread's waits made these steps 8x slower.
        args.threads = args.threads or 1
    args.models = args.models or list(MODELS)
    if min(args.runs, args.steps, args.warmup_steps) < 1:
        p.error("--runs, --steps and --warmup-steps must be at least 1")
    return args


# --- Measuring ---------------------------------------------------------------------------------------------------


class StepTimer(Callback):
    """A ``fit`` callback: images/s over the batches after the first ``warmup`` of the epoch."""

    def __init__(self, warmup: int, batch_size: int) -> None:
        self.warmup, self.batch_size = warmup, batch_size
        self.step, self.start, self.images_per_s = 0, 0.0, None

    def on_step_end(self, run) -> None:
        self.step += 1
        if self.step == self.warmup:
            synchronize(run.device)  # the warm-up's queued GPU work is not on the clock
            self.start = time.perf_counter()
        elif self.step == run.steps:
            synchronize(run.device)
            self.images_per_s = (run.steps - self.warmup) * self.batch_size / (time.perf_counter() - self.start)


def spread(values: list[float]) -> str:
    """``median (min-max)`` of the runs: the median for the figure, the range for how far to trust it."""
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def peak_tflops(name: str, given: float | None = None) -> tuple[str, float | None]:
    """The peak for MFU and where it comes from: ``given`` (--peak-tflops), else the datasheet figure of the GPU
    called ``name`` (exactly), else None."""
    if given:
        return f"{given:g} TFLOP/s (--peak-tflops)", given
    if name not in PEAK_TFLOPS:
        return f"unknown for {name} (pass --peak-tflops: its dense bf16/fp16 TFLOP/s)", None
    model, peak = PEAK_TFLOPS[name]
    return f"{peak:g} TFLOP/s, dense fp16/bf16 tensor peak of the {model} (vendor datasheet)", peak


def mfu(images_per_s: float, gflops: float, peak: float | None) -> str:
    """Model FLOP utilization: 3 x forward FLOPs x images/s over the peak; "unknown" without a peak."""
    return f"{3 * gflops * 1e9 * images_per_s / (peak * 1e12):.1%}" if peak else "unknown"


# --- Part 1: training to a target accuracy -----------------------------------------------------------------------


@dataclass
class Training:
    """What the fast recipe's training run of one model gave."""

    model: str
    gflops: float  # one forward pass of one image
    target: float
    images_per_s: list[float]  # per epoch, the first (compilation, autotuning) left out when there are more
    best_acc: float
    time_to_target: float | None
    total_time: float


def new_model(factory: Callable, device: torch.device, channels_last: bool = False, compiled: bool = False):
    """A freshly initialised model (seed 0) on ``device``, in channels_last and compiled if asked."""
    seed_everything(0)
    model = factory().to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    return torch.compile(model) if compiled else model


def train_to_target(name: str, gflops: float, data, args, device: torch.device, epochs: int, target: float) -> Training:
    """The fast recipe, trained and tested epoch by epoch: DeviceLoader, mixed precision, channels_last (+ compile)."""
    train_loader, test_loader = course_data.make_loaders(
        data, batch_size=args.batch_size, device=device, channels_last=True
    )
    model = new_model(MODELS[name][0], device, channels_last=True, compiled=args.compile)
    history = fit(
        model, train_loader, test_loader, epochs=epochs, device=device,
        lr=args.lr or 0.1 * args.batch_size / 128,
        loss_fn=torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing),
        callbacks=[MixedPrecision(), Progress(bar=not args.quick)],
    )  # fmt: skip
    per_epoch = history["images_per_s"]
    return Training(
        model=name,
        gflops=gflops,
        target=target,
        images_per_s=per_epoch[1:] if len(per_epoch) > 1 else per_epoch,
        best_acc=max(history["test_acc"]),
        time_to_target=time_to(history, target),
        total_time=sum(history["epoch_time"]),
    )


def time_to(history: History, target: float) -> float | None:
    """Seconds of training + evaluation until the first epoch at or above ``target`` test accuracy."""
    elapsed = 0.0
    for record in history:
        elapsed += record["epoch_time"]
        if record["test_acc"] >= target:
            return elapsed
    return None


# --- Part 2: the ablation ----------------------------------------------------------------------------------------


@dataclass
class Step:
    """One row of the ablation: a model, a loader and a precision, and the images/s of its runs."""

    name: str
    batch_size: int
    model: torch.nn.Module | None
    loader: object
    mixed_precision: bool = False
    skipped: str = ""  # why the step is not measured here
    images_per_s: list[float] = field(default_factory=list)


def ablation_steps(factory: Callable, data, args, device: torch.device) -> list[Step]:
    """The usual recipe, then one change at a time, each step keeping the changes above it."""
    per_run = args.warmup_steps + args.steps  # a run is one epoch of exactly this many full batches
    if per_run * args.batch_size > len(data.train_labels):
        raise SystemExit(f"(--warmup-steps + --steps) x --batch-size exceeds the {len(data.train_labels):,} images.")
    usual, big = args.baseline_batch_size, args.batch_size
    small, large = data.subset(train=per_run * usual), data.subset(train=per_run * big)

    def on_device(images, batch_size: int, channels_last: bool = False) -> course_data.DeviceLoader:
        return course_data.make_loaders(images, batch_size=batch_size, device=device, channels_last=channels_last)[0]

    large_loader, channels_last_loader = on_device(large, big), on_device(large, big, channels_last=True)
    amp_dtype, _ = MixedPrecision().choose(device)
    amp = {torch.bfloat16: " (bf16 autocast)", torch.float16: " (fp16 autocast + GradScaler)"}.get(amp_dtype)
    no_amp = "" if amp else f"skipped: on {device.type}, MixedPrecision() trains in fp32, as the step above does"
    no_compile = "skipped: --quick" if args.quick else "" if args.compile else "skipped: pass --compile"
    compiled = None if no_compile else new_model(factory, device, channels_last=True, compiled=True)
    return [
        Step(f"torchvision DataLoader, {args.workers} workers, fp32", usual, new_model(factory, device),
             course_data.torchvision_loader(small, usual, num_workers=args.workers)),
        Step(f"DeviceLoader (data on {device.type})", usual, new_model(factory, device), on_device(small, usual)),
        Step(f"+ batch {big}", big, new_model(factory, device), large_loader),
        Step(f"+ mixed precision{amp or ''}", big, new_model(factory, device), large_loader, True, no_amp),
        Step("+ channels_last", big, new_model(factory, device, channels_last=True), channels_last_loader, True),
        Step("+ torch.compile", big, compiled, channels_last_loader, True, no_compile),
    ]  # fmt: skip


def train_steps(step: Step, args, device: torch.device) -> float:
    """Images/s of one run of ``step``: ``fit``, the course's training loop, for one epoch, timed after the warm-up."""
    timer = StepTimer(args.warmup_steps, step.batch_size)
    callbacks = [MixedPrecision()] if step.mixed_precision else []
    fit(
        step.model, step.loader, epochs=1, device=device, lr=0.1 * step.batch_size / 128,
        loss_fn=torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing),
        callbacks=[*callbacks, timer, Progress(bar=False, lines=False)],
    )  # fmt: skip
    if timer.images_per_s is None:
        raise RuntimeError(f"{step.name}: the loader gave {timer.step} batches, not {args.warmup_steps + args.steps}.")
    return timer.images_per_s


def run_ablation(factory: Callable, data, args, device: torch.device) -> list[Step]:
    """Every measured step, ``--runs`` times, taking turns: a slow spell of the machine hits all steps alike."""
    steps = ablation_steps(factory, data, args, device)
    measured = [step for step in steps if not step.skipped]
    for run in range(args.runs):
        print(f"  run {run + 1}/{args.runs}: " + ", ".join(step.name.split(",")[0] for step in measured), flush=True)
        for step in measured:
            step.images_per_s.append(train_steps(step, args, device))
    for step in measured:  # end the DataLoader's workers and free the device's memory before the next model
        step.model = step.loader = None
    return steps


def format_ablation(name: str, steps: list[Step], gflops: float, peak: float | None, quick: bool) -> str:
    """The ablation as a table: each step's images/s, and how many times the step above and the usual recipe."""
    header = f"{name:<44}{'batch':>6}  {'images/s: median (min-max)':<30}{'x above':>8}{'x usual':>8}{'MFU':>8}"
    lines = [header, "-" * len(header)]
    above = usual = None
    for step in steps:
        if step.skipped:
            lines.append(f"{step.name:<44}{step.batch_size:>6}  {step.skipped}")
            continue
        median = statistics.median(step.images_per_s)
        usual = usual or median
        # --quick measures a few tiny batches: a speed-up from those would be noise presented as a result.
        x_above = f"{median / above:.1f}x" if above and not quick else "-"
        x_usual = f"{median / usual:.1f}x" if not quick else "-"
        row = f"{step.name:<44}{step.batch_size:>6}  {spread(step.images_per_s):<30}{x_above:>8}{x_usual:>8}"
        lines.append(row + f"{mfu(median, gflops, peak):>8}")
        above = median
    return "\n".join(lines)


# --- Putting it together -----------------------------------------------------------------------------------------


def dataset_description(data: course_data.ImageData) -> str:
    """Which CIFAR-10 the numbers are from: the official release or an offline JPEG copy."""
    if data.source.startswith("torchvision's CIFAR-10 files"):
        kind = "the official CIFAR-10 release"
    elif "image folder" in data.source or ".tar.gz" in data.source:
        kind = "the offline JPEG copy of CIFAR-10 (re-encoded: accuracies a little below the official release)"
    else:
        kind = "images that are neither the official CIFAR-10 release nor its offline copy"
    return f"Dataset: {kind}.\n  {data.source}"


def format_training(rows: list[Training], peak: float | None) -> str:
    """The training runs as a table: speed, MFU, accuracy and time to the target."""
    header = (
        f"{'model':<10}{'fwd GFLOP':>10}  {'images/s: median (min-max)':<30}{'MFU':>8}"
        f"{'best acc':>10}{'target':>8}{'time to target':>16}{'total':>9}"
    )
    lines = [header, "-" * len(header)]
    for t in rows:
        reached = f"{t.time_to_target:.1f} s" if t.time_to_target is not None else "not reached"
        utilization = mfu(statistics.median(t.images_per_s), t.gflops, peak)
        lines.append(
            f"{t.model:<10}{t.gflops:>10.3f}  {spread(t.images_per_s):<30}{utilization:>8}"
            f"{t.best_acc:>10.1%}{t.target:>8.0%}{reached:>16}{t.total_time:>8.1f}s"
        )
    return "\n".join(lines)


def choose_device(args: argparse.Namespace) -> torch.device:
    """``--device``, else the best one found (the CPU with ``--quick``), with the settings the benchmark runs with."""
    device = torch.device(args.device) if args.device else (torch.device("cpu") if args.quick else pick_device())
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        # Every batch has the same shape: cuDNN may time its algorithms once (in the warm-up) and keep the fastest.
        torch.backends.cudnn.benchmark = True
    return device


def print_results(args, device: torch.device, trained: list, ablations: list, peak: float | None) -> None:
    """The tables, after the hardware they were measured on."""
    print(f"\nDevice: {describe_device(device)}; {load_average('end')}")
    if args.quick:
        print("--quick: tiny batches of a 256-image subset; the figures only show that the code runs (no speed-up).")
    if trained:
        compiled = " + compile" if args.compile else ""
        print(f"\nFast recipe: DeviceLoader, batch {args.batch_size}, mixed precision (auto), channels_last{compiled}.")
        print("images/s: over the epochs after the first (the first compiles and autotunes), or of the only epoch.")
        print("Time to target counts training and evaluation of every epoch, compilation included.")
        print(format_training(trained, peak))
    for name, gflops, steps in ablations:
        print(f"\nAblation ({args.runs} runs per step, {args.steps} timed batches each, after {args.warmup_steps}):")
        print(format_ablation(name, steps, gflops, peak, args.quick))


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its tables."""
    args = parse_args(argv)
    device = choose_device(args)
    data = course_data.load_cifar10(verbose=False)
    data = data.subset(train=256, test=128) if args.quick else data
    gpu_name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    peak_text, peak = peak_tflops(gpu_name, args.peak_tflops)
    print(f"torch {torch.__version__} on {describe_device(device)}")
    print(load_average())
    print(f"MFU peak: {peak_text}")
    print(dataset_description(data))

    trained, ablations = [], []
    for name in args.models:
        factory, default_epochs, default_target = MODELS[name]
        gflops = count_flops(factory(), (1, 3, 32, 32)) / 1e9
        if not args.ablation_only:
            epochs = 1 if args.quick else (args.epochs or default_epochs)
            target = args.target_acc if args.target_acc is not None else default_target
            print(f"\n=== {name}: fast recipe, {epochs} epoch(s), batch {args.batch_size}, target {target:.1%} ===")
            trained.append(train_to_target(name, gflops, data, args, device, epochs, target))
        if not args.no_ablation:
            batches = f"{args.warmup_steps} warm-up + {args.steps} timed batches"
            print(f"\n=== {name}: ablation, {args.runs} runs per step, each {batches} ===")
            ablations.append((name, gflops, run_ablation(factory, data, args, device)))
    print_results(args, device, trained, ablations, peak)


if __name__ == "__main__":
    main()
