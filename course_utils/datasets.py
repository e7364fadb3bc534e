"""Finding, reading and caching the datasets behind ``course_utils.data.load_cifar10`` and ``load_mnist``. Where they
look, in order: ``COURSE_DATA_DIR`` (or ``data_dir``), then the course's ``data/``, for torchvision's own files, else
for image folders ``train/<class>/*.jpg`` + ``test/<class>/*.jpg`` (a folder or a ``.tar.gz``, read by ``ImageFolder``'s
rules); then torchvision downloads. A damaged file is never skipped: a ``ValueError`` names it. Decoded images are
cached in ``data/cache/``, keyed by each file's path, size and modification time."""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import socket
import struct
import tarfile
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import CIFAR10, MNIST
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension
from torchvision.datasets.utils import check_integrity, download_and_extract_archive, extract_archive

from . import env
from ._files import atomic_write

MNIST_CLASSES = [str(digit) for digit in range(10)]
SPLITS = ("train", "test")
CACHE_VERSION = 3  # bump when the cache's layout changes, so that older files are not read
WANTED = {  # what to put where, for the message when nothing is found
    "cifar10": f"the official {CIFAR10.filename} ({CIFAR10.url}) or image folders (train/<class>/*.jpg, "
    "test/<class>/*.jpg, as a folder or a cifar10*.tar.gz) in {}",
    "mnist": f"the official {', '.join(file for file, _ in MNIST.resources)} ({MNIST.mirrors[0]}) in "
    f"{{}}{os.sep}MNIST{os.sep}raw (the t10k files alone give an 8,000/2,000 split), or image folders in mnist*.tar.gz",
}


class DatasetNotFound(FileNotFoundError):
    """No copy of the dataset was found and none could be downloaded; the message says what to do."""


def find(name: str, data_dir: str | Path | None, download: bool, timeout: float) -> dict:
    """``{train,test}_{images,labels}``, ``classes``, ``source`` of "cifar10" or "mnist" (MNIST's test set: test_*)."""
    official, mode, size = (_cifar10_files, "RGB", 32) if name == "cifar10" else (_mnist_files, "L", 28)
    first = Path(data_dir).expanduser().resolve() if data_dir is not None else env.data_dir()
    notes = []
    for folder in dict.fromkeys([first, env.course_dir().resolve()]):
        found = official(folder) or _image_tree(folder, name, mode, size)
        if found:
            return found
        notes.append(f"{folder}: none of the files below")
    try:
        if download:
            return _download(name, timeout)
        notes.append("download: not tried (download=False)")
    except (OSError, RuntimeError) as error:  # no network, a proxy, a full disk, a checksum that differs
        reason = getattr(error, "reason", error)  # urllib wraps the socket's error in a URLError
        stalled = isinstance(reason, (TimeoutError, socket.timeout))
        why = f"stopped, no data for {timeout:g} s" if stalled else f"failed ({type(error).__name__}: {error})"
        notes.append(f"download into {env.course_dir()}: {why}")
    looked = "\n".join(f"  - {note}" for note in notes)
    raise DatasetNotFound(
        f"{name} was not found. Where it looked, and what happened:\n{looked}\nTo fix this, put "
        f"{WANTED[name].format(first)}, or set COURSE_DATA_DIR to a folder that holds them; then load again."
    )


def _download(name: str, timeout: float) -> dict:
    """torchvision's download into ``data/``: MD5-checked, then unpacked. No wait for data lasts over ``timeout``."""
    root = env.course_dir()
    target = root if name == "cifar10" else root / "MNIST" / "raw"
    files = [(MNIST.mirrors[0] + file, md5) for file, md5 in MNIST.resources]
    files = [(CIFAR10.url, CIFAR10.tgz_md5)] if name == "cifar10" else files
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # torchvision's connections use the default timeout
    try:
        for url, md5 in files:
            try:
                download_and_extract_archive(url, str(target), md5=md5)
            except BaseException:
                (target / Path(url).name).unlink(missing_ok=True)  # half a file would pass for a damaged dataset
                raise
    finally:
        socket.setdefaulttimeout(previous)
    return (_cifar10_files if name == "cifar10" else _mnist_files)(root)


