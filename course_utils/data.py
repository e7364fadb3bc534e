"""Datasets and a batch iterator that keeps the whole dataset on the device.

Loading: :func:`load_cifar10` and :func:`load_mnist` return an :class:`ImageData`
(uint8 tensors, class names, where it came from). They look, in order, in

1. ``COURSE_DATA_DIR`` (``course_utils.env.data_dir()``), then the course's own
   ``data/`` folder: torchvision's files (``cifar-10-batches-py/``,
   ``cifar-10-python.tar.gz``, ``MNIST/raw/``), or image folders
   ``train/<class>/*.jpg`` + ``test/<class>/*.jpg``, as a folder or a ``.tar.gz``;
2. torchvision's checksum-verified download into ``data/``;
3. a small generated stand-in (:func:`synthetic_dataset`), only in smoke mode or
   when asked for, and always announced. Otherwise :class:`DatasetNotFound` says
   where it looked and what to put where.

Decoding 60,000 JPEGs takes about 20 s, so decoded image folders are cached as a
``.pt`` file under ``data/cache/`` and the next load takes a second or two.

Batches: :class:`DeviceLoader` copies the uint8 images to the GPU once and does
the augmentation (random crop with zero padding, horizontal flip) there, for a
whole batch at a time. :func:`torchvision_loader` builds the usual
``DataLoader`` + ``transforms`` recipe, so the two can be compared.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import re
import shutil
import tarfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms
from torchvision.datasets.utils import check_integrity, extract_archive

from . import env
from ._files import atomic_write

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MNIST_CLASSES = [str(digit) for digit in range(10)]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
CACHE_VERSION = 2  # bump when the cache file's layout changes, so old files are not read


# ---------------------------------------------------------------------------
# The dataset container
# ---------------------------------------------------------------------------


@dataclass(repr=False, eq=False)  # eq: comparing tensors with == gives no single True/False
class ImageData:
    """A labelled image dataset held as uint8 tensors, split into train and test."""

    train_images: torch.Tensor  # uint8, (N, C, H, W)
    train_labels: torch.Tensor  # int64, (N,)
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    name: str  # "cifar10", "mnist", "synthetic-cifar10", ...
    source: str  # one sentence: where the images came from
    synthetic: bool = False

    def __post_init__(self) -> None:
        _check_images_labels(self.train_images, self.train_labels, what="train")
        _check_images_labels(self.test_images, self.test_labels, what="test")

    @cached_property
    def _channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return _channel_mean_std(self.train_images)

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean of the train images scaled to [0, 1] (what ``Normalize`` subtracts)."""
        return self._channel_stats[0]

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel standard deviation of the train images scaled to [0, 1]."""
        return self._channel_stats[1]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.train_images.shape[1:])

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> ImageData:
        """A random subset with every class in its original proportion; the same ``seed`` gives the same subset.

        ``None`` keeps a split whole. Useful to make a quick run quicker:
        ``data.subset(train=5000, test=1000)``.
        """
        generator = torch.Generator().manual_seed(seed)
        train_idx = _stratified_indices(self.train_labels, train, generator, "train")
        test_idx = _stratified_indices(self.test_labels, test, generator, "test")
        return ImageData(
            train_images=self.train_images[train_idx],
            train_labels=self.train_labels[train_idx],
            test_images=self.test_images[test_idx],
            test_labels=self.test_labels[test_idx],
            classes=list(self.classes),
            name=self.name,
            source=f"{self.source}; a stratified random subset (seed {seed})",
            synthetic=self.synthetic,
        )

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        classes = ", ".join(self.classes) if len(self.classes) <= 12 else f"{', '.join(self.classes[:10])}, ..."
        return (
            f"ImageData({self.name!r}: {len(self.train_labels):,} train + {len(self.test_labels):,} test images, "
            f"{c}x{h}x{w} uint8, {len(self.classes)} classes ({classes}); {self.source})"
        )


class DatasetNotFound(FileNotFoundError):
    """No copy of the dataset was found and none could be downloaded; the message says what to do."""


def _check_images_labels(images: torch.Tensor, labels: torch.Tensor, what: str = "images") -> None:
    """Raise a ValueError unless ``images`` is uint8 (N, C, H, W) and ``labels`` holds N integers."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        got = f"{images.dtype} of shape {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images)
        raise ValueError(f"{what} images must be a uint8 tensor of shape (N, C, H, W); got {got}.")
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.dtype.is_floating_point:
        got = f"{labels.dtype} of shape {tuple(labels.shape)}" if isinstance(labels, torch.Tensor) else type(labels)
        raise ValueError(f"{what} labels must be a 1-D integer tensor; got {got}.")
    if len(labels) != len(images):
        raise ValueError(f"{what}: {len(images)} images but {len(labels)} labels; expected one label per image.")


