"""course_utils.data: finding and caching datasets, the synthetic fallback, DeviceLoader's augmentation."""

from __future__ import annotations

import gzip
import io
import os
import random
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from course_utils import data as cud

COLOURS = {"dog": (200, 40, 40), "cat": (40, 40, 200)}  # solid colours survive JPEG almost unchanged


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes its caches under tmp_path, never into the repository's data/, and never downloads."""
    cache = tmp_path / "course-cache"
    monkeypatch.setenv("COURSE_CACHE_DIR", str(cache))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.delenv("COURSE_SMOKE", raising=False)
    return cache


def jpeg_bytes(colour: tuple[int, int, int], size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def make_tarball(path: Path, per_class: dict[str, int], size: int = 32, test_per_class: int = 2) -> Path:
    """An image-folder tarball, members in shuffled order under a top-level folder (as archives often are)."""
    members = []
    for cls, count in per_class.items():
        members += [(f"tiny/train/{cls}/{i:04d}.jpg", COLOURS[cls]) for i in range(count)]
        members += [(f"tiny/test/{cls}/{i:04d}.jpg", COLOURS[cls]) for i in range(test_per_class)]
    random.Random(0).shuffle(members)
    with tarfile.open(path, "w:gz") as tar:
        for name, colour in members:
            data = jpeg_bytes(colour, size)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# ---------------------------------------------------------------------------
# Loading from image folders, and the cache
# ---------------------------------------------------------------------------


def test_image_folder_tarball_is_decoded_and_cached(tmp_path: Path, private_cache: Path, monkeypatch, capsys):
    data_dir = tmp_path / "datasets"
    data_dir.mkdir()
    make_tarball(data_dir / "cifar10-tiny.tar.gz", {"dog": 3, "cat": 4})

    first = cud.load_cifar10(data_dir, download=False, allow_synthetic=False)
    assert "decoded in" in capsys.readouterr().out
    assert first.classes == ["cat", "dog"]  # sorted folder names, whatever the archive's order
    assert first.train_images.shape == (7, 3, 32, 32) and first.train_images.dtype == torch.uint8
    assert first.test_images.shape == (4, 3, 32, 32)
    assert first.train_labels.dtype == torch.int64
    # A fixed shuffled order (not sorted by class), the same on every load.
    assert sorted(first.train_labels.tolist()) == [0, 0, 0, 0, 1, 1, 1]
    assert sorted(first.test_labels.tolist()) == [0, 0, 1, 1]
    assert first.train_labels.tolist() != sorted(first.train_labels.tolist())
    for images, labels in [(first.train_images, first.train_labels), (first.test_images, first.test_labels)]:
        for image, label in zip(images, labels):
            expected = torch.tensor(COLOURS[first.classes[label]], dtype=torch.float32)
            assert torch.allclose(image.float().mean(dim=(1, 2)), expected, atol=3)
    assert not first.synthetic and "cifar10-tiny.tar.gz" in first.source

    # The decoded arrays went to the cache dir, and nothing was written next to the data.
    assert [p.name for p in data_dir.iterdir()] == ["cifar10-tiny.tar.gz"]
    cached = list((private_cache / "cache").glob("*.pt"))
    assert len(cached) == 1 and cached[0].name.startswith("cifar10-tiny.tar.gz-")

    def decoder_must_not_run(*args, **kwargs):
        raise AssertionError("the second load decoded the images again instead of reading the cache")

    monkeypatch.setattr(cud, "_read_image_folder", decoder_must_not_run)
    second = cud.load_cifar10(data_dir, download=False, allow_synthetic=False)
    assert "from the cache" in capsys.readouterr().out
    assert torch.equal(second.train_images, first.train_images)
    assert torch.equal(second.test_labels, first.test_labels)
    assert second.classes == first.classes


def test_changed_source_is_decoded_again(tmp_path: Path, private_cache: Path, monkeypatch):
    data_dir = tmp_path / "datasets"
    data_dir.mkdir()
    tarball = make_tarball(data_dir / "cifar10-tiny.tar.gz", {"dog": 2, "cat": 2})
    cud.load_cifar10(data_dir, download=False, verbose=False)
    (first_cache,) = (private_cache / "cache").glob("*.pt")
    other = private_cache / "cache" / "cifar10-tiny.tar.gz-1-2-L-v2.pt"  # the grey-scale cache of the same file
    other.write_bytes(b"kept")

    calls = []
    real_decoder = cud._read_image_folder
    monkeypatch.setattr(cud, "_read_image_folder", lambda *args: calls.append(args) or real_decoder(*args))
    stat = tarball.stat()
    os.utime(tarball, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    cud.load_cifar10(data_dir, download=False, verbose=False)
    assert len(calls) == 1, "a source with a new modification time must be decoded again"
    # The old cache, as large as the dataset, is deleted; a cache of another mode is not.
    caches = sorted(p.name for p in (private_cache / "cache").glob("*.pt"))
    assert first_cache.name not in caches and other.name in caches and len(caches) == 2


def test_corrupt_cache_is_ignored_with_a_warning(tmp_path: Path, private_cache: Path):
    data_dir = tmp_path / "datasets"
    data_dir.mkdir()
    make_tarball(data_dir / "cifar10-tiny.tar.gz", {"dog": 2, "cat": 2})
    good = cud.load_cifar10(data_dir, download=False, verbose=False)
    (cache_file,) = (private_cache / "cache").glob("*.pt")
    cache_file.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable cache"):
        again = cud.load_cifar10(data_dir, download=False, verbose=False)
    assert torch.equal(again.train_images, good.train_images)
    assert torch.load(cache_file, weights_only=True)["classes"] == ["cat", "dog"]  # rebuilt


def test_images_of_the_wrong_size_are_skipped_and_reported(tmp_path: Path):
    data_dir = tmp_path / "datasets"
    data_dir.mkdir()
    make_tarball(data_dir / "cifar10-small.tar.gz", {"dog": 2, "cat": 2}, size=16)
    with pytest.raises(cud.DatasetNotFound, match="16x16, expected 32x32"):
        cud.load_cifar10(data_dir, download=False, allow_synthetic=False)


def write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's IDX format: 0, 0, type 8 (ubyte), the number of dimensions, the sizes (big-endian), the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fake_mnist(folder: Path, splits: dict[str, int], suffix: str = ".gz") -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in splits.items():
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n) % 10)


