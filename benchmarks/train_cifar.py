"""How fast do the course's CIFAR-10 networks train, and what makes them fast?

For each model this trains with the speed features on (the whole dataset on the
GPU with augmentation there, mixed precision, channels_last, optionally
torch.compile) and measures images/s and the time to a target test accuracy.
It then measures the images/s of the usual recipe (torchvision DataLoader with
PIL transforms in worker processes, fp32) over a few hundred batches, and the
model FLOP utilization (MFU): achieved FLOP/s = 3 x forward FLOPs x images/s
(forward + backward ~ 3 forwards), divided by the GPU's peak.

    python benchmarks/train_cifar.py                         # all three models, on the GPU
    python benchmarks/train_cifar.py --models resnet56 --compile
    python benchmarks/train_cifar.py --quick                 # a few batches, CPU-OK: does the script work?

Targets on one H100: ResNet-56 to 93% in under 60 s, CIFAR ResNet-18 to 94% in
under 30 s, and at least 5x the torchvision recipe's images/s for ResNet-20/56.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from course_utils import data as course_data  # noqa: E402
from course_utils.env import pick_device, seed_everything  # noqa: E402
from course_utils.inspect import count_flops  # noqa: E402
from course_utils.models import cifar_resnet, cifar_resnet18  # noqa: E402
from course_utils.train import History, MixedPrecision, Progress, fit  # noqa: E402

MODELS = {
    # name: (factory, default epochs, default target test accuracy)
    "resnet20": (lambda: cifar_resnet(20), 30, 0.91),
    "resnet56": (lambda: cifar_resnet(56), 30, 0.93),
    "resnet18": (cifar_resnet18, 15, 0.94),
}
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0}
"""Dense bf16 tensor-core peaks (no sparsity) of GPUs this was tuned on."""


@dataclass
class Result:
    """One model's numbers for the final table."""

    model: str
    fast_ips: float
    baseline_ips: float | None
    target: float
    best_acc: float
    time_to_target: float | None
    total_time: float
    gflops: float
    mfu: float | None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--help`` lists it."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--epochs", type=int, default=None, help="epochs for every model (default: 30, 30, 15)")
    p.add_argument("--target-acc", type=float, default=None, help="test accuracy to reach, e.g. 0.93 or 93")
    p.add_argument("--batch-size", type=int, default=512, help="batch size of the fast recipe (default 512)")
    p.add_argument("--baseline-batch-size", type=int, default=128, help="batch size of the torchvision recipe")
    p.add_argument("--baseline-batches", type=int, default=200, help="batches timed for the torchvision recipe")
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers of the torchvision recipe")
    p.add_argument("--lr", type=float, default=None, help="peak lr (default: 0.1 x batch size / 128)")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--compile", action="store_true", help="torch.compile the model in the fast recipe")
    p.add_argument("--no-baseline", action="store_true", help="skip the torchvision recipe")
    p.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16/fp16 peak, for MFU")
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: the best available)")
    p.add_argument("--quick", action="store_true", help="a few tiny batches, CPU-OK: checks that the script works")
    args = p.parse_args(argv)
    if args.target_acc is not None and args.target_acc > 1:
        args.target_acc /= 100  # accept 93 as well as 0.93
    return args


def load_data(quick: bool) -> course_data.ImageData:
    """CIFAR-10 (a small subset with ``--quick``)."""
    data = course_data.load_cifar10(verbose=False)
    return data.subset(train=256, test=128) if quick else data


def dataset_description(data: course_data.ImageData) -> str:
    """Which CIFAR-10 the numbers are from: the official release or an offline JPEG copy."""
    if "image folder" in data.source or ".tar.gz" in data.source:
        kind = "the offline JPEG copy of CIFAR-10 (re-encoded: accuracies a little below the official release)"
    else:
        kind = "the official CIFAR-10 release"
    return f"Dataset: {kind}.\n  {data.source}"


def peak_tflops(args: argparse.Namespace, device: torch.device) -> float | None:
    """The peak for MFU: ``--peak-tflops``, else known for an H100/H200, else None (MFU not reported)."""
    if args.peak_tflops:
        return args.peak_tflops
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_TFLOPS.items():
        if key in name:
            return value
    print(f"MFU: unknown peak for {name}; pass --peak-tflops (its dense bf16/fp16 TFLOP/s) to get MFU.")
    return None


def steady_ips(history: History) -> float:
    """Images/s once warmed up: the median over epochs after the first (which compiles and autotunes)."""
    values = history["images_per_s"]
    return statistics.median(values[1:] if len(values) > 1 else values)


def time_to(history: History, target: float) -> float | None:
    """Seconds of training + evaluation until the first epoch at or above ``target`` test accuracy."""
    elapsed = 0.0
    for record in history:
        elapsed += record["epoch_time"]
        if record["test_acc"] >= target:
            return elapsed
    return None