def _cifar10_files(folder: Path) -> dict | None:
    """torchvision's ``cifar-10-batches-py/``, or the official archive (MD5-checked, then unpacked into ``data/``)."""
    base, archive, root = CIFAR10.base_folder, folder / CIFAR10.filename, folder
    if not (folder / base).is_dir():
        if not archive.is_file():
            return None
        root = env.course_dir()
        if not (root / base).is_dir():
            if not check_integrity(str(archive), CIFAR10.tgz_md5):
                raise ValueError(f"{archive} fails its MD5 check: replace it with a complete copy of {CIFAR10.url}.")
            with tempfile.TemporaryDirectory(dir=root) as scratch:  # unpacked whole or not at all
                extract_archive(str(archive), scratch)
                os.replace(Path(scratch) / base, root / base)
    try:
        splits = {split: CIFAR10(str(root), train=split == "train") for split in SPLITS}
    except RuntimeError as error:  # "Dataset not found or corrupted"
        raise ValueError(f"{root / base}: {error}. Delete this folder and load again.") from None
    found = {"classes": splits["train"].classes, "source": f"torchvision's CIFAR-10 files in {root / base}"}
    for split, dataset in splits.items():
        found[f"{split}_images"] = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        found[f"{split}_labels"] = torch.tensor(dataset.targets)
    return found


def _mnist_files(folder: Path) -> dict | None:
    """The official IDX files in ``MNIST/raw/``, ``mnist-test/`` or ``folder``; the test set will do."""
    test_only = None
    for sub in (folder / "MNIST" / "raw", folder / "mnist-test", folder):
        test = _idx_pair(sub, "t10k", "test")
        train = test and _idx_pair(sub, "train", "train")  # the training files alone are no use
        if train:
            return {**train, **test, "classes": list(MNIST_CLASSES), "source": f"the official MNIST files in {sub}"}
        if test and not test_only:
            source = f"the MNIST TEST set only ({len(test['test_labels']):,} images in {sub}; no training images)"
            test_only = {**test, "classes": list(MNIST_CLASSES), "source": source}
    return test_only


def _idx_pair(folder: Path, prefix: str, split: str) -> dict | None:
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    paths = [next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None) for stem in stems]
    if None in paths:
        return None
    return {f"{split}_images": _read_idx(paths[0]).unsqueeze(1), f"{split}_labels": _read_idx(paths[1]).long()}


def _read_idx(path: Path) -> torch.Tensor:
    """An IDX file (plain or .gz): bytes 0, 0, 8 (= unsigned bytes), ndim, each size as 4 big-endian bytes, values."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
        shape = struct.unpack(f">{raw[3]}I", raw[4 : 4 + 4 * raw[3]])
        if raw[:3] != b"\0\0\x08" or len(raw) != 4 + 4 * len(shape) + math.prod(shape):
            raise ValueError("wrong header or length")
    except (OSError, EOFError, zlib.error, IndexError, struct.error, ValueError) as error:
        raise ValueError(f"{path} is not a complete IDX file ({error}): replace it with the official one.") from None
    return torch.frombuffer(bytearray(raw[4 + 4 * len(shape) :]), dtype=torch.uint8).view(shape)


def _image_tree(folder: Path, name: str, mode: str, size: int) -> dict | None:
    """The first of ``<name>*.tar.gz``, ``<name>*/`` with a ``train/`` and ``folder`` itself, decoded or cached."""
    trees = sorted(folder.glob(f"{name}*.tar.gz")) + sorted(train.parent for train in folder.glob(f"{name}*/train/"))
    path = (trees + [folder] * (folder / "train").is_dir() + [None])[0]
    if path is None:
        return None
    if path.is_file():
        stamp, kind = [(st := path.stat()).st_size, st.st_mtime_ns], "a .tar.gz of image folders"
        images = _tar_images(path)
    else:
        files = sorted(file for split in SPLITS for file in (path / split).rglob("*") if file.is_file())
        stamp = [(str(file.relative_to(path)), (st := file.stat()).st_size, st.st_mtime_ns) for file in files]
        images, kind = ((file.relative_to(path).as_posix(), file.read_bytes()) for file in files), "image folders"
    digest = hashlib.sha256(repr([CACHE_VERSION, mode, size, stamp]).encode()).hexdigest()[:16]
    prefix = f"{name}-{path.name}-{hashlib.sha256(bytes(path.resolve())).hexdigest()[:8]}-"  # one source, one cache
    cache_file = env.course_dir() / "cache" / f"{prefix}{digest}.pt"
    arrays, how = _cached(cache_file, lambda: _decode(images, mode, size, path))
    return {**arrays, "source": f"{kind}, {path} ({how})"}


def _tar_images(archive: Path) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` for each file in an archive; a damaged archive or a tar that ends early: a ValueError."""
    try:
        with tarfile.open(archive, "r:*") as tar:  # streams .tar, .tar.gz, .tgz...: one member after the other
            yield from ((member.name, tar.extractfile(member).read()) for member in tar if member.isfile())
            # tarfile takes a tar cut at a member's boundary for a whole one; a whole one ends with a zero block.
            tar.fileobj.seek(tar.offset)
            if tar.fileobj.read(tarfile.BLOCKSIZE) != bytes(tarfile.BLOCKSIZE):
                raise tarfile.ReadError("the tar inside ends before its end-of-archive marker")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise ValueError(f"{archive} is damaged or incomplete ({error}): copy or download it again.") from None


