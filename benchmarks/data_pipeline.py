"""What does it cost to make augmented batches? DeviceLoader against the usual torchvision DataLoader recipe.

    python benchmarks/data_pipeline.py                  # the best device found, 5 runs of each pipeline
    python benchmarks/data_pipeline.py --device cpu --workers 4 --runs 7 --batches 40
    python benchmarks/data_pipeline.py --quick          # seconds: checks that the script works, no ratio

Both pipelines make the same thing: normalised float batches of randomly cropped and flipped CIFAR-10 images, on
the device. For the torchvision recipe the copy to the device is part of the work, as it is in a training loop.

One run makes one epoch of a subset of CIFAR-10: a few warm-up batches, then the timed ones. The two pipelines take
turns (A, B, A, B, ...), so that whatever else the machine is doing falls on both alike, and every figure is the
median, minimum and maximum over the runs. Two figures per pipeline:

- images/s, by the wall clock, warm-up batches not counted: what a training loop waits for. It moves with
  whatever else the machine runs.
- CPU time per image, over the whole run, summed over every process that works: this one and the DataLoader's
  worker processes. That is the work a pipeline costs, and the load on the machine barely moves it. Starting the
  workers is in it (a cost of the torchvision recipe); more ``--batches`` make that share smaller.

The last line printed is the ratio of record: the torchvision recipe's CPU time per image over DeviceLoader's,
e.g. ``9.1x``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

try:
    import resource  # CPU time of this process and of its ended child processes (Linux, macOS)
except ImportError:  # Windows
    resource = None

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))  # timing.py, beside this script

from timing import load_average, synchronize  # noqa: E402

from course_utils import data as cud  # noqa: E402
from course_utils import env  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--help`` lists it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best one found)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per run (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up batches per run, not timed (default 3)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each pipeline, taking turns (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes for torchvision")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in this process (default 1)")
    parser.add_argument("--quick", action="store_true", help="a few small batches: checks that the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_size, args.batches, args.warmup, args.runs = 64, 2, 1, 2
    if min(args.batch_size, args.batches, args.runs, args.threads) < 1 or min(args.warmup, args.workers) < 0:
        parser.error(
            "--batch-size, --batches, --runs and --threads must be at least 1; --warmup and --workers 0 or more"
        )
    return args


def load_images() -> cud.ImageData:
    """CIFAR-10 (COURSE_DATA_DIR, data/ or a download); without it the benchmark stops and says what to put where."""
    try:
        return cud.load_cifar10(verbose=False)
    except cud.DatasetNotFound as error:
        raise SystemExit(str(error)) from None


def cpu_seconds() -> float:
    """CPU time (user + system) used so far by this process and by its child processes that have ended."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def wait_for_workers(timeout: float = 30.0) -> None:
    """Wait until every worker process has ended: only then does RUSAGE_CHILDREN hold its CPU time."""
    deadline = time.monotonic() + timeout
    while multiprocessing.active_children():  # it also reaps the workers that have ended
        if time.monotonic() > deadline:
            raise RuntimeError("DataLoader workers still run after the epoch: their CPU time would be missing.")
        time.sleep(0.01)


@dataclass
class Pipeline:
    """One side of the comparison: how to get its loader, and what its runs measured."""

    name: str
    make_loader: Callable[[], Iterable]
    images_per_s: list[float] = field(default_factory=list)
    cpu_us_per_image: list[float] = field(default_factory=list)


def run_once(pipeline: Pipeline, device: torch.device, warmup: int) -> None:
    """One epoch of ``pipeline``: images/s after the warm-up batches, and CPU µs per image over the whole epoch."""
    # Set-up that a training run does once (copying to the device, converting the images for PIL): not counted.
    loader = pipeline.make_loader()
    cpu_start = cpu_seconds()
    images = timed_from = 0
    for i, (x, y) in enumerate(loader):  # the DataLoader starts its workers here: in the CPU time, not the clock
        if i == warmup:
            synchronize(device)
            clock_start, timed_from = time.perf_counter(), images
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)  # a no-op for DeviceLoader
        images += len(y)
    synchronize(device)  # on a GPU the CPU may spin while it waits: that time is in the CPU time too
    elapsed = time.perf_counter() - clock_start
    # One full epoch was asked for, so no batch was made and thrown away. Deleting the loader ends its workers.
    del loader, x, y
    wait_for_workers()
    pipeline.cpu_us_per_image.append(1e6 * (cpu_seconds() - cpu_start) / images)
    pipeline.images_per_s.append((images - timed_from) / elapsed)