def run_fast(model: torch.nn.Module, data, args, device: torch.device, epochs: int) -> History:
    """The fast recipe: DeviceLoader, mixed precision, channels_last (+ compile)."""
    train_loader, test_loader = course_data.make_loaders(
        data, batch_size=args.batch_size, device=device, channels_last=True
    )
    model = model.to(device, memory_format=torch.channels_last)
    if args.compile:
        model = torch.compile(model)
    lr = args.lr or 0.1 * args.batch_size / 128
    return fit(
        model, train_loader, test_loader, epochs=epochs, device=device, lr=lr,
        loss_fn=torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing),
        callbacks=[MixedPrecision(), Progress(bar=not args.quick)],
    )  # fmt: skip


def run_baseline(model: torch.nn.Module, data, args, device: torch.device) -> float:
    """Images/s of the usual recipe: torchvision DataLoader + PIL transforms, fp32, NCHW, no compile."""
    workers = 0 if args.quick else args.workers
    batches = 2 if args.quick else args.baseline_batches
    timed = data.subset(train=min(len(data.train_labels), batches * args.baseline_batch_size))
    loader = course_data.torchvision_loader(timed, batch_size=args.baseline_batch_size, num_workers=workers)
    history = fit(model, loader, epochs=1, device=device, lr=0.1, callbacks=[Progress(bar=not args.quick, lines=False)])
    return history.last["images_per_s"]


def benchmark(name: str, data, args, device: torch.device, peak: float | None) -> Result:
    """Both recipes for one model."""
    factory, default_epochs, default_target = MODELS[name]
    epochs = 1 if args.quick else (args.epochs or default_epochs)
    target = args.target_acc if args.target_acc is not None else default_target
    print(f"\n=== {name}: fast recipe, {epochs} epochs, batch {args.batch_size}, target {target:.1%} ===")
    seed_everything(0)
    model = factory()
    gflops = count_flops(model, (1, 3, 32, 32)) / 1e9
    history = run_fast(model, data, args, device, epochs)
    fast = steady_ips(history)
    baseline = None
    if not args.no_baseline:
        print(f"=== {name}: torchvision recipe (fp32), throughput only ===")
        seed_everything(0)
        baseline = run_baseline(factory(), data, args, device)
    mfu = 3 * gflops * 1e9 * fast / (peak * 1e12) if peak else None
    return Result(
        model=name, fast_ips=fast, baseline_ips=baseline, target=target, best_acc=max(history["test_acc"]),
        time_to_target=time_to(history, target), total_time=sum(history["epoch_time"]), gflops=gflops, mfu=mfu,
    )  # fmt: skip


def format_table(results: list[Result], quick: bool = False) -> str:
    """The results as an aligned text table (``quick``: no speed-up, the runs are too small to mean one)."""
    header = (
        f"{'model':<10}{'fwd GFLOP':>10}{'fast img/s':>12}{'torchvision':>13}{'speedup':>9}{'MFU':>7}"
        f"{'best acc':>10}{'target':>8}{'time to target':>16}{'total':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        speedup = f"{r.fast_ips / r.baseline_ips:.1f}x" if r.baseline_ips and not quick else "-"
        baseline = f"{r.baseline_ips:,.0f}" if r.baseline_ips else "-"
        mfu = f"{r.mfu:.1%}" if r.mfu is not None else "n/a"
        reached = f"{r.time_to_target:.1f} s" if r.time_to_target is not None else "not reached"
        lines.append(
            f"{r.model:<10}{r.gflops:>10.3f}{r.fast_ips:>12,.0f}{baseline:>13}{speedup:>9}{mfu:>7}"
            f"{r.best_acc:>10.1%}{r.target:>8.0%}{reached:>16}{r.total_time:>8.1f}s"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Result]:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    device = torch.device(args.device) if args.device else (torch.device("cpu") if args.quick else pick_device())
    if args.quick:
        args.batch_size, args.baseline_batch_size = 32, 32
    data = load_data(args.quick)
    peak = peak_tflops(args, device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    print(f"torch {torch.__version__} on {gpu}. {dataset_description(data)}")
    results = [benchmark(name, data, args, device, peak) for name in args.models]
    print()
    print(dataset_description(data))
    print(
        f"Device: {gpu}; fast recipe: DeviceLoader + AMP (auto) + channels_last"
        + (" + compile" if args.compile else "")
    )
    print("Time to target counts training and evaluation of every epoch, compilation included.")
    if args.quick:
        print("--quick: a few batches of a 256-image subset; the numbers only show that the script runs.")
    print(format_table(results, args.quick))
    return results


if __name__ == "__main__":
    main()