def _decode(files: Iterator[tuple[str, bytes]], mode: str, size: int, path: Path) -> dict:
    """Decode the images ``[top/]train|test/<class>/.../name.jpg``, labelled by sorted class name, in an order that
    never depends on the file system or the archive: sorted, then shuffled once (a split sorted by class would make
    every first test batch a single class)."""
    found: dict[str, list] = {split: [] for split in SPLITS}
    for name, data in files:
        parts = PurePosixPath(name).parts
        at = next((i for i, part in enumerate(parts[:-2]) if part in SPLITS), None)
        if at is None or not has_file_allowed_extension(name, IMG_EXTENSIONS):
            continue
        split, cls = parts[at : at + 2]
        try:
            with Image.open(io.BytesIO(data)) as image:
                array = np.asarray(image.convert(mode))
        except Exception as error:  # not an image, truncated...: PIL's errors vary
            raise ValueError(f"{path / name} is not a readable image ({error}). Replace or delete it.") from None
        if array.shape[:2] != (size, size):
            raise ValueError(f"{path / name} is {array.shape[1]}x{array.shape[0]}, expected {size}x{size}: replace it.")
        found[split].append((cls, name, array))
    classes, test_classes = (sorted({cls for cls, _, _ in found[split]}) for split in SPLITS)
    if not classes or classes != test_classes:
        raise ValueError(f"{path}: expected the same classes in train/ and test/; found {classes} and {test_classes}.")
    arrays: dict = {"classes": classes}
    for split, records in found.items():
        records.sort(key=lambda record: record[:2])
        records = [records[i] for i in torch.randperm(len(records), generator=torch.Generator().manual_seed(0))]
        stacked = np.stack([array for _, _, array in records]).reshape(len(records), size, size, -1)  # grey: C = 1
        arrays[f"{split}_images"] = torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()
        arrays[f"{split}_labels"] = torch.tensor([classes.index(cls) for cls, _, _ in records])
    return arrays


def _cached(cache_file: Path, decode: Callable[[], dict]) -> tuple[dict, str]:
    """The arrays from ``cache_file`` if an earlier load wrote it, else ``decode()``'s, then cached; and how."""
    if cache_file.is_file():
        try:
            return torch.load(cache_file, weights_only=True), f"decoded earlier, read from the cache {cache_file}"
        except Exception as error:  # truncated, from another torch version...
            warnings.warn(f"Ignoring the unreadable cache file {cache_file} ({error}); decoding again.", stacklevel=5)
    start = time.perf_counter()
    arrays = decode()
    how = f"decoded in {time.perf_counter() - start:.0f} s"
    try:
        atomic_write(cache_file, lambda f: torch.save(arrays, f))  # a reader sees the old file or the new, never half
    except OSError as error:  # a read-only folder, a full disk...
        why = f"({error}); loading goes on without it. COURSE_CACHE_DIR can name a folder you can write to."
        warnings.warn(f"The decoded images cannot be cached in {cache_file.parent} {why}", stacklevel=5)
        return arrays, how
    for older in set(cache_file.parent.glob(f"{cache_file.name.rsplit('-', 1)[0]}-*.pt")) - {cache_file}:
        older.unlink(missing_ok=True)  # a cache of an earlier version of the same source, as large as the dataset
    return arrays, f"{how}, cached in {cache_file}"
