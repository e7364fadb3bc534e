"""How fast are augmented batches made? DeviceLoader against the usual torchvision DataLoader recipe.

    python benchmarks/data_pipeline.py                  # best device found, 20 batches of 512
    python benchmarks/data_pipeline.py --device cpu --workers 4 --batches 50

Both pipelines produce the same thing: a normalised float batch of randomly
cropped and flipped CIFAR-10 images, on the device. For the torchvision recipe
the copy to the device is timed too, as a training loop has to make it.
Warm-up batches (worker start-up, first CUDA kernels) are not timed. The last
line printed is how many times faster DeviceLoader is, e.g. ``23.4x``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from course_utils import data as cud  # noqa: E402
from course_utils import env  # noqa: E402

WARMUP_BATCHES = 3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best one found)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per pipeline")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes for torchvision")
    return parser.parse_args()


def load_images() -> cud.ImageData:
    """CIFAR-10 (COURSE_DATA_DIR, data/ or a download); without it the benchmark stops and says what to put where."""
    try:
        return cud.load_cifar10()
    except cud.DatasetNotFound as error:
        raise SystemExit(str(error)) from None


def forever(loader: Iterable) -> Iterator:
    """Batches without end: one epoch after the other, so --batches may exceed an epoch."""
    while True:
        yield from loader


def synchronize(device: torch.device) -> None:
    # GPU work is queued, not finished, when Python moves on: wait for it before reading the clock.
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def images_per_second(loader: Iterable, device: torch.device, batches: int) -> float:
    """Augmented images per second that ``loader`` delivers onto ``device``, warm-up not counted."""
    stream = forever(loader)
    for _ in range(WARMUP_BATCHES):
        x, y = next(stream)
        x.to(device), y.to(device)
    synchronize(device)
    start = time.perf_counter()
    images = 0
    for _ in range(batches):
        x, y = next(stream)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)  # a no-op for DeviceLoader
        images += len(y)
    synchronize(device)
    return images / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    device = env.pick_device(args.device)
    data = load_images()
    device_loader = cud.DeviceLoader(
        data.train_images,
        data.train_labels,
        args.batch_size,
        train=True,
        device=device,
        mean=data.mean,
        std=data.std,
        name=data.name,
    )
    torchvision_loader = cud.torchvision_loader(data, args.batch_size, train=True, num_workers=args.workers)

    print(f"device: {env.describe_device(device)}")
    print(f"{args.batches} timed batches of {args.batch_size} per pipeline, after {WARMUP_BATCHES} warm-up batches")
    results = {
        f"DeviceLoader (on {device.type})": images_per_second(device_loader, device, args.batches),
        f"torchvision DataLoader ({args.workers} workers)": images_per_second(torchvision_loader, device, args.batches),
    }
    print(f"{'pipeline':<36}{'images/s':>12}{'ms/batch':>10}")
    for name, rate in results.items():
        print(f"{name:<36}{rate:>12,.0f}{1000 * args.batch_size / rate:>10.1f}")
    device_rate, torchvision_rate = results.values()
    print("DeviceLoader speed-up over the torchvision recipe:")
    print(f"{device_rate / torchvision_rate:.1f}x")


if __name__ == "__main__":
    main()