def _channel_mean_std(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images, scaled to [0, 1]."""
    # A uint8 pixel has only 256 possible values: count how often each occurs per channel,
    # then mean and variance are short sums, exact and without a float copy of the images.
    counts = torch.stack([torch.bincount(images[:, c].flatten(), minlength=256) for c in range(images.shape[1])])
    counts = counts.to(torch.float64)
    values = torch.arange(256, dtype=torch.float64) / 255
    total = counts.sum(dim=1)
    mean = (counts * values).sum(dim=1) / total
    var = (counts * values**2).sum(dim=1) / total - mean**2
    return tuple(mean.tolist()), tuple(var.clamp(min=0).sqrt().tolist())


def _stratified_indices(labels: torch.Tensor, n: int | None, generator: torch.Generator, what: str) -> torch.Tensor:
    """``n`` random indices (sorted), drawn per class so each class keeps its share; all of them if ``n`` is None."""
    total = len(labels)
    if n is None:
        return torch.arange(total)
    if not 0 < n <= total:
        raise ValueError(f"subset: {what}={n} must be between 1 and the {total:,} {what} images there are.")
    classes, counts = labels.unique(return_counts=True)
    quota = counts * n // total
    # Rounding down leaves a few places over: they go to the classes that lost the most to rounding.
    leftover = n - int(quota.sum())
    quota[((counts * n) % total).argsort(descending=True, stable=True)[:leftover]] += 1
    picked = []
    for cls, count, take in zip(classes.tolist(), counts.tolist(), quota.tolist()):
        members = (labels == cls).nonzero().flatten()
        picked.append(members[torch.randperm(count, generator=generator)[:take]])
    return torch.cat(picked).sort().values


# ---------------------------------------------------------------------------
# Loading: the public functions
# ---------------------------------------------------------------------------


def load_cifar10(
    data_dir: str | Path | None = None,
    download: bool = True,
    allow_synthetic: bool | None = None,
    verbose: bool = True,
) -> ImageData:
    """CIFAR-10: 50,000 train and 10,000 test colour images, 3x32x32, 10 classes.

    Looks in ``data_dir`` (default ``COURSE_DATA_DIR``) and the course's
    ``data/`` folder, then downloads with torchvision (unless ``download=False``
    or ``COURSE_OFFLINE=1``). With nothing found, ``allow_synthetic`` (default:
    smoke mode) returns a generated stand-in and says so; otherwise
    :class:`DatasetNotFound` explains where to put the files. ``verbose`` prints
    one line on what was loaded (a synthetic stand-in is always announced).
    """
    notes: list[str] = []
    for folder in _search_dirs(data_dir):
        data = _find_cifar10_official(folder, notes) or _find_image_folders(folder, "cifar10", "RGB", 32, notes)
        if data is not None:
            return _announce(data, verbose)
    if _may_download(download, notes):
        data = _try_download(_download_cifar10, notes)
        if data is not None:
            return _announce(data, verbose)
    hint = (
        "put cifar10-jpeg.tar.gz (image folders train/<class>/*.jpg and test/<class>/*.jpg) "
        "or the official cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) "
        f"in {_resolve(data_dir)}, or set COURSE_DATA_DIR to a folder that holds one"
    )
    return _fallback("cifar10", "CIFAR-10", notes, hint, allow_synthetic)


def load_mnist(
    data_dir: str | Path | None = None,
    download: bool = True,
    allow_synthetic: bool | None = None,
    verbose: bool = True,
) -> ImageData:
    """MNIST: 60,000 train and 10,000 test handwritten digits, 1x28x28.

    Same search as :func:`load_cifar10`. If only the official 10,000-image test
    set is there (e.g. ``mnist-test/`` or ``MNIST/raw/`` with just the ``t10k``
    files), it is split 8,000 train / 2,000 test (stratified, seeded) and the
    source says so.
    """
    notes: list[str] = []
    for folder in _search_dirs(data_dir):
        data = _find_mnist_idx(folder, notes) or _find_image_folders(folder, "mnist", "L", 28, notes)
        if data is not None:
            return _announce(data, verbose)
    if _may_download(download, notes):
        data = _try_download(_download_mnist, notes)
        if data is not None:
            return _announce(data, verbose)
    hint = (
        "put the official files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz "
        f"and t10k-labels-idx1-ubyte.gz in {_resolve(data_dir) / 'MNIST' / 'raw'} (the two t10k files alone, "
        "e.g. in mnist-test/, give an 8,000/2,000 split), or image folders as mnist*.tar.gz, "
        "or set COURSE_DATA_DIR to a folder that holds them"
    )
    return _fallback("mnist", "MNIST", notes, hint, allow_synthetic)


def synthetic_dataset(name: str = "cifar10", n_train: int = 2000, n_test: int = 500, seed: int = 0) -> ImageData:
    """A generated stand-in with 10 classes a small network learns quickly: 3x32x32 for cifar10, 1x28x28 for mnist.

    Each class is a stripe pattern with its own orientation, stripe width and
    (for colour images) colour; the phase and the noise are random per image.
    No real images: use it to check that code runs, not to judge a model.
    """
    shapes = {"cifar10": (3, 32, CIFAR10_CLASSES), "mnist": (1, 28, MNIST_CLASSES)}
    if name not in shapes:
        raise ValueError(f"synthetic_dataset: name must be one of {sorted(shapes)}; got {name!r}.")
    channels, size, classes = shapes[name]
    generator = torch.Generator().manual_seed(seed)
    train_images, train_labels = _stripes(n_train, channels, size, generator)
    test_images, test_labels = _stripes(n_test, channels, size, generator)
    return ImageData(
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        classes=list(classes),
        name=f"synthetic-{name}",
        source=f"generated stripes (seed {seed}) whose angle, width and colour depend on the class: not real images",
        synthetic=True,
    )


def _stripes(n: int, channels: int, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` stripe images with balanced labels: orientation, stripe width and colour depend on the class."""
    labels = (torch.arange(n) % 10)[torch.randperm(n, generator=generator)]
    angle = labels * math.pi / 10
    period = 4.0 + 0.5 * labels  # a different stripe width per class, so a mirrored image stays recognisable
    phase = torch.rand(n, generator=generator) * 2 * math.pi
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    along = xx * angle.cos()[:, None, None] + yy * angle.sin()[:, None, None]  # (n, H, W)
    wave = torch.sin(2 * math.pi * along / period[:, None, None] + phase[:, None, None])
    palette = torch.rand(10, channels, generator=torch.Generator().manual_seed(1234)) * 0.6 + 0.4
    colour = palette[labels][:, :, None, None]  # (n, C, 1, 1)
    noise = torch.randn(n, channels, size, size, generator=generator) * 0.08
    images = (colour * (0.5 + 0.4 * wave[:, None]) + noise).clamp(0, 1)
    return (images * 255).round().to(torch.uint8), labels


# ---------------------------------------------------------------------------
# Loading: where to look and what to say
# ---------------------------------------------------------------------------


def _resolve(data_dir: str | Path | None) -> Path:
    return Path(data_dir).expanduser().resolve() if data_dir is not None else env.data_dir()


def _search_dirs(data_dir: str | Path | None) -> list[Path]:
    """The data dir first, then the course's own ``data/`` (where downloads land), without repeats."""
    dirs = [_resolve(data_dir), env.course_dir().resolve()]
    return list(dict.fromkeys(dirs))


def _cache_dir() -> Path:
    """Decoded datasets live here, never in the data dir (which may be read-only)."""
    path = env.course_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _may_download(download: bool, notes: list[str]) -> bool:
    if not download:
        notes.append("download: not tried (download=False)")
        return False
    if os.environ.get("COURSE_OFFLINE", "0").strip().lower() in {"1", "true", "yes", "on"}:
        notes.append("download: not tried (COURSE_OFFLINE=1)")
        return False
    return True


def _try_download(download_fn: Callable[[Path], ImageData], notes: list[str]) -> ImageData | None:
    """Run one of the ``_download_*`` functions; on failure, note why and return None."""
    target = env.course_dir()
    try:
        return download_fn(target)
    except Exception as error:  # no network, a proxy, a full disk: all mean "not downloaded"
        notes.append(f"download into {target}: failed ({type(error).__name__}: {error})")
        return None


def _announce(data: ImageData, verbose: bool) -> ImageData:
    if verbose:
        c, h, w = data.image_shape
        print(
            f"{data.name}: {len(data.train_labels):,} train + {len(data.test_labels):,} test images, "
            f"{c}x{h}x{w}, {len(data.classes)} classes, from {data.source}."
        )
    return data


def _fallback(name: str, title: str, notes: list[str], hint: str, allow_synthetic: bool | None) -> ImageData:
    """The generated stand-in (announced) if allowed, else a DatasetNotFound saying what was tried."""
    reason = "allow_synthetic=True" if allow_synthetic else "smoke mode (COURSE_SMOKE=1)"
    if allow_synthetic is None:
        allow_synthetic = env.is_smoke()
    looked = "\n".join(f"  - {note}" for note in notes)
    if not allow_synthetic:
        raise DatasetNotFound(
            f"{title} was not found.\nWhere it looked, and what happened:\n{looked}\n"
            f"To fix this: {hint}.\n"
            "(Or pass allow_synthetic=True for a small generated stand-in, only good for checking that code runs.)"
        )
    data = synthetic_dataset(name)
    print(
        f"SYNTHETIC DATA: {title} was not found, so {data.name} is used instead "
        f"({len(data.train_labels):,} train + {len(data.test_labels):,} test generated images; because of {reason}).\n"
        f"Results are NOT {title} results. Where it looked:\n{looked}\nTo get the real data: {hint}."
    )
    return data


# ---------------------------------------------------------------------------
# Loading: torchvision's official files
# ---------------------------------------------------------------------------


def _find_cifar10_official(folder: Path, notes: list[str]) -> ImageData | None:
    """torchvision's ``cifar-10-batches-py/``, or the official ``cifar-10-python.tar.gz`` (unpacked into data/)."""
    if not (folder / datasets.CIFAR10.base_folder).is_dir():
        archive = folder / datasets.CIFAR10.filename
        if not archive.is_file():
            return None
        folder = _unpack_cifar10(archive, notes)
        if folder is None:
            return None
    try:
        return _cifar10_from_torchvision(folder, f"torchvision's CIFAR-10 files in {folder / 'cifar-10-batches-py'}")
    except RuntimeError as error:  # torchvision: "Dataset not found or corrupted"
        notes.append(f"{folder / datasets.CIFAR10.base_folder}: {error}")
        return None


def _unpack_cifar10(archive: Path, notes: list[str]) -> Path | None:
    """Check the official archive's MD5 and unpack it into data/ (not next to it: the data dir may be read-only)."""
    target = env.course_dir()
    if (target / datasets.CIFAR10.base_folder).is_dir():
        return target  # unpacked on an earlier run
    if not check_integrity(str(archive), datasets.CIFAR10.tgz_md5):
        notes.append(f"{archive}: its MD5 checksum is not the official file's; skipped")
        return None
    extract_archive(str(archive), str(target))
    return target


def _cifar10_from_torchvision(root: Path, source: str) -> ImageData:
    train = datasets.CIFAR10(str(root), train=True, download=False)
    test = datasets.CIFAR10(str(root), train=False, download=False)
    # torchvision keeps the images as (N, H, W, C) numpy arrays; the course uses (N, C, H, W) tensors.
    return ImageData(
        train_images=torch.from_numpy(train.data).permute(0, 3, 1, 2).contiguous(),
        train_labels=torch.tensor(train.targets, dtype=torch.int64),
        test_images=torch.from_numpy(test.data).permute(0, 3, 1, 2).contiguous(),
        test_labels=torch.tensor(test.targets, dtype=torch.int64),
        classes=list(train.classes),
        name="cifar10",
        source=source,
    )


def _download_cifar10(root: Path) -> ImageData:
    datasets.CIFAR10(str(root), train=True, download=True)  # verifies the MD5 checksum, then unpacks
    return _cifar10_from_torchvision(root, f"the official CIFAR-10 release, downloaded into {root}")


def _find_mnist_idx(folder: Path, notes: list[str]) -> ImageData | None:
    """The official IDX files (plain or .gz) in ``MNIST/raw/``, ``mnist-test/``, ``mnist/`` or the folder itself."""
    test_only: Path | None = None
    for sub in [folder / "MNIST" / "raw", folder / "mnist-test", folder / "mnist", folder]:
        has_train = _idx_file(sub, "train-images-idx3-ubyte") and _idx_file(sub, "train-labels-idx1-ubyte")
        has_test = _idx_file(sub, "t10k-images-idx3-ubyte") and _idx_file(sub, "t10k-labels-idx1-ubyte")
        if has_train and has_test:
            return _mnist_from_idx(sub)
        if has_test and test_only is None:
            test_only = sub
    if test_only is not None:
        return _mnist_test_only(test_only)
    return None


def _idx_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists."""
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


def _read_idx(path: Path, labels: bool) -> torch.Tensor:
    """Read an IDX file with torchvision's reader, gunzipping it into data/cache/ first if needed."""
    if path.suffix == ".gz":
        stat = path.stat()
        plain = _cache_dir() / "idx" / f"{path.stem}-{stat.st_size}-{stat.st_mtime_ns}"
        if not plain.is_file():
            with gzip.open(path, "rb") as src:
                atomic_write(plain, lambda dst: shutil.copyfileobj(src, dst))
        path = plain
    reader = datasets.mnist.read_label_file if labels else datasets.mnist.read_image_file
    return reader(str(path))


def _read_idx_pair(folder: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = _read_idx(_idx_file(folder, f"{prefix}-images-idx3-ubyte"), labels=False)
    labels = _read_idx(_idx_file(folder, f"{prefix}-labels-idx1-ubyte"), labels=True)
    return images.unsqueeze(1), labels  # (N, 28, 28) -> (N, 1, 28, 28)


def _mnist_from_idx(folder: Path, source: str | None = None) -> ImageData:
    train_images, train_labels = _read_idx_pair(folder, "train")
    test_images, test_labels = _read_idx_pair(folder, "t10k")
    return ImageData(
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        classes=list(MNIST_CLASSES),
        name="mnist",
        source=source or f"the official MNIST files in {folder}",
    )


def _mnist_test_only(folder: Path, seed: int = 0) -> ImageData:
    """Split the official 10,000-image test set 8,000 / 2,000 (80% / 20%), stratified: all there is offline."""
    images, labels = _read_idx_pair(folder, "t10k")
    n_train = len(labels) * 4 // 5
    train_idx = _stratified_indices(labels, n_train, torch.Generator().manual_seed(seed), "train")
    is_test = torch.ones(len(labels), dtype=torch.bool)
    is_test[train_idx] = False
    n_test = len(labels) - n_train
    return ImageData(
        train_images=images[train_idx],
        train_labels=labels[train_idx],
        test_images=images[is_test],
        test_labels=labels[is_test],
        classes=list(MNIST_CLASSES),
        name="mnist",
        source=(
            f"the MNIST TEST set only ({len(labels):,} images in {folder}; the 60,000 training images were not found), "
            f"split {n_train:,} train / {n_test:,} test (stratified, seed {seed})"
        ),
    )


def _download_mnist(root: Path) -> ImageData:
    datasets.MNIST(str(root), train=True, download=True)  # verifies MD5 checksums, gets train and test files
    return _mnist_from_idx(Path(root) / "MNIST" / "raw", f"the official MNIST release, downloaded into {root}")


# ---------------------------------------------------------------------------
# Loading: image folders (train/<class>/*.jpg), as a folder or a .tar.gz
# ---------------------------------------------------------------------------


def _find_image_folders(folder: Path, stem: str, mode: str, size: int, notes: list[str]) -> ImageData | None:
    """Image folders in ``folder``: ``<stem>*.tar.gz``/``.tgz``, ``<stem>*/train/``, or ``folder/train/`` itself."""
    candidates = sorted(folder.glob(f"{stem}*.tar.gz")) + sorted(folder.glob(f"{stem}*.tgz"))
    candidates += sorted(p for p in folder.glob(f"{stem}*") if (p / "train").is_dir())
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        candidates.append(folder)
    for path in candidates:
        try:
            return _load_image_folders(path, stem, mode, size)
        except ValueError as error:  # e.g. 28x28 grey images where 32x32 colour ones were expected
            notes.append(f"{path}: skipped ({error})")
    if not candidates:
        what = "cifar-10-batches-py/, cifar-10-python.tar.gz, " if stem == "cifar10" else "MNIST/raw/, mnist-test/, "
        notes.append(f"{folder}: no {what}{stem}*.tar.gz, {stem}*/train/ or train/ + test/ image folders")
    return None


def _load_image_folders(path: Path, name: str, mode: str, size: int) -> ImageData:
    """Decode an image-folder tree (or a tarball of one) once, then read it from the cache."""
    cache_file = _cache_dir() / _cache_name(path, mode)
    arrays = _read_cache(cache_file)
    if arrays is None:
        start = time.perf_counter()
        arrays = _read_image_folder(path, mode, size)
        seconds = time.perf_counter() - start
        _write_cache(cache_file, arrays)
        _remove_stale_caches(cache_file, path, mode)
        how = f"decoded in {seconds:.0f} s, cached in {cache_file}"
    else:
        how = f"decoded earlier, read from the cache {cache_file}"
    kind = "a .tar.gz of image folders" if path.is_file() else "image folders"
    return ImageData(**arrays, name=name, source=f"{kind}, {path} ({how})")


def _cache_name(path: Path, mode: str) -> str:
    """A file name that changes when the source changes: its name, size and modification time."""
    if path.is_file():
        stat = path.stat()
        size, mtime = stat.st_size, stat.st_mtime_ns
    else:  # a folder: add up the images, and take the newest modification time
        stats = [p.stat() for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
        size, mtime = sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)
    return f"{path.name}-{size}-{mtime}-{mode}-v{CACHE_VERSION}.pt"


def _remove_stale_caches(cache_file: Path, path: Path, mode: str) -> None:
    """Delete the caches of earlier versions of ``path``: each is the size of the whole dataset."""
    if not cache_file.is_file():  # the new cache could not be written: keep what there is
        return
    earlier = re.compile(rf"{re.escape(path.name)}-\d+-\d+-{re.escape(mode)}-v\d+\.pt")
    for old in cache_file.parent.iterdir():
        if old != cache_file and earlier.fullmatch(old.name):
            old.unlink(missing_ok=True)


def _read_cache(cache_file: Path) -> dict | None:
    """The cached arrays, or None if there is no cache file or it cannot be read (then it is rebuilt)."""
    if not cache_file.is_file():
        return None
    try:
        arrays = torch.load(cache_file, weights_only=True)
        _check_images_labels(arrays["train_images"], arrays["train_labels"], "cached train")
        _check_images_labels(arrays["test_images"], arrays["test_labels"], "cached test")
        return {key: arrays[key] for key in ("train_images", "train_labels", "test_images", "test_labels", "classes")}
    except Exception as error:  # truncated, from another torch version, edited by hand...
        warnings.warn(f"Ignoring the unreadable cache file {cache_file} ({error}); decoding again.", stacklevel=3)
        return None


def _write_cache(cache_file: Path, arrays: dict) -> None:
    try:
        atomic_write(cache_file, lambda f: torch.save(arrays, f))
    except OSError as error:
        warnings.warn(f"Could not write the cache {cache_file} ({error}); the next load decodes again.", stacklevel=3)


def _read_image_folder(path: Path, mode: str, size: int) -> dict:
    """Decode ``train/<class>/*`` and ``test/<class>/*`` images from a folder or a tarball.

    Classes are the sorted folder names (torchvision's ``ImageFolder`` rule;
    CIFAR-10's official label order happens to be alphabetical). Images are
    sorted by class and file name, so the order never depends on the archive,
    and then put in one fixed shuffled order, as in the official release: a
    split sorted by class would make every first batch a single class.
    """
    found = {"train": [], "test": []}
    for member_name, read_bytes in _iter_image_files(path):
        parts = PurePosixPath(member_name).parts
        if len(parts) < 3 or parts[-3] not in found or PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        split, cls, file_name = parts[-3:]
        found[split].append((cls, file_name, _decode_image(read_bytes(), mode, size, member_name)))
    classes = sorted({cls for cls, _, _ in found["train"]})
    if not classes or not found["test"]:
        raise ValueError("expected images in both train/<class>/ and test/<class>/")
    unknown = {cls for cls, _, _ in found["test"]} - set(classes)
    if unknown:
        raise ValueError(f"test/ has classes that train/ does not: {sorted(unknown)}")
    label_of = {cls: label for label, cls in enumerate(classes)}
    arrays = {"classes": classes}
    for split, records in found.items():
        records.sort(key=lambda record: record[:2])
        order = torch.randperm(len(records), generator=torch.Generator().manual_seed(0)).tolist()
        records = [records[i] for i in order]
        images = np.stack([image for _, _, image in records])
        if images.ndim == 3:  # grey images have no channel axis yet
            images = images[..., None]
        arrays[f"{split}_images"] = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        arrays[f"{split}_labels"] = torch.tensor([label_of[cls] for cls, _, _ in records], dtype=torch.int64)
    return arrays


def _iter_image_files(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """``(relative name, function returning the bytes)`` for every file, streaming through a tarball."""
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file():
                yield file.relative_to(path).as_posix(), file.read_bytes
        return
    # "r:*" reads .tar, .tar.gz, .tgz, .tar.bz2 ... one member after the other, never unpacking to disk.
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            if member.isfile():
                yield member.name, tar.extractfile(member).read


def _decode_image(data: bytes, mode: str, size: int, name: str) -> np.ndarray:
    """One image file's bytes -> a uint8 array (H, W, C), or (H, W) for grey; checks the size."""
    with Image.open(io.BytesIO(data)) as image:
        if image.size != (size, size):
            raise ValueError(f"{name} is {image.size[0]}x{image.size[1]}, expected {size}x{size}")
        return np.asarray(image.convert(mode))


# ---------------------------------------------------------------------------
# Batches: the whole dataset on the device
# ---------------------------------------------------------------------------


class DeviceLoader:
    """Keeps a whole dataset on the device and does the augmentation there, batched.

    The uint8 images are copied to the device once (CIFAR-10: 150 MB). Each
    batch is gathered by index, randomly cropped (zero padding, like
    ``RandomCrop(32, padding=4)``) and flipped for all its images at once, then
    converted to float and normalised: ``(x / 255 - mean) / std``. No worker
    processes and no per-image Python code, so the GPU is never kept waiting.

    The shuffle and the augmentation of epoch ``e`` depend only on ``(seed, e)``:
    ``set_epoch(e)`` before iterating reproduces an epoch exactly (resuming a
    run). Without it, each ``iter(loader)`` moves on to the next epoch.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int = 512,
        *,
        train: bool,
        device: torch.device | str = "cpu",
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool | None = None,
        crop_padding: int = 4,
        flip: bool = True,
        shuffle: bool | None = None,
        drop_last: bool | None = None,
        seed: int = 0,
        channels_last: bool = False,
        max_batches: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        _check_images_labels(images, labels)
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(
                f"mean and std need one value per channel: the images have {channels} channel(s), "
                f"got mean={tuple(mean)} and std={tuple(std)}."
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}.")
        if crop_padding < 0:
            raise ValueError(f"crop_padding must be 0 or more; got {crop_padding}.")
        if max_batches is not None and max_batches < 1:
            raise ValueError(f"max_batches must be None or at least 1; got {max_batches}.")
        self.train = train
        self.augment = train if augment is None else augment
        self.shuffle = train if shuffle is None else shuffle
        self.drop_last = train if drop_last is None else drop_last
        if self.drop_last and len(images) < batch_size:
            raise ValueError(
                f"{len(images)} images make no full batch of {batch_size} with drop_last=True: "
                "pass a smaller batch_size or drop_last=False."
            )
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.crop_padding = crop_padding
        self.flip = flip
        self.seed = seed
        self.channels_last = channels_last
        self.max_batches = max_batches
        self.dtype = dtype
        # Kept as uint8: 4x less device memory than float, converted one batch at a time.
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self.mean = torch.tensor(mean, dtype=dtype, device=self.device).view(1, channels, 1, 1)
        self.std = torch.tensor(std, dtype=dtype, device=self.device).view(1, channels, 1, 1)
        self.epoch = 0  # the epoch the next iter() plays

    @property
    def dataset_size(self) -> int:
        """Number of images (all of them, whatever ``max_batches`` says)."""
        return len(self.labels)

    def __len__(self) -> int:
        """Batches per epoch, after ``drop_last`` and ``max_batches``."""
        full, rest = divmod(self.dataset_size, self.batch_size)
        batches = full if self.drop_last or rest == 0 else full + 1
        return batches if self.max_batches is None else min(batches, self.max_batches)

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` play epoch ``epoch`` (its shuffle and augmentation)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # Everything random for the epoch is drawn now, in a few calls for the whole epoch.
        order, shifts, flips = self._draw_epoch(self.epoch)
        self.epoch += 1
        return self._batches(order, shifts, flips)

    def _draw_epoch(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The epoch's image order, crop offsets (N, 2) and flip decisions (N,), from a generator on the device."""
        n, device = self.dataset_size, self.device
        generator = torch.Generator(device=device)
        # SeedSequence turns (seed, epoch) into a well-mixed seed: nearby pairs give unrelated streams.
        generator.manual_seed(int(np.random.SeedSequence([self.seed, epoch]).generate_state(1, np.uint64)[0]))
        # Drawn even when not shuffling, so the crops of an epoch do not depend on `shuffle`.
        order = torch.randperm(n, generator=generator, device=device)
        if not self.shuffle:
            order = torch.arange(n, device=device)
        shifts = torch.randint(0, 2 * self.crop_padding + 1, (n, 2), generator=generator, device=device)
        flips = torch.rand(n, generator=generator, device=device) < 0.5
        if not self.flip:
            flips.zero_()  # drawn anyway, so that flip=False leaves the crops of the epoch as they were
        return order, shifts, flips

    def _batches(self, order: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor):
        for i in range(len(self)):
            window = slice(i * self.batch_size, (i + 1) * self.batch_size)
            index = order[window]
            x = self.images[index]
            if self.augment:
                x = crop_and_flip(x, shifts[window], flips[window], self.crop_padding)
            x = x.to(self.dtype).div_(255).sub_(self.mean).div_(self.std)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[index]

    def __repr__(self) -> str:
        augment = f"crop (padding {self.crop_padding})" + (" + flip" if self.flip else "") if self.augment else "none"
        return (
            f"DeviceLoader({self.dataset_size:,} images on {self.device}, batch_size={self.batch_size}, "
            f"{len(self)} batches/epoch, shuffle={self.shuffle}, augment: {augment})"
        )


def crop_and_flip(images: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor, padding: int) -> torch.Tensor:
    """Random-crop and flip a whole batch at once, with no loop over images.

    ``images`` (B, C, H, W) are zero-padded by ``padding`` on every side and
    image ``b`` is cut at offset ``shifts[b] = (dy, dx)`` (each in
    ``0..2*padding``) back to H x W, then mirrored left-right where ``flips[b]``.
    Offsets ``(padding, padding)`` and no flip give the image back unchanged.
    """
    b, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding)) if padding else images
    rows = shifts[:, :1] + torch.arange(h, device=images.device)  # (B, H): padded row read by each output row
    cols = shifts[:, 1:] + torch.arange(w, device=images.device)  # (B, W)
    # A mirrored window is the same window read right to left, so flipping costs nothing extra.
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    # Two gathers, one per axis: keep each image's H rows, then its W columns of those rows.
    picked_rows = padded.gather(2, rows.view(b, 1, h, 1).expand(b, c, h, padded.shape[3]))
    return picked_rows.gather(3, cols.view(b, 1, 1, w).expand(b, c, h, w))


def make_loaders(
    data: ImageData,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    *,
    max_batches: int | None = None,
    test_batch_size: int | None = None,
    seed: int = 0,
    channels_last: bool = False,
    augment: bool = True,
    flip: bool = True,
    crop_padding: int = 4,
) -> tuple[DeviceLoader, DeviceLoader]:
    """A training loader (shuffled, augmented, full batches) and a test loader (in order, plain), both on ``device``.

    Both normalise with the training set's mean and std. ``max_batches`` caps
    the batches per epoch of both (smoke mode). Pass ``flip=False`` for data
    whose mirror image is another thing (digits: a mirrored 2 is no 2).
    """
    common = dict(device=device, mean=data.mean, std=data.std, channels_last=channels_last, max_batches=max_batches)
    train_batch = min(batch_size, len(data.train_labels))  # a tiny subset still gives one batch
    train = DeviceLoader(
        data.train_images,
        data.train_labels,
        train_batch,
        train=True,
        augment=augment,
        flip=flip,
        crop_padding=crop_padding,
        seed=seed,
        **common,
    )
    test = DeviceLoader(data.test_images, data.test_labels, test_batch_size or batch_size, train=False, **common)
    return train, test


# ---------------------------------------------------------------------------
# The usual recipe, for comparison: a DataLoader with workers and PIL transforms
# ---------------------------------------------------------------------------


class _PILDataset(Dataset):
    """Hands out ``(transform(PIL image), label)`` pairs, like torchvision's own datasets do."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: transforms.Compose) -> None:
        # PIL wants (H, W, C), or (H, W) for grey images; convert once, not per image.
        array = images.permute(0, 2, 3, 1).contiguous().numpy()
        self.images = array[..., 0] if array.shape[-1] == 1 else array
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


def torchvision_loader(
    data: ImageData,
    batch_size: int = 128,
    train: bool = True,
    num_workers: int = 2,
    augment: bool | None = None,
    pin_memory: bool | None = None,
) -> DataLoader:
    """The usual ``DataLoader`` recipe: per-image PIL transforms in worker processes, batches on the CPU.

    ``RandomCrop(padding=4)`` and ``RandomHorizontalFlip`` (if ``augment``,
    default ``train``), ``ToTensor``, ``Normalize(mean, std)``: the same
    ``(x, y)`` as :class:`DeviceLoader`, except that the batches stay on the
    CPU and the training loop copies them to the GPU.
    """
    augment = train if augment is None else augment
    steps = []
    if augment:
        steps += [transforms.RandomCrop(data.image_shape[1], padding=4), transforms.RandomHorizontalFlip()]
    steps += [transforms.ToTensor(), transforms.Normalize(data.mean, data.std)]
    images, labels = (data.train_images, data.train_labels) if train else (data.test_images, data.test_labels)
    return DataLoader(
        _PILDataset(images, labels, transforms.Compose(steps)),
        batch_size=batch_size,
        shuffle=train,
        drop_last=train,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        persistent_workers=num_workers > 0,
    )
