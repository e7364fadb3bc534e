"""Train a CIFAR ResNet on several processes at once with DistributedDataParallel (notebook 12).

    python scripts/train_ddp.py --epochs 3                                     # one process (one GPU, or the CPU)
    torchrun --nproc_per_node=2 scripts/train_ddp.py --epochs 3 --sync-bn      # two processes ("ranks")

Every rank runs this same file. torchrun starts the processes and gives each its RANK, LOCAL_RANK and
WORLD_SIZE in environment variables; started without torchrun, the script is a single rank (world size 1).
On GPUs the ranks talk through NCCL (one GPU per rank), on the CPU through gloo.

- Data: every rank builds the same on-device loader with the *global* batch (``--batch-size`` x ranks) and
  keeps its own slice of each batch, so the images of a step do not depend on the number of ranks.
- Learning rate: ``--lr`` is for 128 images per step; the run uses it times (effective batch / 128), the
  linear scaling rule of Goyal et al. 2017 (arXiv:1706.02677), with a cosine decay over the epochs.
- Checkpoints (``--checkpoint``): written by rank 0 only, atomically, after every epoch: the unwrapped
  model's state dict, the optimizer, the epoch and the recipe. ``--resume`` continues one on any number of ranks.
- Report (``--out``): a JSON file written by rank 0 with the history and, gathered from every rank, a hash of
  its weights and its BatchNorm running statistics.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import course_utils as cu

REFERENCE_BATCH = 128  # He et al. 2015 train on CIFAR-10 with lr 0.1 at 128 images per step
RECIPE = ("depth", "epochs", "train_images", "test_images", "lr", "weight_decay", "sync_bn", "seed")
"""What a checkpoint must share with the run that resumes it. The number of ranks and the batch per rank may
change: the effective batch then changes, and the learning rate with it (the linear scaling rule)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (every size is explicit: the notebook chooses them)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the whole run (default 3)")
    parser.add_argument("--train-images", type=int, default=None, help="a stratified subset (default: all 50,000)")
    parser.add_argument("--test-images", type=int, default=1000, help="test images rank 0 evaluates (default 1000)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per step on EACH rank (default 128)")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate for 128 images per step (default 0.1)")
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="SGD weight decay (default 5e-4)")
    parser.add_argument("--depth", type=int, default=20, help="CIFAR ResNet depth 6n+2 (default 20)")
    parser.add_argument("--sync-bn", action="store_true", help="BatchNorm statistics over all ranks' images")
    parser.add_argument("--seed", type=int, default=0, help="initial weights, subset, shuffle and crops (default 0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="auto: CUDA if any")
    parser.add_argument("--checkpoint", type=Path, default=None, help="where rank 0 saves after every epoch")
    parser.add_argument("--resume", action="store_true", help="continue the run in --checkpoint if it exists")
    parser.add_argument("--stop-after", type=int, default=None, help="stop after this epoch, as if interrupted")
    parser.add_argument("--out", type=Path, default=None, help="where rank 0 writes the JSON report")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error(f"--epochs and --batch-size must be at least 1; got {args.epochs} and {args.batch_size}.")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a positive number; got {args.lr}.")
    if args.stop_after is not None and args.stop_after < 1:
        parser.error(f"--stop-after must be an epoch number, at least 1; got {args.stop_after}.")
    if args.stop_after is not None and args.checkpoint is None:
        parser.error("--stop-after stops a run so that it can be resumed: pass --checkpoint PATH too.")
    if args.resume and args.checkpoint is None:
        parser.error("--resume continues the run saved in --checkpoint: pass --checkpoint PATH too.")
    return args


def start_ranks(device_choice: str) -> tuple[int, int, torch.device]:
    """Join the other ranks (if torchrun started several) and pick this rank's device: ``(rank, world, device)``."""
    launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ  # torchrun sets both; plain python neither
    rank = int(os.environ.get("RANK", 0))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
    if use_cuda:
        local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        if torch.cuda.device_count() < local_ranks:
            raise SystemExit(
                f"{local_ranks} ranks on this machine but {torch.cuda.device_count()} CUDA GPU(s): NCCL needs one "
                "GPU per rank. Start fewer ranks, or pass --device cpu to run them on the CPU with gloo."
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device(device_choice if device_choice == "mps" else "cpu")
    if device.type == "mps" and launched:
        raise SystemExit("Apple GPUs have no torch.distributed backend: run one process, or pass --device cpu.")
    if not launched:
        return 0, 1, device
    dist.init_process_group("nccl" if use_cuda else "gloo", device_id=device if use_cuda else None)
    return rank, dist.get_world_size(), device


class SumOverRanks(torch.autograd.Function):
    """``x`` summed over all ranks, on every rank. Its gradient is a sum over the ranks too: each rank's loss
    depends on every rank's ``x`` through the sum."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        total = x.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """What ``nn.SyncBatchNorm`` computes, for ranks on the CPU (PyTorch's, and DDP with it, need GPUs).

    The same statistics as a BatchNorm over the images of all ranks together, from two all-reduces: each
    channel's count and sum (the mean), then its sum of squared deviations from that mean (the variance).
    The sums are autograd operations (:class:`SumOverRanks`), so the backward pass is global too.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)  # evaluation, or a single rank: a plain BatchNorm2d
        dims, shape = (0, 2, 3), (1, -1, 1, 1)
        total = SumOverRanks.apply(torch.cat([x.new_tensor([x.numel() / x.shape[1]]), x.sum(dims)]))
        count, mean = total[0], total[1:] / total[0]
        centered = x - mean.view(shape)
        # Two passes (mean first, then squared deviations), so the variance is as accurate as on one rank.
        var = SumOverRanks.apply((centered * centered).sum(dims)) / count
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * count / (count - 1), self.momentum)  # unbiased, as nn.BatchNorm2d keeps it
            self.num_batches_tracked.add_(1)
        return centered * torch.rsqrt(var + self.eps).view(shape) * self.weight.view(shape) + self.bias.view(shape)


def build_model(depth: int, sync_bn: bool, device: torch.device, seed: int) -> nn.Module:
    """A CIFAR ResNet, its BatchNorm layers made SyncBatchNorm if asked, on ``device``."""
    torch.manual_seed(seed)  # DDP copies rank 0's weights anyway; the seed makes 1-rank and 2-rank runs start alike
    model = cu.models.cifar_resnet(depth)
    if sync_bn and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    elif sync_bn:
        for module in model.modules():
            if type(module) is nn.BatchNorm2d:
                module.__class__ = CpuSyncBatchNorm  # a subclass with its own forward: state and names stay
    return model.to(device)


def load_data(args: argparse.Namespace, rank: int, world: int, device: torch.device) -> tuple[Any, Any]:
    """The train loader (global batches, every rank alike) and the test loader, on ``device``."""
    if rank > 0:
        dist.barrier()  # rank 0 loads (downloads, decodes, caches) first; the others then read its cache
    data = cu.data.load_cifar10(verbose=False).subset(train=args.train_images, test=args.test_images, seed=args.seed)
    if rank == 0 and world > 1:
        dist.barrier()
    global_batch = args.batch_size * world
    if global_batch > len(data.train_labels):
        raise SystemExit(
            f"{len(data.train_labels)} training images make no batch of {args.batch_size} per rank x {world} "
            f"ranks = {global_batch}: pass more --train-images or a smaller --batch-size."
        )
    common = dict(device=device, mean=data.mean, std=data.std, name=data.name)
    train = cu.data.DeviceLoader(
        data.train_images, data.train_labels, global_batch, train=True, seed=args.seed, **common
    )
    test = cu.data.DeviceLoader(data.test_images, data.test_labels, 500, train=False, **common)
    return train, test


def learning_rate(peak: float, position: float, epochs: int) -> float:
    """Cosine decay from ``peak`` to 0, at ``position`` epochs into the run.

    A function of the position in epochs, not of the step count (what torch's schedulers count), because the
    number of steps in an epoch depends on the number of ranks and a run may resume on another number.
    """
    return peak * 0.5 * (1 + math.cos(math.pi * position / epochs))


def saved_run(args: argparse.Namespace) -> dict | None:
    """The checkpoint to continue, checked against this run's recipe before anything slow; ``None``: start afresh."""
    if args.checkpoint is None or not args.checkpoint.exists():
        return None
    if not args.resume:
        raise SystemExit(f"{args.checkpoint} exists: pass --resume to continue it, or another --checkpoint path.")
    saved = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    old = saved.get("recipe", {})
    changed = {key: (old.get(key), getattr(args, key)) for key in RECIPE if old.get(key) != getattr(args, key)}
    if changed:
        what = "; ".join(f"{key}: saved {was!r}, now {now!r}" for key, (was, now) in changed.items())
        raise SystemExit(f"{args.checkpoint} holds another recipe ({what}). Use the saved values or a new path.")
    return saved


def restore(saved: dict | None, args: argparse.Namespace, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The run so far: ``saved`` loaded into ``model`` and ``optimizer`` (on their device), or a fresh start."""
    if saved is None:
        return {"epoch": 0, "history": [], "recipe": {key: getattr(args, key) for key in RECIPE}}
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])  # moves SGD's momentum buffers to the parameters' device
    return {key: saved[key] for key in ("epoch", "history", "recipe")}


def save(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, run: dict) -> None:
    """Write the checkpoint atomically: to a temporary file first, then renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save({**run, "model": model.state_dict(), "optimizer": optimizer.state_dict()}, temporary)
    os.replace(temporary, path)  # an interruption leaves the old checkpoint or the new one, never half of one


def train_one_epoch(
    model: nn.Module,
    loader: Any,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    peak_lr: float,
    args: argparse.Namespace,
) -> dict[str, float]:
    """One epoch on this rank's slices of the global batches; loss and accuracy summed over all ranks."""
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    mine = slice(rank * args.batch_size, (rank + 1) * args.batch_size)
    model.train()
    loader.set_epoch(epoch)  # the same shuffle and crops on every rank: (seed, epoch) decide them
    totals = torch.zeros(3, device=next(model.parameters()).device)  # loss sum, correct, images
    start, steps = time.perf_counter(), len(loader)
    for step, (images, labels) in enumerate(loader):
        images, labels = images[mine], labels[mine]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(peak_lr, epoch + step / steps, args.epochs)
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # DDP averages the gradients over the ranks here, bucket by bucket, while backward runs
        optimizer.step()  # the same averaged gradient on every rank: the weights stay identical
        totals += torch.stack(
            [loss.detach() * len(labels), (logits.argmax(1) == labels).sum(), labels.new_tensor(len(labels))]
        )
    if world > 1:
        dist.all_reduce(totals)
    seconds = time.perf_counter() - start
    loss_sum, correct, images_seen = totals.tolist()
    return {
        "epoch": epoch + 1,
        "train_loss": loss_sum / images_seen,
        "train_acc": correct / images_seen,
        "lr": optimizer.param_groups[0]["lr"],
        "world_size": world,
        "effective_batch_size": args.batch_size * world,
        "images_per_s": images_seen / seconds,
        "epoch_time": seconds,
    }


def state_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """A hash of named tensors: equal hashes mean bitwise-equal values."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def rank_summary(model: nn.Module) -> dict:
    """What this rank holds: hashes of its weights and of its whole state, and its BN running statistics."""
    bn = (nn.BatchNorm2d, nn.SyncBatchNorm)  # CpuSyncBatchNorm is a BatchNorm2d
    return {
        "rank": dist.get_rank() if dist.is_initialized() else 0,
        "weights_sha256": state_sha256(dict(model.named_parameters())),
        "state_sha256": state_sha256(model.state_dict()),
        "bn": {
            name: {"running_mean": m.running_mean.tolist(), "running_var": m.running_var.tolist()}
            for name, m in model.named_modules()
            if isinstance(m, bn)
        },
    }


def gather_to_rank0(summary: dict) -> list[dict]:
    """Every rank's summary, on rank 0 (an empty list elsewhere)."""
    if not dist.is_initialized():
        return [summary]
    gathered = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(summary, gathered, dst=0)
    return gathered or []


def write_json(path: Path, report: dict) -> None:
    """Write ``report`` atomically, like the checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(report, indent=1))
    os.replace(temporary, path)


def describe(args: argparse.Namespace, world: int, device: torch.device, peak_lr: float, loader: Any) -> str:
    """The run in one line: ranks, backend, data, batches, learning rate."""
    backend = dist.get_backend() if dist.is_initialized() else "one process, no process group"
    batch, data = args.batch_size * world, loader.recipe
    return (
        f"{world} rank(s) ({backend}, {device.type}); {data['images']:,} {data['dataset']} training images, "
        f"batch {args.batch_size} per rank = {batch} in all, {len(loader)} step(s) per epoch; "
        f"lr {args.lr} x {batch}/{REFERENCE_BATCH} = {peak_lr:.4g} (linear scaling rule), cosine decay; "
        f"SyncBatchNorm {'on' if args.sync_bn else 'off'}"
    )


def epoch_line(record: dict, epochs: int) -> str:
    """One epoch's results in one line."""
    return (
        f"epoch {record['epoch']}/{epochs} on {record['world_size']} rank(s): train loss {record['train_loss']:.3f}, "
        f"acc {record['train_acc']:.1%}; test acc {record['test_acc']:.1%}; lr {record['lr']:.4f}; "
        f"{record['images_per_s']:.0f} images/s"
    )


def main(argv: list[str] | None = None) -> None:
    """Train, checkpoint from rank 0, and report (see the module's docstring)."""
    args = parse_args(argv)
    saved = saved_run(args)  # every rank reads the checkpoint (one machine, or a shared disk)
    rank, world, device = start_ranks(args.device)
    say = print if rank == 0 else (lambda *_: None)  # one voice: the other ranks would print the same lines
    train_loader, test_loader = load_data(args, rank, world, device)
    model = build_model(args.depth, args.sync_bn, device, args.seed)
    optimizer = torch.optim.SGD(
        model.parameters(), args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay
    )
    run = restore(saved, args, model, optimizer)
    start_state = state_sha256(model.state_dict())
    # DDP broadcasts rank 0's weights and buffers to the others, then hooks the gradient all-reduce into backward.
    ddp = (
        DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if world > 1
        else model
    )
    peak_lr = args.lr * args.batch_size * world / REFERENCE_BATCH  # the linear scaling rule
    say(describe(args, world, device, peak_lr, train_loader))
    if run["epoch"]:
        say(f"resumed {args.checkpoint}: {run['epoch']} of {args.epochs} epochs done")
    stop = min(args.epochs, args.stop_after or args.epochs)
    for epoch in range(run["epoch"], stop):
        record = train_one_epoch(ddp, train_loader, optimizer, epoch, peak_lr, args)
        if not math.isfinite(record["train_loss"]):  # every rank sees the same summed loss, and stops alike
            raise SystemExit(
                f"training diverged in epoch {epoch + 1} (loss {record['train_loss']}); the checkpoint, if any, still "
                f"holds epoch {run['epoch']}. Try a lower --lr."
            )
        if rank == 0:  # the weights are the same on every rank: one evaluation and one checkpoint are enough
            record["test_acc"] = cu.train.evaluate(model, test_loader)["acc"]
            say(epoch_line(record, args.epochs))
        run = {**run, "epoch": epoch + 1, "history": [*run["history"], record]}
        if rank == 0 and args.checkpoint is not None:
            save(args.checkpoint, model, optimizer, run)
    if run["epoch"] < args.epochs:
        say(
            f"stopped after epoch {stop} of {args.epochs} (--stop-after); --resume with the same --checkpoint continues"
        )
    ranks = gather_to_rank0(rank_summary(model))  # a collective: every rank takes part
    if rank == 0 and args.out is not None:
        settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
        report = {"args": settings, "world_size": world, "device": device.type, "peak_lr": peak_lr}
        report.update(start_state_sha256=start_state, epochs_done=run["epoch"], history=run["history"], ranks=ranks)
        write_json(args.out, report)
        say(f"report: {args.out}")
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
