"""Datasets as uint8 tensors (:class:`ImageData`, read by :mod:`course_utils.datasets`), and :class:`DeviceLoader`,
which keeps a whole dataset on the device and augments whole batches there; :func:`torchvision_loader` to compare."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from .datasets import MNIST_CLASSES, DatasetNotFound, find  # noqa: F401 (MNIST_CLASSES: part of this module's API)


@dataclass(repr=False, eq=False)  # eq: comparing tensors with == gives no single True/False
class ImageData:
    """A labelled image dataset held as uint8 tensors, split into train and test."""

    train_images: torch.Tensor  # uint8, (N, C, H, W)
    train_labels: torch.Tensor  # int64, (N,)
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    name: str  # "cifar10", "mnist", ...
    source: str  # one sentence: where the images came from

    def __post_init__(self) -> None:
        _check_images_labels(self.train_images, self.train_labels, what="train")
        _check_images_labels(self.test_images, self.test_labels, what="test")

    @cached_property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean of the train images scaled to [0, 1] (what ``Normalize`` subtracts)."""
        return _channel_mean_std(self.train_images)[0]

    @cached_property
    def std(self) -> tuple[float, ...]:
        """Per-channel standard deviation of the train images scaled to [0, 1]."""
        return _channel_mean_std(self.train_images)[1]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.train_images.shape[1:])

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> ImageData:
        """A random subset, each class in its original share (``None`` keeps a split whole); same seed, same subset."""
        generator = torch.Generator().manual_seed(seed)
        tr = _stratified_indices(self.train_labels, train, generator, "train")
        te = _stratified_indices(self.test_labels, test, generator, "test")
        arrays = dict(train_images=self.train_images[tr], train_labels=self.train_labels[tr])
        arrays.update(test_images=self.test_images[te], test_labels=self.test_labels[te], classes=list(self.classes))
        return ImageData(**arrays, name=self.name, source=f"{self.source}; a stratified random subset (seed {seed})")

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        classes = ", ".join(self.classes[:10]) + (", ..." if len(self.classes) > 10 else "")
        return (
            f"ImageData({self.name!r}: {len(self.train_labels):,} train + {len(self.test_labels):,} test images, "
            f"{c}x{h}x{w} uint8, {len(self.classes)} classes ({classes}); {self.source})"
        )


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
    # A uint8 pixel has 256 possible values: count them per channel; mean and variance are then short exact sums.
    counts = torch.stack([torch.bincount(channel.flatten(), minlength=256) for channel in images.transpose(0, 1)])
    share, values = counts.double() / counts.sum(dim=1, keepdim=True), torch.arange(256, dtype=torch.float64) / 255
    mean = (share * values).sum(dim=1)
    std = ((share * values**2).sum(dim=1) - mean**2).clamp(min=0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


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
    members = [(labels == cls).nonzero().flatten() for cls in classes.tolist()]
    picked = [m[torch.randperm(len(m), generator=generator)[:k]] for m, k in zip(members, quota.tolist())]
    return torch.cat(picked).sort().values


def load_cifar10(
    data_dir: str | Path | None = None, *, download: bool = True, timeout: float = 60.0, verbose: bool = True
) -> ImageData:
    """CIFAR-10: 50,000 train and 10,000 test colour images, 3x32x32, in 10 classes, from ``data_dir`` (default
    ``COURSE_DATA_DIR``), ``data/`` or torchvision's download (``timeout`` s without data stop it); what it reads:
    :mod:`course_utils.datasets`. :class:`DatasetNotFound` says what to put where; a ``ValueError``, what is damaged."""
    return _load("cifar10", data_dir, download, timeout, verbose)


def load_mnist(
    data_dir: str | Path | None = None, *, download: bool = True, timeout: float = 60.0, verbose: bool = True
) -> ImageData:
    """MNIST: 60,000 train and 10,000 test handwritten digits, 1x28x28, found like :func:`load_cifar10`. The official
    test set alone (the two ``t10k`` files, as in ``mnist-test/``) is split 8,000 train / 2,000 test, stratified."""
    return _load("mnist", data_dir, download, timeout, verbose)


def _load(name: str, data_dir: str | Path | None, download: bool, timeout: float, verbose: bool) -> ImageData:
    found = find(name, data_dir, download, timeout)
    if "train_images" not in found:  # MNIST's test set alone
        images, labels = found.pop("test_images"), found.pop("test_labels")
        n_train = len(labels) * 4 // 5
        is_train = torch.zeros(len(labels), dtype=torch.bool)
        is_train[_stratified_indices(labels, n_train, torch.Generator().manual_seed(0), "train")] = True
        found.update(train_images=images[is_train], train_labels=labels[is_train])
        found.update(test_images=images[~is_train], test_labels=labels[~is_train])
        found["source"] += f", split {n_train:,} train / {len(labels) - n_train:,} test (stratified, seed 0)"
    data = ImageData(**found, name=name)
    if verbose:
        print(data)
    return data


class DeviceLoader:
    """Keeps a whole dataset on the device (uint8, copied once) and augments it there, a whole batch at a time:
    random crop with zero padding (like ``RandomCrop(32, padding=4)``) and flip, then ``(x / 255 - mean) / std``. No
    worker processes, no per-image Python code: the GPU never waits. Epoch ``e``'s shuffle and augmentation depend
    only on ``(seed, e)``: ``set_epoch(e)`` replays it (resuming a run); otherwise each ``iter()`` moves on one epoch.
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
        name: str = "",
    ) -> None:
        _check_images_labels(images, labels)
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"the images have {channels} channel(s), got mean={tuple(mean)}, std={tuple(std)}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}.")
        if crop_padding < 0:
            raise ValueError(f"crop_padding must be 0 or more; got {crop_padding}.")
        self.augment, self.shuffle, self.drop_last = (train if x is None else x for x in (augment, shuffle, drop_last))
        if self.drop_last and len(images) < batch_size:
            raise ValueError(f"{len(images)} images make no full batch of {batch_size}: pass drop_last=False.")
        self.name, self.batch_size, self.device = name, batch_size, torch.device(device)
        self.crop_padding, self.flip, self.seed, self.channels_last = crop_padding, flip, seed, channels_last
        # Kept as uint8: 4x less device memory than float, converted one batch at a time.
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, channels, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, channels, 1, 1)
        self.epoch = 0  # the epoch the next iter() plays

    @property
    def recipe(self) -> dict:
        """Everything that decides which batches an epoch yields (a checkpoint compares it when resuming)."""
        steps = ([f"crop {self.crop_padding}"] if self.crop_padding else []) + (["flip"] if self.flip else [])
        steps = steps if self.augment else []
        recipe = dict(dataset=self.name, images=len(self.labels), batch_size=self.batch_size, seed=self.seed)
        return recipe | dict(shuffle=self.shuffle, drop_last=self.drop_last, augment=" + ".join(steps) or "none")

    def __len__(self) -> int:
        """Batches per epoch, after ``drop_last``."""
        full, rest = divmod(len(self.labels), self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

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
        n, device = len(self.labels), self.device
        generator = torch.Generator(device=device)
        # SeedSequence turns (seed, epoch) into a well-mixed seed: nearby pairs give unrelated streams.
        generator.manual_seed(int(np.random.SeedSequence([self.seed, epoch]).generate_state(1, np.uint64)[0]))
        # Drawn even when not shuffling, so the crops of an epoch do not depend on `shuffle`.
        order = torch.randperm(n, generator=generator, device=device)
        order = order if self.shuffle else torch.arange(n, device=device)
        shifts = torch.randint(0, 2 * self.crop_padding + 1, (n, 2), generator=generator, device=device)
        # Drawn even without flips, so that flip=False leaves the crops of the epoch as they were.
        flips = (torch.rand(n, generator=generator, device=device) < 0.5) & self.flip
        return order, shifts, flips

    def _batches(self, order: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor):
        for i in range(len(self)):
            window = slice(i * self.batch_size, (i + 1) * self.batch_size)
            index = order[window]
            x = self.images[index]
            if self.augment:
                x = crop_and_flip(x, shifts[window], flips[window], self.crop_padding)
            x = x.float().div_(255).sub_(self.mean).div_(self.std)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[index]

    def __repr__(self) -> str:
        return f"DeviceLoader({self.recipe}, {len(self)} batches/epoch on {self.device})"


def crop_and_flip(images: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor, padding: int) -> torch.Tensor:
    """Random-crop and flip a batch at once: ``images`` (B, C, H, W) are zero-padded by ``padding``, image ``b`` is cut
    at offset ``shifts[b] = (dy, dx)`` (each in ``0..2*padding``) back to H x W, and mirrored where ``flips[b]``."""
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
    seed: int = 0,
    augment: bool = True,
    flip: bool = True,
    test_batch_size: int | None = None,
    channels_last: bool = False,
) -> tuple[DeviceLoader, DeviceLoader]:
    """A training loader (shuffled, augmented, full batches) and a test loader (in order, plain) on ``device``, both
    normalised with the training set's mean and std. ``flip=False`` for digits: a mirrored 2 is no 2."""
    common = dict(device=device, mean=data.mean, std=data.std, channels_last=channels_last, name=data.name)
    common.update(seed=seed, flip=flip)  # the test loader does not augment: its flip is never used
    train_batch = min(batch_size, len(data.train_labels))
    train = DeviceLoader(data.train_images, data.train_labels, train_batch, train=True, augment=augment, **common)
    test = DeviceLoader(data.test_images, data.test_labels, test_batch_size or batch_size, train=False, **common)
    return train, test


class _PILDataset(Dataset):
    """Hands out ``(transform(PIL image), label)`` pairs, like torchvision's own datasets do."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: transforms.Compose, name: str) -> None:
        # PIL wants (H, W, C), or (H, W) for grey images; convert once, not per image.
        array = images.permute(0, 2, 3, 1).contiguous().numpy()
        self.images = array[..., 0] if array.shape[-1] == 1 else array
        self.labels, self.transform, self.name = labels.tolist(), transform, name

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


def torchvision_loader(data: ImageData, batch_size: int = 128, train: bool = True, num_workers: int = 2) -> DataLoader:
    """The usual recipe: per-image PIL transforms (``RandomCrop(padding=4)`` and ``RandomHorizontalFlip`` to train,
    ``ToTensor``, ``Normalize``) in worker processes: :class:`DeviceLoader`'s batches, made on the CPU."""
    steps = [transforms.RandomCrop(data.image_shape[1], padding=4), transforms.RandomHorizontalFlip()] if train else []
    steps += [transforms.ToTensor(), transforms.Normalize(data.mean, data.std)]
    images, labels = (data.train_images, data.train_labels) if train else (data.test_images, data.test_labels)
    dataset = _PILDataset(images, labels, transforms.Compose(steps), data.name)
    workers = dict(num_workers=num_workers, persistent_workers=num_workers > 0, pin_memory=torch.cuda.is_available())
    return DataLoader(dataset, batch_size, shuffle=train, drop_last=train, **workers)