def test_mnist_idx_files_gzipped(tmp_path: Path):
    fake_mnist(tmp_path / "MNIST" / "raw", {"train": 30, "t10k": 20})
    data = cud.load_mnist(tmp_path, download=False, allow_synthetic=False)
    assert data.train_images.shape == (30, 1, 28, 28) and data.test_images.shape == (20, 1, 28, 28)
    assert data.train_labels.tolist() == [i % 10 for i in range(30)] and data.classes == cud.MNIST_CLASSES
    assert "official MNIST files" in data.source


def test_mnist_test_files_alone_are_split_80_20(tmp_path: Path, capsys):
    fake_mnist(tmp_path / "MNIST" / "raw", {"t10k": 50}, suffix="")
    data = cud.load_mnist(tmp_path, download=False, allow_synthetic=False)
    assert len(data.train_labels) == 40 and len(data.test_labels) == 10
    assert data.test_labels.bincount().tolist() == [1] * 10  # stratified: one of each digit held out
    assert "TEST set only" in data.source and "40 train / 10 test" in capsys.readouterr().out


def test_a_corrupt_official_cifar_archive_is_reported(tmp_path: Path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not the real archive")
    with pytest.raises(cud.DatasetNotFound, match="MD5 checksum is not the official"):
        cud.load_cifar10(tmp_path, download=False, allow_synthetic=False)


# ---------------------------------------------------------------------------
# Nothing found: a clear error, or announced synthetic data
# ---------------------------------------------------------------------------


def test_missing_cifar10_says_where_it_looked_and_what_to_put_there(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(cud.DatasetNotFound) as caught:
        cud.load_cifar10(empty, download=False, allow_synthetic=False)
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert str(empty) in message
    assert "cifar10-jpeg.tar.gz" in message and "cifar-10-python.tar.gz" in message
    assert "COURSE_DATA_DIR" in message
    assert "download=False" in message


def test_missing_mnist_message_names_the_files(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(cud.DatasetNotFound) as caught:
        cud.load_mnist(empty, download=False, allow_synthetic=False)
    message = str(caught.value)
    assert str(empty) in message and "t10k-images-idx3-ubyte.gz" in message and "COURSE_DATA_DIR" in message


def test_failed_download_reason_is_in_the_message(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE")

    def no_network(root):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(cud, "_download_cifar10", no_network)
    with pytest.raises(cud.DatasetNotFound, match="failed \\(URLError: .*Name or service not known"):
        cud.load_cifar10(tmp_path, download=True, allow_synthetic=False)


def test_synthetic_fallback_is_announced(tmp_path: Path, capsys):
    data = cud.load_cifar10(tmp_path, download=False, allow_synthetic=True)
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "not found" in out and str(tmp_path) in out
    assert data.synthetic and data.name == "synthetic-cifar10"
    assert data.train_images.shape[1:] == (3, 32, 32) and data.classes == cud.CIFAR10_CLASSES


def test_smoke_mode_allows_synthetic_data(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_SMOKE", "1")
    data = cud.load_mnist(tmp_path, download=False, verbose=False)  # quiet, but synthetic data is always announced
    assert "SYNTHETIC" in capsys.readouterr().out
    assert data.synthetic and data.train_images.shape[1:] == (1, 28, 28)


def test_synthetic_dataset_is_balanced_deterministic_and_learnable():
    data = cud.synthetic_dataset("cifar10", n_train=1000, n_test=200, seed=3)
    assert data.train_images.dtype == torch.uint8 and data.train_images.shape == (1000, 3, 32, 32)
    assert data.train_labels.bincount().tolist() == [100] * 10
    assert torch.equal(data.train_images, cud.synthetic_dataset("cifar10", 1000, 200, seed=3).train_images)
    # A nearest-class-mean classifier on the mean colour is far better than chance (10%).
    colour = lambda images: images.float().mean(dim=(2, 3))
    centres = torch.stack([colour(data.train_images[data.train_labels == k]).mean(0) for k in range(10)])
    predicted = torch.cdist(colour(data.test_images), centres).argmin(1)
    assert (predicted == data.test_labels).float().mean() > 0.5


# ---------------------------------------------------------------------------
# The real datasets (only where COURSE_DATA_DIR holds them, as in CI)
# ---------------------------------------------------------------------------


def real_data_dir(needs: str) -> Path:
    value = os.environ.get("COURSE_DATA_DIR")
    if not value:
        pytest.skip("COURSE_DATA_DIR is not set, so the real datasets are not available offline")
    path = Path(value)
    if not (path / needs).exists():
        pytest.skip(f"COURSE_DATA_DIR={path} has no {needs}")
    return path


def test_real_mnist_test_set_is_split_8000_2000(capsys):
    data_dir = real_data_dir("mnist-test/t10k-images-idx3-ubyte.gz")
    data = cud.load_mnist(data_dir, download=False, allow_synthetic=False)
    assert "8,000 train / 2,000 test" in capsys.readouterr().out
    assert data.train_images.shape == (8000, 1, 28, 28) and data.test_images.shape == (2000, 1, 28, 28)
    assert "TEST set only" in data.source and not data.synthetic
    # Stratified: each digit keeps its share (80%) in train, up to rounding.
    total = data.train_labels.bincount(minlength=10) + data.test_labels.bincount(minlength=10)
    assert total.sum() == 10_000
    assert ((data.train_labels.bincount(minlength=10) - 0.8 * total).abs() <= 1).all()
    again = cud.load_mnist(data_dir, download=False, verbose=False)
    assert torch.equal(again.train_labels, data.train_labels)


def test_real_cifar10(monkeypatch):
    data_dir = real_data_dir("cifar10-jpeg.tar.gz")
    monkeypatch.delenv("COURSE_CACHE_DIR")  # the default cache (data/cache/), so the 60,000 JPEGs are decoded once
    data = cud.load_cifar10(data_dir, download=False, allow_synthetic=False)
    assert data.train_images.shape == (50_000, 3, 32, 32) and data.test_images.shape == (10_000, 3, 32, 32)
    assert data.classes == cud.CIFAR10_CLASSES
    assert data.train_labels.bincount().tolist() == [5000] * 10
    assert data.test_labels.bincount().tolist() == [1000] * 10
    assert np.allclose(data.mean, (0.491, 0.482, 0.447), atol=0.005)


# ---------------------------------------------------------------------------
# ImageData
# ---------------------------------------------------------------------------


def test_subset_is_stratified_and_deterministic():
    data = cud.synthetic_dataset("mnist", n_train=1000, n_test=300)
    small = data.subset(train=105, test=30, seed=1)
    assert len(small.train_labels) == 105 and len(small.test_labels) == 30
    assert sorted(small.train_labels.bincount().tolist()) == [10] * 5 + [11] * 5  # 100 of each digit, 10.5%
    assert torch.equal(small.train_images, data.subset(train=105, test=30, seed=1).train_images)
    assert not torch.equal(small.train_labels, data.subset(train=105, test=30, seed=2).train_labels)
    assert data.subset(test=10).train_labels.shape == (1000,)
    with pytest.raises(ValueError, match="between 1 and the 1,000 train images"):
        data.subset(train=2000)


def test_mean_std_and_repr():
    data = cud.synthetic_dataset("cifar10", n_train=200, n_test=50)
    x = data.train_images.double() / 255
    assert np.allclose(data.mean, x.mean(dim=(0, 2, 3)).tolist())
    assert np.allclose(data.std, x.std(dim=(0, 2, 3), unbiased=False).tolist())
    text = repr(data)
    assert "200 train" in text and "3x32x32" in text and "airplane" in text and "generated" in text


def test_image_data_rejects_bad_tensors():
    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        cud.ImageData(images, torch.zeros(3, dtype=torch.int64), images, torch.zeros(4), ["a"], "x", "y")


# ---------------------------------------------------------------------------
# DeviceLoader
# ---------------------------------------------------------------------------

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def toy(n: int = 50, size: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return images, torch.arange(n)


def raw_pixels(loader: cud.DeviceLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch of a loader with mean 0 and std 1, turned back into uint8 pixels."""
    xs, ys = zip(*loader)
    return (torch.cat(xs) * 255).round().to(torch.uint8), torch.cat(ys)


def reference_crop(image: torch.Tensor, dy: int, dx: int, padding: int, flip: bool) -> torch.Tensor:
    """One image at a time, the obvious way: pad, cut the window, maybe mirror it."""
    h, w = image.shape[1:]
    window = F.pad(image, (padding,) * 4)[:, dy : dy + h, dx : dx + w]
    return window.flip(-1) if flip else window


def matching_windows(out: torch.Tensor, original: torch.Tensor, padding: int) -> list[tuple[int, int, bool]]:
    span = range(2 * padding + 1)
    return [
        (dy, dx, flip)
        for dy in span
        for dx in span
        for flip in (False, True)
        if torch.equal(out, reference_crop(original, dy, dx, padding, flip))
    ]


def test_plain_batches_are_exactly_normalised():
    images, labels = toy()
    loader = cud.DeviceLoader(images, labels, 16, train=False, mean=MEAN, std=STD)
    x, y = next(iter(loader))
    assert x.dtype == torch.float32 and x.shape == (16, 3, 10, 10) and x.device.type == "cpu"
    assert y.dtype == torch.int64 and y.tolist() == list(range(16))
    expected = (images[:16].float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    assert torch.equal(x, expected)


def test_every_augmented_image_is_a_padded_shifted_window():
    images, labels = toy()
    loader = cud.DeviceLoader(images, labels, 16, train=True, mean=(0,) * 3, std=(1,) * 3, flip=False, shuffle=False)
    pixels, seen = raw_pixels(loader)
    offsets = []
    for out, index in zip(pixels, seen):
        matches = matching_windows(out, images[index], padding=4)
        assert matches and not any(flip for _, _, flip in matches), f"image {index} is no window of the original"
        offsets.append(matches[0][:2])
    assert len(set(offsets)) > 10, "the crops hardly vary"
    assert any(dy in (0, 8) or dx in (0, 8) for dy, dx in offsets), "no crop reached into the zero padding"


def test_flip_mirrors_about_half_the_images():
    images, labels = toy()
    loader = cud.DeviceLoader(images, labels, 50, train=True, mean=(0,) * 3, std=(1,) * 3, crop_padding=0)
    pixels, seen = raw_pixels(loader)
    flipped = [torch.equal(out, images[i].flip(-1)) for out, i in zip(pixels, seen)]
    kept = [torch.equal(out, images[i]) for out, i in zip(pixels, seen)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 40


def test_crop_and_flip_matches_the_per_image_reference():
    images, _ = toy(n=12)
    generator = torch.Generator().manual_seed(5)
    shifts = torch.randint(0, 9, (12, 2), generator=generator)
    flips = torch.rand(12, generator=generator) < 0.5
    out = cud.crop_and_flip(images, shifts, flips, padding=4)
    for i in range(12):
        expected = reference_crop(images[i], int(shifts[i, 0]), int(shifts[i, 1]), 4, bool(flips[i]))
        assert torch.equal(out[i], expected)


def test_same_seed_and_epoch_give_the_same_batches():
    images, labels = toy()

    def epoch(seed: int, number: int | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        loader = cud.DeviceLoader(images, labels, 16, train=True, mean=MEAN, std=STD, seed=seed)
        if number is not None:
            loader.set_epoch(number)
        return list(loader)

    def same(a, b) -> bool:
        return all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))

    assert same(epoch(0, 3), epoch(0, 3))
    assert not same(epoch(0, 3), epoch(0, 4))
    assert not same(epoch(0, 3), epoch(1, 3))
    # Without set_epoch, each pass moves on one epoch: the second pass is epoch 1.
    loader = cud.DeviceLoader(images, labels, 16, train=True, mean=MEAN, std=STD)
    first, second = list(loader), list(loader)
    assert same(first, epoch(0, 0)) and same(second, epoch(0, 1))


def test_shuffle_visits_every_image_once_per_epoch():
    images, labels = toy()
    loader = cud.DeviceLoader(images, labels, 16, train=True, mean=MEAN, std=STD, drop_last=False)
    seen = torch.cat([y for _, y in loader])
    assert sorted(seen.tolist()) == list(range(50)) and seen.tolist() != list(range(50))


def test_len_drop_last_and_max_batches():
    images, labels = toy()
    train = cud.DeviceLoader(images, labels, 16, train=True, mean=MEAN, std=STD)
    test = cud.DeviceLoader(images, labels, 16, train=False, mean=MEAN, std=STD)
    assert len(train) == 3 and [len(y) for _, y in train] == [16, 16, 16]  # drop_last: the 2 left over are dropped
    assert len(test) == 4 and [len(y) for _, y in test] == [16, 16, 16, 2]
    capped = cud.DeviceLoader(images, labels, 16, train=False, mean=MEAN, std=STD, max_batches=2)
    assert len(capped) == 2 and len(list(capped)) == 2
    assert capped.dataset_size == 50 and capped.batch_size == 16 and capped.device == torch.device("cpu")
    assert "50 images" in repr(capped)


def test_channels_last_and_dtype():
    images, labels = toy()
    loader = cud.DeviceLoader(
        images, labels, 8, train=True, mean=MEAN, std=STD, channels_last=True, dtype=torch.float64
    )
    x, _ = next(iter(loader))
    assert x.dtype == torch.float64 and x.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(images=torch.zeros(4, 3, 8, 8)), "uint8 tensor of shape \\(N, C, H, W\\); got torch.float32"),
        (dict(images=torch.zeros(4, 8, 8, dtype=torch.uint8)), "got torch.uint8 of shape \\(4, 8, 8\\)"),
        (dict(labels=torch.zeros(3, dtype=torch.int64)), "4 images but 3 labels"),
        (dict(batch_size=0), "batch_size must be at least 1; got 0"),
        (dict(mean=(0.5,)), "3 channel\\(s\\), got mean=\\(0.5,\\)"),
        (dict(batch_size=8, drop_last=True), "4 images make no full batch of 8"),
    ],
)
def test_bad_input_is_explained(change: dict, message: str):
    arguments = dict(images=torch.zeros(4, 3, 8, 8, dtype=torch.uint8), labels=torch.zeros(4, dtype=torch.int64))
    arguments.update(batch_size=2, mean=MEAN, std=STD)
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        cud.DeviceLoader(train=False, **arguments)


def test_make_loaders():
    data = cud.synthetic_dataset("cifar10", n_train=300, n_test=100)
    train, test = cud.make_loaders(data, batch_size=64, max_batches=2, test_batch_size=50)
    assert train.augment and train.shuffle and train.drop_last and len(train) == 2
    assert not test.augment and not test.shuffle and len(test) == 2 and test.batch_size == 50
    assert torch.allclose(train.mean.flatten(), torch.tensor(data.mean))


# ---------------------------------------------------------------------------
# The torchvision recipe, for comparison
# ---------------------------------------------------------------------------


def test_torchvision_loader_gives_the_same_normalised_batches():
    data = cud.synthetic_dataset("cifar10", n_train=64, n_test=40)
    ours = cud.DeviceLoader(data.test_images, data.test_labels, 16, train=False, mean=data.mean, std=data.std)
    theirs = cud.torchvision_loader(data, batch_size=16, train=False, num_workers=0)
    for (x, y), (tx, ty) in zip(ours, theirs):
        torch.testing.assert_close(tx, x, atol=1e-5, rtol=0)
        assert torch.equal(ty, y)
    x, y = next(iter(cud.torchvision_loader(data, batch_size=16, train=True, num_workers=0)))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_torchvision_loader_handles_grey_images():
    data = cud.synthetic_dataset("mnist", n_train=32, n_test=8)
    x, _ = next(iter(cud.torchvision_loader(data, batch_size=8, train=True, num_workers=0)))
    assert x.shape == (8, 1, 28, 28)
