"""Where a notebook runs: device, seeds, Colab, paths, and the *size* of its runs (``env.pick``): ``gpu``, the full
schedule for a Colab T4 (on a GPU); ``cpu``, a real result in about 10 minutes per notebook on 2 cores (otherwise);
``smoke``, seconds (``COURSE_SMOKE=1``). ``COURSE_SIZE`` overrides the choice."""

from __future__ import annotations

import datetime
import os
import platform
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

SIZES = ("smoke", "cpu", "gpu")
REPO_ROOT = Path(__file__).resolve().parent.parent
DRIVE_RUNS_DIR = Path("/content/drive/MyDrive/resnet-step-by-step/runs")


def is_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def course_size(device: torch.device | None = None) -> str:
    """The size runs are scaled to: ``COURSE_SIZE``, else ``smoke`` under ``COURSE_SMOKE=1``,
    else ``gpu`` on a CUDA or Apple GPU and ``cpu`` otherwise."""
    value = os.environ.get("COURSE_SIZE", "").strip().lower()
    if value:
        if value not in SIZES:
            raise ValueError(
                f"COURSE_SIZE must be one of {', '.join(SIZES)}; got {value!r}. Unset it to choose by device."
            )
        return value
    if os.environ.get("COURSE_SMOKE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return "smoke"
    device = device or pick_device()
    return "gpu" if device.type in ("cuda", "mps") else "cpu"


def course_dir() -> Path:
    """Where the course writes caches and checkpoints: the checkout's ``data/`` (git-ignored), or ``./data`` when
    ``course_utils`` is pip-installed (Colab). ``COURSE_CACHE_DIR`` overrides both."""
    if "COURSE_CACHE_DIR" in os.environ:
        path = Path(os.environ["COURSE_CACHE_DIR"]).expanduser()
    elif (REPO_ROOT / "course_utils").is_dir() and (REPO_ROOT / "pyproject.toml").is_file():
        path = REPO_ROOT / "data"
    else:
        path = Path.cwd() / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Where datasets are looked for before any download: ``COURSE_DATA_DIR``, else :func:`course_dir`."""
    value = os.environ.get("COURSE_DATA_DIR")
    return Path(value).expanduser().resolve() if value else course_dir()


def runs_dir(save_to_drive: bool = False) -> Path:
    """Where training runs keep checkpoints: ``runs/`` under :func:`course_dir`, or, on Colab with
    ``save_to_drive=True``, a folder on your Google Drive that survives a disconnect."""
    if save_to_drive and is_colab():
        from google.colab import drive  # only importable on Colab

        drive.mount(str(DRIVE_RUNS_DIR.parents[2]))  # /content/drive
        return DRIVE_RUNS_DIR
    local = course_dir() / "runs"
    if save_to_drive:
        print(f"save_to_drive only applies on Colab; the checkpoints stay in {local}")
    return local


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA, then Apple MPS, then the CPU; ``prefer`` (or ``COURSE_DEVICE``) forces one."""
    prefer = prefer or os.environ.get("COURSE_DEVICE")
    mps = torch.backends.mps.is_available()
    if prefer:
        device = torch.device(prefer)
        if (device.type == "cuda" and not torch.cuda.is_available()) or (device.type == "mps" and not mps):
            raise RuntimeError(
                f"Asked for device {prefer!r}, but PyTorch cannot use it here. On Colab: Runtime > Change "
                "runtime type > GPU, then rerun. Elsewhere, pass prefer='cpu' or unset COURSE_DEVICE."
            )
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")


def describe_device(device: torch.device) -> str:
    """The hardware in one line: the GPU's name and memory, or the CPU's model and cores."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"GPU {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    name = names[0] if names else platform.processor() or platform.machine()
    return f"CPU {name} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Env:
    """What :func:`setup` found. Notebooks size their runs with :meth:`pick`."""

    device: torch.device
    size: str
    colab: bool
    data_dir: Path
    cache_dir: Path

    def pick(self, *, gpu: Any, cpu: Any, smoke: Any) -> Any:
        """The value for this size: ``epochs = env.pick(gpu=30, cpu=8, smoke=1)``."""
        return {"gpu": gpu, "cpu": cpu, "smoke": smoke}[self.size]


_current: Env | None = None
_started = time.perf_counter()  # when setup() last ran: finish() reports the time since


def current() -> Env | None:
    """The :class:`Env` of the last :func:`setup` call in this process (``None`` before it)."""
    return _current


def setup(seed: int = 0, device: str | None = None, quiet: bool = False) -> Env:
    """Seed, choose a device and a size, and print where the notebook runs. At the smoke size the device is the CPU,
    whatever is installed, so test runs are alike everywhere."""
    global _current, _started
    _started = time.perf_counter()
    seed_everything(seed)
    size = course_size(torch.device(device) if device else None)
    dev = pick_device("cpu" if size == "smoke" and device is None else device)
    _current = Env(device=dev, size=size, colab=is_colab(), data_dir=data_dir(), cache_dir=course_dir())
    if dev.type == "cuda":
        # The course's batches keep one shape, so cuDNN may time its algorithms once and keep the fastest.
        torch.backends.cudnn.benchmark = True
    if not quiet:
        today = datetime.date.today().isoformat()
        print(
            f"Size {size!r} on {describe_device(dev)}; torch {torch.__version__}, Python "
            f"{sys.version.split()[0]}{', Colab' if _current.colab else ''}; {today}."
        )
        if size == "cpu" and dev.type == "cpu" and is_colab():
            print("No GPU: Runtime > Change runtime type > T4 GPU gives the full size.")
    return _current


def finish() -> None:
    """Print how long the notebook took since :func:`setup`, and where: the last line of every notebook."""
    seconds = time.perf_counter() - _started
    took = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
    where = f"at size {_current.size!r} on {describe_device(_current.device)}" if _current else "before setup()"
    print(f"This notebook ran in {took} {where}.")
