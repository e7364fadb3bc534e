"""The CIFAR-10 networks of the ResNet paper (section 4.2): depth 6n+2.

Three stages of n BasicBlocks with 16, 32 and 64 channels on 32x32, 16x16 and
8x8 feature maps, global average pooling and a 10-way classifier. The
``shortcut`` option picks how a block whose shape changes is bridged:

- ``"A"``: identity with stride 2 and zero-padded extra channels (no parameters);
  the paper's choice for CIFAR-10.
- ``"B"``: a 1x1 projection (+BN) only where the shape changes, identity elsewhere.
- ``"C"``: a 1x1 projection (+BN) on every block.

``residual=False`` gives the plain network of the same depth (figure 6, left).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_image_batch, check_positive_int
from .resnet import BasicBlock, conv1x1, init_weights, resnet18

SHORTCUT_OPTIONS = ("A", "B", "C")


class PadShortcut(nn.Module):
    """Option A: subsample by ``stride`` and append zero channels. Has no parameters."""

    def __init__(self, stride: int, extra_channels: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra_channels = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        # F.pad pads the last dims first: (W left, W right, H top, H bottom, C front, C back).
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


def make_shortcut(option: str, inplanes: int, planes: int, stride: int) -> nn.Module | None:
    """The shortcut module for one block (``None`` means the identity)."""
    if option not in SHORTCUT_OPTIONS:
        raise ValueError(f"shortcut must be one of {SHORTCUT_OPTIONS} (the paper's options A, B, C); got {option!r}.")
    shape_changes = stride != 1 or inplanes != planes
    if option == "C" or (option == "B" and shape_changes):
        return nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
    if option == "A" and shape_changes:
        return PadShortcut(stride, planes - inplanes)
    return None


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images, with the paper's shortcut options A, B, C."""

    def __init__(
        self,
        depth: int = 20,
        num_classes: int = 10,
        shortcut: str = "A",
        residual: bool = True,
        in_channels: int = 3,
        widths: tuple[int, int, int] = (16, 32, 64),
    ) -> None:
        super().__init__()
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(
                f"CIFAR ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...); got {depth!r}."
            )
        if shortcut not in SHORTCUT_OPTIONS:
            raise ValueError(
                f"shortcut must be one of {SHORTCUT_OPTIONS} (the paper's options A, B, C); got {shortcut!r}."
            )
        check_positive_int(in_channels, "in_channels")
        n = (depth - 2) // 6
        self.depth, self.shortcut, self.residual, self.in_channels = depth, shortcut, residual, in_channels
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.inplanes = widths[0]
        self.layer1 = self._make_layer(widths[0], n, stride=1)
        self.layer2 = self._make_layer(widths[1], n, stride=2)
        self.layer3 = self._make_layer(widths[2], n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[2], num_classes)
        init_weights(self)

    @property
    def name(self) -> str:
        """The paper's name: "plain-56", or "ResNet-20 (option A)"."""
        return f"ResNet-{self.depth} (option {self.shortcut})" if self.residual else f"plain-{self.depth}"

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for i in range(blocks):
            s = stride if i == 0 else 1
            # A plain network has no shortcut at all, so it needs no projection either.
            down = make_shortcut(self.shortcut, self.inplanes, planes, s) if self.residual else None
            layers.append(BasicBlock(self.inplanes, planes, s, down, residual=self.residual))
            self.inplanes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.in_channels, type(self).__name__)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def cifar_resnet(depth: int = 20, shortcut: str = "A", residual: bool = True, **kwargs) -> CifarResNet:
    """ResNet-``depth`` for CIFAR-10 (``residual=False``: the plain net of that depth)."""
    return CifarResNet(depth, shortcut=shortcut, residual=residual, **kwargs)


def cifar_plain(depth: int = 20, **kwargs) -> CifarResNet:
    """The plain network of the paper's figure 6: the same layers, no shortcuts."""
    return CifarResNet(depth, residual=False, **kwargs)


def cifar_resnet18(num_classes: int = 10, **kwargs) -> nn.Module:
    """ResNet-18 with the CIFAR stem (3x3 conv, no max-pool) for 32x32 images."""
    return resnet18(num_classes=num_classes, stem="cifar", **kwargs)


__all__ = ["CifarResNet", "PadShortcut", "cifar_plain", "cifar_resnet", "cifar_resnet18", "make_shortcut"]
