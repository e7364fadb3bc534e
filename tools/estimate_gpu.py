"""How long each notebook's training would take at the gpu size: an estimate from counted FLOPs, not a measurement.

    python tools/estimate_gpu.py          # a table: notebook, training FLOPs, minutes on a T4, an A100, an H100
    python tools/estimate_gpu.py --write  # ... into the README's time table and each notebook's intro, beside the
                                          # cpu time measured by `tools/run_notebooks.py --size cpu --write`

For every network a notebook trains at the gpu size (``RUNS``: the values its ``env.pick(gpu=...)`` gives),

- training FLOPs = 3 x forward FLOPs per image x training images x epochs (the backward pass costs about twice
  the forward), plus the forward FLOPs of the test images after each epoch; the forward FLOPs are counted by
  ``torch.utils.flop_counter`` (a multiply-add is 2 FLOPs; BN, ReLU, pooling not counted);
- the time is those FLOPs at an assumed share (``GPUS``) of the GPU's dense 16-bit tensor peak (vendor
  datasheets), but never less than the host-bound floor: every operation of a training step (counted here, forward
  and backward) is one kernel launch of about 10 microseconds, so a step costs at least operations x 10 us.

Thin CIFAR networks (16 to 64 channels) keep a GPU far from its peak: ResNet-20 at a few thousand images
per second on a T4 is a few percent of it, and less on larger GPUs; the shares assumed here say so. Data
loading, checkpoints and start-up are not counted. Treat the results as the order of magnitude, and measure
on your GPU with ``tools/run_notebooks.py --size gpu``.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import course_utils as cu  # noqa: E402

GPUS = {  # name: (dense fp16/bf16 tensor-core peak in FLOP/s, from the vendor's datasheet; the share assumed here)
    "T4": (65e12, 0.06),
    "A100": (312e12, 0.03),
    "H100": (989e12, 0.02),
}
LAUNCH_SECONDS = 10e-6  # per kernel: what the host needs to launch one, the floor when kernels are tiny
CIFAR, MNIST = (3, 32, 32), (1, 28, 28)


@dataclass
class Run:
    """One network trained at the gpu size: ``count`` alike (seeds, variants of the same cost)."""

    build: Callable[[], nn.Module]
    shape: tuple[int, int, int]
    train_images: int
    test_images: int
    epochs: int
    batch_size: int
    count: int = 1


def _cifar(depth: int, **kwargs) -> Callable[[], nn.Module]:
    return lambda: cu.models.cifar_resnet(depth, **kwargs)


def _bottleneck26(groups: int, width_per_group: int) -> Callable[[], nn.Module]:
    """Notebook 08's ResNet-26 (groups 1) and ResNeXt-26 (32x4d), at the paper's widths."""
    kwargs = dict(num_classes=10, stem="cifar", groups=groups, width_per_group=width_per_group)
    return lambda: cu.models.ResNet(cu.models.Bottleneck, [2, 2, 2, 2], **kwargs)


RUNS = {  # notebook -> its gpu-size training runs
    "01": [
        Run(_cifar(20, residual=False), CIFAR, 50_000, 10_000, 20, 256),
        Run(_cifar(56, residual=False), CIFAR, 50_000, 10_000, 20, 256),
    ],
    "02": [Run(_cifar(20, residual=False), CIFAR, 50_000, 10_000, 10, 256, count=5)],  # 4 runs and noisy BN
    "03": [Run(_cifar(20), CIFAR, 50_000, 10_000, 20, 512, count=5)],
    "06": [Run(_cifar(20), CIFAR, 50_000, 10_000, 60, 512), Run(_cifar(20), CIFAR, 10_000, 2_000, 4, 512, count=3)],
    "07": [Run(_cifar(d, residual=r), CIFAR, 50_000, 10_000, 32, 128) for d in (20, 56) for r in (False, True)],
    "08": [Run(_bottleneck26(g, w), CIFAR, 50_000, 10_000, 15, 512) for g, w in ((1, 64), (32, 4))],
    "09": [
        Run(lambda: cu.models.cifar_densenet(growth_rate=12, block_config=(8, 8, 8)), CIFAR, 50_000, 10_000, 20, 512),
        Run(_cifar(20), CIFAR, 50_000, 10_000, 20, 512),
    ],
    "10": [
        Run(lambda: cu.models.resnet18(in_channels=1, num_classes=10, stem="cifar"), MNIST, 60_000, 10_000, 10, 256)
    ],
    "11": [Run(_cifar(20), CIFAR, 50_000, 10_000, 20, 512, count=4)],
    "12": [Run(_cifar(20), CIFAR, 50_000, 10_000, 30, 128)],
}


class _OpCounter(TorchDispatchMode):
    """Counts the operations dispatched: on a GPU, about one kernel launch each."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def step_operations(build: Callable[[], nn.Module], shape: tuple[int, int, int]) -> int:
    """Operations in one training step's forward and backward pass (the count does not depend on the batch size),
    plus one for the optimizer's step (fused on a GPU)."""
    with torch.device("meta"):
        model = build().train()
        x, y = torch.zeros(2, *shape), torch.zeros(2, dtype=torch.long)
    with _OpCounter() as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.ops + 1