def print_table(pipelines: list[Pipeline]) -> None:
    """Each pipeline's median, minimum and maximum over the runs, wall clock and CPU time."""
    print(f"{'':36}{'images/s (wall clock)':^30}{'CPU µs/image (all processes)':^30}")
    print(f"{'pipeline':<36}" + f"{'median':>10}{'min':>10}{'max':>10}" * 2)
    for p in pipelines:
        ips, cpu = p.images_per_s, p.cpu_us_per_image
        row = f"{statistics.median(ips):>10,.0f}{min(ips):>10,.0f}{max(ips):>10,.0f}"
        row += f"{statistics.median(cpu):>10.1f}{min(cpu):>10.1f}{max(cpu):>10.1f}"
        print(f"{p.name:<36}{row}")


def make_pipelines(subset: cud.ImageData, args: argparse.Namespace, device: torch.device) -> list[Pipeline]:
    """DeviceLoader and the torchvision recipe, both over ``subset`` (one epoch of it per run)."""
    device_loader = cud.DeviceLoader(
        subset.train_images, subset.train_labels, args.batch_size, train=True, device=device,
        mean=subset.mean, std=subset.std, name=subset.name,
    )  # fmt: skip
    return [
        Pipeline(f"DeviceLoader (on {device.type})", lambda: device_loader),  # copied to the device once, here
        Pipeline(
            f"torchvision DataLoader ({args.workers} workers)",
            lambda: cud.torchvision_loader(subset, args.batch_size, train=True, num_workers=args.workers),
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    """Run both pipelines in turns and print the table, then the CPU-time ratio."""
    args = parse_args(argv)
    if resource is None:
        raise SystemExit("This benchmark reads CPU time with the `resource` module, which Windows lacks.")
    # One torch thread, on purpose. On a GPU, DeviceLoader's CPU work is queueing kernels, one thread's job. On a
    # CPU its batch is a few small tensor operations: split over threads they hand work back and forth, and a thread
    # that waits for the other spins. Where other processes hold the cores, that waiting multiplies DeviceLoader's
    # CPU time per image and makes it jump from run to run. A DataLoader's workers use one thread each whatever
    # this says. Try --threads 2 to see the difference.
    torch.set_num_threads(args.threads)
    device = env.pick_device(args.device)
    data = load_images()
    images = (args.warmup + args.batches) * args.batch_size
    if images > len(data.train_labels):
        raise SystemExit(f"(--warmup + --batches) x --batch-size = {images:,} images; CIFAR-10 has 50,000.")
    pipelines = make_pipelines(data.subset(train=images), args, device)

    print(f"device: {env.describe_device(device)}")
    print(load_average())
    print(f"torch threads in this process: {args.threads} (--threads); each DataLoader worker uses 1")
    print(
        f"{args.runs} runs per pipeline, taking turns; a run is one epoch of {images:,} images: "
        f"{args.warmup} warm-up + {args.batches} timed batches of {args.batch_size}"
    )
    for _ in range(args.runs):
        for pipeline in pipelines:
            run_once(pipeline, device, args.warmup)
    print_table(pipelines)

    if args.quick:
        print("--quick: too few images for the figures to mean anything, so no ratio is printed.")
        return
    device_cpu, torchvision_cpu = (p.cpu_us_per_image for p in pipelines)
    device_ips, torchvision_ips = (p.images_per_s for p in pipelines)
    print(load_average("end"))
    wall = statistics.median(device_ips) / statistics.median(torchvision_ips)
    print(f"Wall clock: DeviceLoader delivers {wall:.1f}x the torchvision recipe's images/s (medians).")
    worst = min(torchvision_cpu) / max(device_cpu)
    print(f"CPU time, least favourable pair of runs (DeviceLoader's most, torchvision's least): {worst:.1f}x")
    print("CPU time per image, torchvision recipe / DeviceLoader (medians; the recipe aims at 3x or more):")
    print(f"{statistics.median(torchvision_cpu) / statistics.median(device_cpu):.1f}x")


if __name__ == "__main__":
    main()
