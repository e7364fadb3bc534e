"""course_utils.data: finding, reading and caching datasets; ImageData; DeviceLoader's batches and augmentation."""

from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import socket
import tarfile
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.datasets import ImageFolder

from course_utils import data as cud

COLOURS = {"dog": (200, 40, 40), "cat": (40, 40, 200), "wolf": (40, 200, 40)}  # solid colours survive JPEG
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test caches under tmp_path, never in the repository's data/."""
    cache = tmp_path / "course-cache"
    cache.mkdir()
    monkeypatch.setenv("COURSE_CACHE_DIR", str(cache))
    return cache


def jpeg_bytes(colour: tuple[int, int, int], size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def tree_files(per_class: dict[str, int], test_per_class: int = 2) -> list[str]:
    """Relative paths train/<class>/NNNN.jpg and test/<class>/NNNN.jpg."""
    files = [f"train/{cls}/{i:04d}.jpg" for cls, n in per_class.items() for i in range(n)]
    return files + [f"test/{cls}/{i:04d}.jpg" for cls in per_class for i in range(test_per_class)]


def write_tree(root: Path, per_class: dict[str, int], size: int = 32) -> Path:
    """An image-folder tree whose images have their class's colour."""
    for name in tree_files(per_class):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(jpeg_bytes(COLOURS[name.split("/")[1]], size))
    return root


def tar_bytes(per_class: dict[str, int], rename: dict[str, str] | None = None) -> bytes:
    """An uncompressed tar of an image-folder tree, members shuffled under a top-level folder (as archives often are);
    ``rename`` puts a class's images in a folder of another name."""
    files = tree_files(per_class)
    random.Random(0).shuffle(files)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in files:
            split, cls, file = name.split("/")
            data = jpeg_bytes(COLOURS[cls])
            info = tarfile.TarInfo(f"tiny/{split}/{(rename or {}).get(cls, cls)}/{file}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def colour_of(images: torch.Tensor) -> list[str]:
    """The COLOURS name nearest to each image's mean colour."""
    names, rgb = list(COLOURS), torch.tensor(list(COLOURS.values()), dtype=torch.float32)
    return [names[i] for i in torch.cdist(images.float().mean(dim=(2, 3)), rgb).argmin(1)]


def assert_labels_follow_folders(data: cud.ImageData) -> None:
    for images, labels in [(data.train_images, data.train_labels), (data.test_images, data.test_labels)]:
        assert colour_of(images) == [data.classes[label] for label in labels]


# ---------------------------------------------------------------------------
# Image-folder trees and archives, and their cache
# ---------------------------------------------------------------------------


def test_image_folder_tarball_is_decoded_once_then_read_from_the_cache(tmp_path: Path, private_cache: Path):
    data_dir = tmp_path / "datasets"
    data_dir.mkdir()
    (data_dir / "cifar10-tiny.tar.gz").write_bytes(gzip.compress(tar_bytes({"dog": 3, "cat": 4})))

    first = cud.load_cifar10(data_dir, download=False, verbose=False)
    assert "decoded in" in first.source and "cifar10-tiny.tar.gz" in first.source
    assert first.classes == ["cat", "dog"]  # sorted folder names, whatever the archive's order
    assert first.train_images.shape == (7, 3, 32, 32) and first.train_images.dtype == torch.uint8
    assert first.test_images.shape == (4, 3, 32, 32) and first.train_labels.dtype == torch.int64
    assert_labels_follow_folders(first)
    # One fixed shuffled order, not sorted by class (a sorted test split would give single-class batches).
    assert first.train_labels.tolist() != sorted(first.train_labels.tolist())
    assert [p.name for p in data_dir.iterdir()] == ["cifar10-tiny.tar.gz"]  # nothing written next to the data

    second = cud.load_cifar10(data_dir, download=False, verbose=False)
    assert "read from the cache" in second.source
    assert torch.equal(second.train_images, first.train_images) and torch.equal(second.test_labels, first.test_labels)
    assert second.classes == first.classes
    assert len(list((private_cache / "cache").glob("*.pt"))) == 1


def test_image_folder_tree_is_read_by_torchvisions_image_folder_rules(tmp_path: Path):
    root = write_tree(tmp_path / "cifar10-folders", {"dog": 3, "cat": 2})
    (root / "train" / "dog" / "notes.txt").write_text("not an image, and no image extension: ignored")
    (root / "train" / "cat" / "more").mkdir()
    (root / "train" / "cat" / "more" / "0099.PNG").write_bytes(jpeg_bytes(COLOURS["cat"]))  # nested, upper case
    data = cud.load_cifar10(tmp_path, download=False, verbose=False)
    reference = ImageFolder(str(root / "train"))
    assert data.classes == reference.classes
    assert sorted(data.train_labels.tolist()) == sorted(reference.targets) == [0, 0, 0, 1, 1, 1]
    assert_labels_follow_folders(data)


@pytest.mark.parametrize("kind", ["folder", "tar.gz"])
def test_renaming_a_class_folder_rebuilds_the_cache(tmp_path: Path, private_cache: Path, kind: str):
    root = write_tree(tmp_path / "cifar10-tree", {"dog": 3, "cat": 2})
    archive = tmp_path / "cifar10-tree.tar.gz"
    if kind == "tar.gz":
        archive.write_bytes(gzip.compress(tar_bytes({"dog": 3, "cat": 2})))
        shutil.rmtree(root)
    assert cud.load_cifar10(tmp_path, download=False, verbose=False).classes == ["cat", "dog"]

    # dog -> wolf, as someone fixing a wrong folder name would; the images (and their times) stay the same.
    if kind == "folder":
        for split in ("train", "test"):
            (root / split / "dog").rename(root / split / "wolf")
    else:
        stat = archive.stat()
        archive.write_bytes(gzip.compress(tar_bytes({"dog": 3, "cat": 2}, rename={"dog": "wolf"})))
        os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = cud.load_cifar10(tmp_path, download=False, verbose=False)
    assert "decoded in" in again.source and again.classes == ["cat", "wolf"]
    assert len(list((private_cache / "cache").glob("*.pt"))) == 1  # the stale cache is gone


@pytest.mark.parametrize(
    "move, train_counts, test_counts",
    [
        (("train/dog/0000.jpg", "train/cat/0000b.jpg"), [3, 2], [2, 2]),  # a mislabelled image put right
        (("train/dog/0000.jpg", "test/dog/0009.jpg"), [2, 2], [2, 3]),  # from the train split to the test split
    ],
)
def test_moving_an_image_rebuilds_the_cache_with_the_new_labels(tmp_path: Path, move, train_counts, test_counts):
    root = write_tree(tmp_path / "cifar10-tree", {"cat": 2, "dog": 3})
    first = cud.load_cifar10(tmp_path, download=False, verbose=False)
    assert first.train_labels.bincount().tolist() == [2, 3]
    source, target = (root / name for name in move)
    source.rename(target)  # a move keeps the file's size and modification time
    moved = cud.load_cifar10(tmp_path, download=False, verbose=False)
    assert "decoded in" in moved.source
    assert moved.train_labels.bincount().tolist() == train_counts
    assert moved.test_labels.bincount().tolist() == test_counts


@pytest.mark.parametrize(
    "bad_bytes",
    [b"this is text, saved with a .jpg name", jpeg_bytes(COLOURS["dog"])[:300]],
    ids=["not-an-image", "truncated-jpeg"],
)
def test_a_bad_image_in_a_tree_is_named(tmp_path: Path, bad_bytes: bytes):
    root = write_tree(tmp_path / "cifar10-tree", {"dog": 2, "cat": 2})
    (root / "train" / "cat" / "0001.jpg").write_bytes(bad_bytes)
    with pytest.raises(ValueError, match=r"cifar10-tree/train/cat/0001\.jpg is not a readable image"):
        cud.load_cifar10(tmp_path, download=False, verbose=False)


def test_images_of_the_wrong_size_are_named(tmp_path: Path):
    root = write_tree(tmp_path / "cifar10-tree", {"dog": 2, "cat": 2})
    (root / "test" / "dog" / "0000.jpg").write_bytes(jpeg_bytes(COLOURS["dog"], size=16))
    with pytest.raises(ValueError, match=r"test/dog/0000\.jpg is 16x16, expected 32x32"):
        cud.load_cifar10(tmp_path, download=False, verbose=False)


def test_a_truncated_archive_is_named(tmp_path: Path):
    whole = gzip.compress(tar_bytes({"dog": 3, "cat": 3}))
    archive = tmp_path / "cifar10-cut.tar.gz"
    archive.write_bytes(whole[: len(whole) * 2 // 3])  # an interrupted copy or download
    with pytest.raises(ValueError, match=r"cifar10-cut\.tar\.gz is damaged or incomplete .*copy or download it again"):
        cud.load_cifar10(tmp_path, download=False, verbose=False)


@pytest.mark.parametrize("where", ["inside a member", "between members"])
def test_a_tar_that_ends_early_inside_valid_gzip_is_named(tmp_path: Path, where: str):
    whole = tar_bytes({"dog": 3, "cat": 3})
    with tarfile.open(fileobj=io.BytesIO(whole)) as tar:
        members = tar.getmembers()
    last = members[-1]  # cut inside the last image, or just before its header: the images before it are all whole
    cut = last.offset_data + 100 if where == "inside a member" else last.offset
    (tmp_path / "cifar10-cut.tar.gz").write_bytes(gzip.compress(whole[:cut]))  # a complete gzip stream
    with pytest.raises(ValueError, match=r"cifar10-cut\.tar\.gz is damaged or incomplete .*copy or download it again"):
        cud.load_cifar10(tmp_path, download=False, verbose=False)


def test_an_unreadable_cache_file_is_ignored_with_a_warning(tmp_path: Path, private_cache: Path):
    write_tree(tmp_path / "cifar10-tree", {"dog": 2, "cat": 2})
    good = cud.load_cifar10(tmp_path, download=False, verbose=False)
    (cache_file,) = (private_cache / "cache").glob("*.pt")
    cache_file.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable cache"):
        again = cud.load_cifar10(tmp_path, download=False, verbose=False)
    assert torch.equal(again.train_images, good.train_images)
    assert "read from the cache" in cud.load_cifar10(tmp_path, download=False, verbose=False).source  # rebuilt


@pytest.mark.parametrize("how", ["read-only folder", "a file in the way"])
def test_a_cache_that_cannot_be_written_warns_and_loading_goes_on(tmp_path: Path, private_cache: Path, how: str):
    write_tree(tmp_path / "cifar10-tree", {"dog": 2, "cat": 3})
    if how == "read-only folder":
        private_cache.chmod(0o555)
        if os.access(private_cache, os.W_OK):
            private_cache.chmod(0o755)
            pytest.skip("this user (root) writes into read-only folders; the other case covers the warning")
    else:
        (private_cache / "cache").write_text("a file where the cache folder should be")
    try:
        for _ in range(2):
            with pytest.warns(UserWarning, match="cannot be cached in .*loading goes on without it"):
                data = cud.load_cifar10(tmp_path, download=False, verbose=False)
            assert "decoded in" in data.source and data.train_labels.bincount().tolist() == [3, 2]
            assert_labels_follow_folders(data)
    finally:
        private_cache.chmod(0o755)


# ---------------------------------------------------------------------------
# torchvision's own files
# ---------------------------------------------------------------------------


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
    data = cud.load_mnist(tmp_path, download=False, verbose=False)
    assert data.train_images.shape == (30, 1, 28, 28) and data.test_images.shape == (20, 1, 28, 28)
    assert data.train_labels.tolist() == [i % 10 for i in range(30)] and data.classes == cud.MNIST_CLASSES
    assert "official MNIST files" in data.source


def test_mnist_test_files_alone_are_split_80_20(tmp_path: Path, capsys):
    fake_mnist(tmp_path / "mnist-test", {"t10k": 50}, suffix="")
    data = cud.load_mnist(tmp_path, download=False)
    assert len(data.train_labels) == 40 and len(data.test_labels) == 10
    assert data.test_labels.bincount().tolist() == [1] * 10  # stratified: one of each digit held out
    assert "TEST set only" in data.source and "40 train / 10 test" in capsys.readouterr().out


def test_a_cut_short_idx_file_is_named(tmp_path: Path):
    fake_mnist(tmp_path / "MNIST" / "raw", {"t10k": 20})
    images = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:-100]))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz is not a complete IDX file"):
        cud.load_mnist(tmp_path, download=False, verbose=False)


def test_an_official_cifar_archive_that_fails_its_checksum_is_named(tmp_path: Path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"the first bytes of an interrupted download")
    with pytest.raises(ValueError, match=r"cifar-10-python\.tar\.gz fails its MD5 check"):
        cud.load_cifar10(tmp_path, download=False, verbose=False)


# ---------------------------------------------------------------------------
# Nothing found, and downloads
# ---------------------------------------------------------------------------


def test_missing_datasets_say_where_they_looked_and_what_to_put_where(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for load, wanted in [(cud.load_cifar10, "cifar-10-python.tar.gz"), (cud.load_mnist, "t10k-images-idx3-ubyte")]:
        with pytest.raises(cud.DatasetNotFound) as caught:
            load(empty, download=False, verbose=False)
        message = str(caught.value)
        assert isinstance(caught.value, FileNotFoundError)
        assert str(empty) in message and wanted in message and "COURSE_DATA_DIR" in message
        assert "download=False" in message


def read_proxies_anew(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib reads the proxy variables once, when its first download builds the shared opener: build a new one."""
    monkeypatch.setattr(urllib.request, "_opener", None)


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch):
    """Send every download through a local proxy (127.0.0.1 only) that accepts connections and never answers."""
    read_proxies_anew(monkeypatch)
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{server.getsockname()[1]}")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    # Without a timeout, a download would wait for an answer forever: the proxy hangs up after 20 s at the latest.
    closer = threading.Timer(20, lambda: [s.close() for s in [*held, server]])
    closer.start()
    yield server
    closer.cancel()
    for s in [*held, server]:
        s.close()


def test_a_stalled_download_stops_after_the_timeout_and_says_what_to_do(tmp_path: Path, private_cache: Path, proxy):
    with pytest.raises(cud.DatasetNotFound, match=r"stopped, no data for 1 s") as caught:
        cud.load_cifar10(tmp_path, download=True, timeout=1, verbose=False)
    assert "cifar-10-python.tar.gz" in str(caught.value) and "COURSE_DATA_DIR" in str(caught.value)
    assert not (private_cache / "cifar-10-python.tar.gz").exists()  # no half-downloaded file left behind


def test_a_failed_download_gives_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    read_proxies_anew(monkeypatch)
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]  # closed again at once: connecting to it is refused
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(cud.DatasetNotFound, match=r"download into .*: failed \(URLError: .*refused"):
        cud.load_mnist(tmp_path, download=True, timeout=5, verbose=False)


# ---------------------------------------------------------------------------
# The real datasets (where COURSE_DATA_DIR holds them, as in CI)
# ---------------------------------------------------------------------------


def real_data_dir(needs: str) -> Path:
    value = os.environ.get("COURSE_DATA_DIR")
    if not value:
        pytest.skip("COURSE_DATA_DIR is not set, so the real datasets are not available offline")
    if not (Path(value) / needs).exists():
        pytest.skip(f"COURSE_DATA_DIR={value} has no {needs}")
    return Path(value)


def test_real_mnist_test_set_is_split_8000_2000(capsys):
    data_dir = real_data_dir("mnist-test/t10k-images-idx3-ubyte.gz")
    data = cud.load_mnist(data_dir, download=False)
    assert "8,000 train / 2,000 test" in capsys.readouterr().out
    assert data.train_images.shape == (8000, 1, 28, 28) and data.test_images.shape == (2000, 1, 28, 28)
    assert "TEST set only" in data.source
    # Stratified: each digit keeps its share (80%) in train, up to rounding.
    total = data.train_labels.bincount(minlength=10) + data.test_labels.bincount(minlength=10)
    assert total.sum() == 10_000 and ((data.train_labels.bincount(minlength=10) - 0.8 * total).abs() <= 1).all()
    again = cud.load_mnist(data_dir, download=False, verbose=False)
    assert torch.equal(again.train_labels, data.train_labels)


def test_real_cifar10(monkeypatch: pytest.MonkeyPatch):
    data_dir = real_data_dir("cifar10-jpeg.tar.gz")
    monkeypatch.delenv("COURSE_CACHE_DIR")  # the default cache (data/cache/): the 60,000 JPEGs are decoded once
    data = cud.load_cifar10(data_dir, download=False, verbose=False)
    assert data.train_images.shape == (50_000, 3, 32, 32) and data.test_images.shape == (10_000, 3, 32, 32)
    assert data.classes == CIFAR10_CLASSES  # the official label order is alphabetical
    assert data.train_labels.bincount().tolist() == [5000] * 10
    assert data.test_labels.bincount().tolist() == [1000] * 10
    assert np.allclose(data.mean, (0.491, 0.482, 0.447), atol=0.005)


# ---------------------------------------------------------------------------
# ImageData
# ---------------------------------------------------------------------------


def small_data(n_train: int = 1000, n_test: int = 300, channels: int = 3, size: int = 8) -> cud.ImageData:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_train + n_test, channels, size, size), generator=generator, dtype=torch.uint8)
    labels = torch.arange(n_train + n_test) % 10
    return cud.ImageData(
        images[:n_train], labels[:n_train], images[n_train:], labels[n_train:], list("abcdefghij"), "small", "random"
    )


def test_subset_is_stratified_and_deterministic():
    data = small_data()
    small = data.subset(train=105, test=30, seed=1)
    assert len(small.train_labels) == 105 and len(small.test_labels) == 30
    assert sorted(small.train_labels.bincount().tolist()) == [10] * 5 + [11] * 5  # 100 of each class, 10.5%
    assert torch.equal(small.train_images, data.subset(train=105, test=30, seed=1).train_images)
    assert not torch.equal(small.train_labels, data.subset(train=105, test=30, seed=2).train_labels)
    assert data.subset(test=10).train_labels.shape == (1000,) and small.name == "small"
    with pytest.raises(ValueError, match="between 1 and the 1,000 train images"):
        data.subset(train=2000)


def test_mean_std_image_shape_and_repr():
    data = small_data()
    x = data.train_images.double() / 255
    assert np.allclose(data.mean, x.mean(dim=(0, 2, 3)).tolist())
    assert np.allclose(data.std, x.std(dim=(0, 2, 3), unbiased=False).tolist())
    assert data.image_shape == (3, 8, 8)
    text = repr(data)
    assert "1,000 train + 300 test images" in text and "3x8x8" in text and "random" in text


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


def torchvision_crop(image: torch.Tensor, dy: int, dx: int, padding: int, flip: bool) -> torch.Tensor:
    """What RandomCrop(padding=...) and RandomHorizontalFlip do to one image: zero-pad, cut the window, maybe mirror."""
    h, w = image.shape[1:]
    window = TF.crop(TF.pad(image, [padding]), dy, dx, h, w)
    return TF.hflip(window) if flip else window


def matching_windows(out: torch.Tensor, original: torch.Tensor, padding: int) -> list[tuple[int, int, bool]]:
    span = range(2 * padding + 1)
    return [
        (dy, dx, flip)
        for dy in span
        for dx in span
        for flip in (False, True)
        if torch.equal(out, torchvision_crop(original, dy, dx, padding, flip))
    ]


def test_plain_batches_are_exactly_normalised():
    images, labels = toy()
    loader = cud.DeviceLoader(images, labels, 16, train=False, mean=MEAN, std=STD)
    x, y = next(iter(loader))
    assert x.dtype == torch.float32 and x.shape == (16, 3, 10, 10) and x.device.type == "cpu"
    assert y.dtype == torch.int64 and y.tolist() == list(range(16))
    expected = (images[:16].float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    assert torch.equal(x, expected)


def test_every_augmented_image_is_a_torchvision_random_crop():
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
    flipped = [torch.equal(out, TF.hflip(images[i])) for out, i in zip(pixels, seen)]
    kept = [torch.equal(out, images[i]) for out, i in zip(pixels, seen)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 40


def test_crop_and_flip_equals_torchvisions_crop_and_flip_image_by_image():
    images, _ = toy(n=12)
    generator = torch.Generator().manual_seed(5)
    shifts = torch.randint(0, 9, (12, 2), generator=generator)
    flips = torch.rand(12, generator=generator) < 0.5
    out = cud.crop_and_flip(images, shifts, flips, padding=4)
    for i in range(12):
        expected = torchvision_crop(images[i], int(shifts[i, 0]), int(shifts[i, 1]), 4, bool(flips[i]))
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


def test_len_and_drop_last():
    images, labels = toy()
    train = cud.DeviceLoader(images, labels, 16, train=True, mean=MEAN, std=STD)
    test = cud.DeviceLoader(images, labels, 16, train=False, mean=MEAN, std=STD)
    assert len(train) == 3 and [len(y) for _, y in train] == [16, 16, 16]  # drop_last: the 2 left over are dropped
    assert len(test) == 4 and [len(y) for _, y in test] == [16, 16, 16, 2]


def test_channels_last():
    images, labels = toy()
    x, _ = next(iter(cud.DeviceLoader(images, labels, 8, train=True, mean=MEAN, std=STD, channels_last=True)))
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(images=torch.zeros(4, 3, 8, 8)), "uint8 tensor of shape \\(N, C, H, W\\); got torch.float32"),
        (dict(images=torch.zeros(4, 8, 8, dtype=torch.uint8)), "got torch.uint8 of shape \\(4, 8, 8\\)"),
        (dict(labels=torch.zeros(3, dtype=torch.int64)), "4 images but 3 labels"),
        (dict(batch_size=0), "batch_size must be at least 1; got 0"),
        (dict(crop_padding=-1), "crop_padding must be 0 or more; got -1"),
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


def test_make_loaders_and_their_recipes():
    data = small_data(n_train=300, n_test=100)
    train, test = cud.make_loaders(data, batch_size=64, test_batch_size=50, seed=3)
    assert train.augment and train.shuffle and train.drop_last and len(train) == 4
    assert not test.augment and not test.shuffle and len(test) == 2 and test.batch_size == 50
    assert torch.allclose(train.mean.flatten(), torch.tensor(data.mean))
    assert train.recipe == dict(
        dataset="small", images=300, batch_size=64, seed=3, shuffle=True, drop_last=True, augment="crop 4 + flip"
    )
    assert test.recipe["dataset"] == "small" and test.recipe["images"] == 100 and test.recipe["augment"] == "none"
    assert cud.make_loaders(data, flip=False)[0].recipe["augment"] == "crop 4"
    assert cud.make_loaders(data, augment=False)[0].recipe["augment"] == "none"
    tiny_train, _ = cud.make_loaders(data.subset(train=20), batch_size=64)  # fewer images than a batch: one batch
    assert len(tiny_train) == 1 and tiny_train.recipe["batch_size"] == 20


# ---------------------------------------------------------------------------
# The torchvision recipe, for comparison
# ---------------------------------------------------------------------------


def test_torchvision_loader_gives_the_same_normalised_batches():
    data = small_data(n_train=64, n_test=40, size=32)
    ours = cud.DeviceLoader(data.test_images, data.test_labels, 16, train=False, mean=data.mean, std=data.std)
    theirs = cud.torchvision_loader(data, batch_size=16, train=False, num_workers=0)
    for (x, y), (tx, ty) in zip(ours, theirs):
        torch.testing.assert_close(tx, x, atol=1e-5, rtol=0)
        assert torch.equal(ty, y)
    x, y = next(iter(cud.torchvision_loader(data, batch_size=16, train=True, num_workers=0)))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_torchvision_loader_handles_grey_images():
    data = small_data(n_train=32, n_test=8, channels=1, size=28)
    x, _ = next(iter(cud.torchvision_loader(data, batch_size=8, train=True, num_workers=0)))
    assert x.shape == (8, 1, 28, 28)
