"""The environment a notebook runs in: device, seeds, Colab, smoke mode and paths.

Every notebook starts with ``env = course_utils.env.setup()``, so that the same
notebook does the real thing on a GPU and stays tiny (``COURSE_SMOKE=1``) in CI.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The repository checkout (or, when installed from a wheel, the site-packages dir)."""


def is_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


DRIVE_RUNS_DIR = Path("/content/drive/MyDrive/resnet-step-by-step/runs")


def runs_dir(save_to_drive: bool = False) -> Path:
    """Where training runs keep their checkpoints and histories: ``runs/`` in the course's folder
    (:func:`course_dir`), or, on Colab with ``save_to_drive=True``, a folder on your Google Drive, which
    survives a disconnected session (Colab asks for permission to mount it)."""
    if save_to_drive and is_colab():
        from google.colab import drive  # only importable on Colab

        drive.mount(str(DRIVE_RUNS_DIR.parents[2]))  # /content/drive
        return DRIVE_RUNS_DIR
    local = course_dir() / "runs"
    if save_to_drive:
        print(f"save_to_drive only applies on Colab; the checkpoints stay in {local}")
    return local


def is_smoke() -> bool:
    """True when ``COURSE_SMOKE=1``: every notebook shrinks to a CPU-sized run (CI)."""
    return os.environ.get("COURSE_SMOKE", "0").strip().lower() in {"1", "true", "yes", "on"}


def course_dir() -> Path:
    """Where the course keeps what it writes: caches, checkpoints, histories.

    In a checkout this is the repository's ``data/`` (git-ignored). When
    ``course_utils`` is pip-installed (Colab) there is no checkout, so it is
    ``./data`` under the notebook's working directory. ``COURSE_CACHE_DIR``
    overrides both.
    """
    if "COURSE_CACHE_DIR" in os.environ:
        path = Path(os.environ["COURSE_CACHE_DIR"]).expanduser()
    elif (REPO_ROOT / "course_utils").is_dir() and (REPO_ROOT / "pyproject.toml").is_file():
        path = REPO_ROOT / "data"
    else:
        path = Path.cwd() / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Where datasets are looked for before any download (``COURSE_DATA_DIR``).

    Defaults to :func:`course_dir`. It may be read-only: nothing is written here
    except by torchvision's own download, and only when it is the default.
    """
    value = os.environ.get("COURSE_DATA_DIR")
    return Path(value).expanduser().resolve() if value else course_dir()


def pick_device(prefer: str | None = None) -> torch.device:
    """The best device available: CUDA, then Apple MPS, then CPU.

    ``prefer`` (or ``COURSE_DEVICE``) forces one, e.g. ``"cpu"``; asking for a
    device that is not there raises an error saying what was found instead.
    """
    prefer = prefer or os.environ.get("COURSE_DEVICE")
    if prefer:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"Asked for device {prefer!r}, but PyTorch sees no CUDA GPU. "
                "On Colab: Runtime > Change runtime type > GPU, then rerun. "
                "Elsewhere, pass prefer='cpu' or unset COURSE_DEVICE."
            )
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"Asked for device {prefer!r}, but Apple MPS is not available here.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def describe_device(device: torch.device) -> str:
    """One line saying what hardware was found and, on CPU, how to get a GPU."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return (
            f"GPU: {props.name} ({props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor})"
        )
    if device.type == "mps":
        return "GPU: Apple silicon (MPS)"
    hint = (
        "On Colab: Runtime > Change runtime type > T4 GPU, then rerun this cell."
        if is_colab()
        else "Training will be slow; smoke mode (COURSE_SMOKE=1) keeps every run small."
    )
    return f"No GPU found: running on the CPU ({os.cpu_count()} cores). {hint}"


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Env:
    """What :func:`setup` found; notebooks read their sizes from ``smoke``."""

    device: torch.device
    smoke: bool
    colab: bool
    data_dir: Path
    cache_dir: Path

    def pick(self, full, smoke):
        """``smoke`` in smoke mode, else ``full``: ``epochs = env.pick(30, 1)``."""
        return smoke if self.smoke else full


def setup(seed: int = 0, device: str | None = None, quiet: bool = False) -> Env:
    """Seed, choose a device and print one line each on what was found.

    In smoke mode the device is the CPU, whatever is installed, so CI runs are
    the same everywhere.
    """
    seed_everything(seed)
    smoke = is_smoke()
    dev = pick_device("cpu" if smoke and device is None else device)
    env = Env(device=dev, smoke=smoke, colab=is_colab(), data_dir=data_dir(), cache_dir=course_dir())
    if dev.type == "cuda":
        # The course's batches keep one shape, so cuDNN may time its algorithms once per shape and keep the fastest.
        torch.backends.cudnn.benchmark = True
    if not quiet:
        print(f"torch {torch.__version__}, python {sys.version.split()[0]}" + (", on Colab" if env.colab else ""))
        print(describe_device(dev))
        if smoke:
            print("COURSE_SMOKE=1: smoke mode, every run is cut to a few CPU-sized batches.")
    return env