def estimate(run: Run) -> tuple[float, dict[str, float]]:
    """``(training FLOPs, {gpu: seconds})`` of ``run`` (all ``count`` of them)."""
    with torch.device("meta"):
        model = run.build()
    forward = cu.inspect.count_flops(model, (1, *run.shape))
    flops = run.count * run.epochs * forward * (3 * run.train_images + run.test_images)
    steps = run.count * run.epochs * -(-run.train_images // run.batch_size)
    floor = steps * step_operations(run.build, run.shape) * LAUNCH_SECONDS
    return flops, {gpu: max(flops / (peak * share), floor) for gpu, (peak, share) in GPUS.items()}


@functools.cache
def notebook_estimates() -> dict[str, tuple[float, dict[str, float]]]:
    """``{notebook: (training FLOPs, {gpu: seconds})}`` for every notebook that trains."""
    table = {}
    for notebook, runs in RUNS.items():
        results = [estimate(run) for run in runs]
        table[notebook] = (sum(f for f, _ in results), {gpu: sum(s[gpu] for _, s in results) for gpu in GPUS})
    return table


ROOT = Path(__file__).resolve().parent.parent
TIME_LINE = "**Time:**"
TABLE_START, TABLE_END = "<!-- times: tools/estimate_gpu.py --write -->", "<!-- /times -->"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else "under 1 min"


def measured(nb: nbformat.NotebookNode) -> dict | None:
    """What ``tools/run_notebooks.py --size cpu --write`` recorded: minutes, device, torch version; or None."""
    course = nb.metadata.get("course", {})
    return course if course.get("size") == "cpu" else None


def time_line(number: str, nb: nbformat.NotebookNode) -> str:
    """The intro's line: the cpu time measured, the gpu time estimated."""
    run = measured(nb)
    cpu = f"{run['minutes']:.1f} min at the cpu size on a {run['device']} (measured)" if run else "not measured yet"
    if number not in RUNS:
        return f"{TIME_LINE} {cpu}; nothing is trained, so a GPU adds little."
    seconds = notebook_estimates()[number][1]
    gpu = ", ".join(f"{_minutes(seconds[name])} on {'an' if name[0] in 'AH' else 'a'} {name}" for name in GPUS)
    return f"{TIME_LINE} {cpu}; at the gpu size about {gpu} (estimated from counted FLOPs: see the README)."


def readme_table(measured_runs: dict[str, dict | None]) -> str:
    """The README's table of times, one row per notebook (``measured_runs``: name -> :func:`measured`)."""
    rows = [f"| notebook | cpu size, measured | gpu size, estimated: {', '.join(GPUS)} |", "| --- | --- | --- |"]
    for name, run in measured_runs.items():
        cpu = f"{run['minutes']:.1f} min" if run else "not measured"
        number = name[:2]
        gpu = (
            " / ".join(_minutes(notebook_estimates()[number][1][g]) for g in GPUS) if number in RUNS else "no training"
        )
        rows.append(f"| {name} | {cpu} | {gpu} |")
    runs = [run for run in measured_runs.values() if run]
    rows.append(f"| the whole course | {sum(run['minutes'] for run in runs):.1f} min | |")
    devices = sorted({f"{run['device']}, torch {run['torch']}" for run in runs})
    shares = ", ".join(f"{g} {share:.0%} of {peak / 1e12:.0f} TFLOP/s" for g, (peak, share) in GPUS.items())
    rows += [
        "",
        f"Measured on: {'; '.join(devices) or 'nothing yet'}, with `python tools/run_notebooks.py --size cpu --write`.",
    ]
    rows += [
        f"Estimated, never measured, by `python tools/estimate_gpu.py`: {shares} of the dense 16-bit peak, "
        f"and at least {LAUNCH_SECONDS * 1e6:.0f} µs per operation of a training step."
    ]
    return "\n".join(rows)


def updated(write: bool) -> list[str]:
    """Bring the intros' time lines and the README's table up to date (``write``); return what was stale."""
    stale, measured_runs = [], {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        measured_runs[path.stem] = measured(nb)
        intro, line = nb.cells[0], time_line(path.stem[:2], nb)
        kept = [text for text in intro.source.split("\n\n") if not text.startswith(TIME_LINE)]
        source = "\n\n".join([*kept, line])
        if source != intro.source:
            stale.append(path.name)
            if write:
                intro.source = source
                path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pattern = re.compile(re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END), re.S)
    table = f"{TABLE_START}\n{readme_table(measured_runs)}\n{TABLE_END}"
    if pattern.search(readme) is None or pattern.search(readme).group(0) != table:
        stale.append("README.md")
        if write:
            (ROOT / "README.md").write_text(pattern.sub(lambda _: table, readme), encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update the README's table and the notebooks' intros")
    args = parser.parse_args(argv)
    print(f"{'notebook':9s} {'training FLOPs':>15s} " + " ".join(f"{gpu + ' (est.)':>12s}" for gpu in GPUS))
    for notebook, (flops, seconds) in notebook_estimates().items():
        print(f"{notebook:9s} {flops:15.2e} " + " ".join(f"{seconds[gpu] / 60:10.1f} min" for gpu in GPUS))
    shares = ", ".join(f"{gpu} {share:.0%} of {peak / 1e12:.0f} TFLOP/s" for gpu, (peak, share) in GPUS.items())
    print(f"Assumed: {shares}; at least {LAUNCH_SECONDS * 1e6:.0f} us per operation of a step.")
    if args.write:
        for name in updated(write=True):
            print(f"updated: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
