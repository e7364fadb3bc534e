"""ResNet (He et al. 2015) and ResNeXt (Xie et al. 2017) for ImageNet, and the ResNets of the paper's CIFAR-10 section.

Names follow ``torchvision.models.resnet`` (``conv1``, ``bn1``, ``layer1..layer4``, ``downsample``, ``fc``), so state
dicts interchange with torchvision's models (``strict=True``), both ways."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import BatchNorm2d as ScratchBatchNorm2d
from ._checks import check_image_batch, check_positive_int

NormLayer = Callable[[int], nn.Module]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1. No bias: the BatchNorm after it has one."""
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, used to change the channel count (and, strided, the size)."""
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class PadShortcut(nn.Module):
    """The paper's option A: subsample by ``stride`` and append zero channels. Has no parameters."""

    def __init__(self, stride: int, extra_channels: int) -> None:
        super().__init__()
        self.stride, self.extra_channels = stride, extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        # F.pad pads the last dims first: (W left, W right, H top, H bottom, C front, C back).
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


class ResidualBlock(nn.Module):
    """out = relu(F(x) + shortcut(x)); :class:`BasicBlock` and :class:`Bottleneck` build F (``_build``) and compute it
    (``residual_function``). ``downsample``: the shortcut when the shape changes (the paper's dashed line), ``None``
    the identity. ``residual=False``: no shortcut, a plain network's block. Arguments as torchvision's, in its order."""

    expansion = 1  # the block outputs planes * expansion channels

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        norm_layer: NormLayer | None = None,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self._build(inplanes, planes, stride, groups, base_width, norm_layer or nn.BatchNorm2d)
        self.relu = nn.ReLU(inplace=True)
        self.downsample, self.stride, self.residual = downsample, stride, residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.residual_function(x)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)

    def extra_repr(self) -> str:
        return "" if self.residual else "residual=False"


class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions with BN; the first has the stride, so the block halves the size at most once."""

    def _build(self, inplanes: int, planes: int, stride: int, groups: int, base_width: int, norm: NormLayer) -> None:
        if groups != 1 or base_width != 64:
            raise ValueError(f"BasicBlock has groups=1, base_width=64 (got {groups}, {base_width}): use Bottleneck.")
        self.conv1, self.bn1 = conv3x3(inplanes, planes, stride), norm(planes)
        self.conv2, self.bn2 = conv3x3(planes, planes), norm(planes)

    def residual_function(self, x: torch.Tensor) -> torch.Tensor:
        """F(x) = BN(conv(ReLU(BN(conv(x)))))."""
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class Bottleneck(ResidualBlock):
    """1x1 reduce, 3x3 (grouped for ResNeXt, its paper's figure 3c), 1x1 expand to ``planes * 4``, each with BN. The
    3x3 has the stride (torchvision's "v1.5"; the paper's v1 strides the first 1x1) and
    ``width = int(planes * base_width / 64) * groups`` channels."""

    expansion = 4

    def _build(self, inplanes: int, planes: int, stride: int, groups: int, base_width: int, norm: NormLayer) -> None:
        width = int(planes * (base_width / 64.0)) * groups
        if groups < 1 or width < 1:
            raise ValueError(
                "Bottleneck width int(planes * base_width / 64) * groups must be positive; "
                f"got planes={planes}, base_width={base_width}, groups={groups}."
            )
        self.conv1, self.bn1 = conv1x1(inplanes, width), norm(width)
        self.conv2, self.bn2 = conv3x3(width, width, stride, groups), norm(width)
        self.conv3, self.bn3 = conv1x1(width, planes * self.expansion), norm(planes * self.expansion)

    def residual_function(self, x: torch.Tensor) -> torch.Tensor:
        """F(x): 1x1, 3x3 and 1x1 convolutions, with BN after each and ReLU between them."""
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn3(self.conv3(self.relu(self.bn2(self.conv2(out)))))


class ResNet(nn.Module):
    """A ResNet as in the paper's table 1: a stem, stages of ``layers[i]`` blocks, average pooling, a classifier.
    ``stem="imagenet"``: 7x7/2 conv and 3x3/2 max-pool (224 -> 56); ``stem="cifar"``: a 3x3/1 conv, no pooling.
    ``widths``: the stages' planes (a Bottleneck outputs 4x as many channels); three stages: the CIFAR layout.
    ``shortcut`` bridges a change of shape by the paper's options: "A" pads zeros (:class:`PadShortcut`), "B"
    projects (1x1 conv + BN, torchvision's), "C" projects on every block. ``residual=False``: the plain network."""

    def __init__(
        self,
        block: type[ResidualBlock],
        layers: list[int],
        num_classes: int = 1000,
        zero_init_residual: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        in_channels: int = 3,
        stem: str = "imagenet",
        residual: bool = True,
        norm_layer: NormLayer | None = None,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        shortcut: str = "B",
    ) -> None:
        super().__init__()
        if len(layers) not in (3, 4) or len(widths) != len(layers) or min(*layers, *widths) < 1:
            raise ValueError(
                "layers and widths need one positive number per stage, 3 or 4 stages (e.g. [3, 4, 6, 3] blocks, "
                f"widths (64, 128, 256, 512)); got {layers!r} and {widths!r}."
            )
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' (7x7 conv + max-pool) or 'cifar' (3x3 conv); got {stem!r}.")
        if shortcut not in ("A", "B", "C"):
            raise ValueError(f"shortcut must be one of the paper's options 'A', 'B', 'C'; got {shortcut!r}.")
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.groups, self.base_width, self.residual, self.shortcut = groups, width_per_group, residual, shortcut
        # The paper's depth counts the layers with weights on the main path: the stem, each block's convs, fc.
        self.depth = 2 + sum(layers) * (3 if issubclass(block, Bottleneck) else 2)
        family = "plain" if not residual else "ResNeXt" if groups > 1 else "ResNet"
        self.name = f"{family}-{self.depth}"  # what fit's progress lines call it
        self._norm_layer = norm_layer or nn.BatchNorm2d
        kernel, stride = (7, 2) if stem == "imagenet" else (3, 1)
        self.conv1 = nn.Conv2d(in_channels, widths[0], kernel, stride=stride, padding=kernel // 2, bias=False)
        self.bn1 = self._norm_layer(widths[0])
        self.relu = nn.ReLU(inplace=True)
        # The CIFAR stem does not pool; an Identity keeps the names and the forward pass the same.
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()
        self.inplanes = widths[0]
        self.stages = [f"layer{i + 1}" for i in range(len(layers))]
        for i, (name, planes, blocks) in enumerate(zip(self.stages, widths, layers)):
            self.add_module(name, self._make_layer(block, planes, blocks, stride=1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1] * block.expansion, check_positive_int(num_classes, "num_classes"))
        init_weights(self, zero_init_residual)

    def _make_layer(self, block: type[ResidualBlock], planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for i in range(blocks):
            s, out = stride if i == 0 else 1, planes * block.expansion
            args = (self.groups, self.base_width, self._norm_layer, self.residual)
            layers.append(block(self.inplanes, planes, s, self._shortcut(self.inplanes, out, s), *args))
            self.inplanes = out
        return nn.Sequential(*layers)

    def _shortcut(self, inplanes: int, outplanes: int, stride: int) -> nn.Module | None:
        # A plain network has no shortcuts, so no projections either (their weights would go unused).
        if not self.residual or (self.shortcut != "C" and stride == 1 and inplanes == outplanes):
            return None  # the identity
        if self.shortcut == "A":
            return PadShortcut(stride, outplanes - inplanes)
        return nn.Sequential(conv1x1(inplanes, outplanes, stride), self._norm_layer(outplanes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.in_channels, type(self).__name__)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in self.stages:
            x = getattr(self, name)(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def init_weights(model: nn.Module, zero_init_residual: bool = False) -> None:
    """He (Kaiming) initialization for convolutions, BN to the identity. With ``zero_init_residual`` the last BN of
    every residual branch starts at zero, so each block starts as the identity (Goyal et al. 2017)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, ScratchBatchNorm2d)) and m.weight is not None:
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
        if zero_init_residual and isinstance(m, (BasicBlock, Bottleneck)):
            nn.init.constant_((m.bn3 if isinstance(m, Bottleneck) else m.bn2).weight, 0)


RESNET_CONFIGS: dict[str, tuple[type[ResidualBlock], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
    "resnet152": (Bottleneck, [3, 8, 36, 3]),
}
"""The paper's table 1: block type and blocks per stage for each depth."""


def resnet(depth: int, **kwargs) -> ResNet:
    """Any row of the paper's table 1 from one function: ``resnet(34)`` is ResNet-34."""
    if f"resnet{depth}" not in RESNET_CONFIGS:
        depths = ", ".join(name.removeprefix("resnet") for name in RESNET_CONFIGS)
        raise ValueError(f"depth must be one of the paper's table 1 ({depths}); got {depth!r}.")
    return ResNet(*RESNET_CONFIGS[f"resnet{depth}"], **kwargs)


def resnet18(**kwargs) -> ResNet:
    """ResNet-18: BasicBlock, stages of [2, 2, 2, 2] blocks."""
    return resnet(18, **kwargs)


def resnet34(**kwargs) -> ResNet:
    """ResNet-34: BasicBlock, stages of [3, 4, 6, 3] blocks."""
    return resnet(34, **kwargs)


def resnet50(**kwargs) -> ResNet:
    """ResNet-50: Bottleneck, stages of [3, 4, 6, 3] blocks."""
    return resnet(50, **kwargs)


def resnet101(**kwargs) -> ResNet:
    """ResNet-101: Bottleneck, stages of [3, 4, 23, 3] blocks."""
    return resnet(101, **kwargs)


def resnet152(**kwargs) -> ResNet:
    """ResNet-152: Bottleneck, stages of [3, 8, 36, 3] blocks."""
    return resnet(152, **kwargs)


def resnext50_32x4d(**kwargs) -> ResNet:
    """ResNeXt-50 (32x4d): ResNet-50 with 32 groups of width 4 in the first stage."""
    return resnet(50, groups=32, width_per_group=4, **kwargs)


def cifar_resnet(depth: int = 20, shortcut: str = "A", residual: bool = True, **kwargs) -> ResNet:
    """The CIFAR-10 ResNet-``depth`` of the paper's section 4.2 (``residual=False``: the plain net of that depth):
    6n+2 layers, three stages of n BasicBlocks with 16, 32, 64 channels on 32x32, 16x16, 8x8 maps; option A shortcuts
    (zero-padding) as in the paper. Other keyword arguments go to :class:`ResNet`."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 56, 110, ...); got {depth!r}.")
    n, kwargs = (depth - 2) // 6, {"num_classes": 10, "widths": (16, 32, 64), **kwargs}
    return ResNet(BasicBlock, [n, n, n], stem="cifar", shortcut=shortcut, residual=residual, **kwargs)


def cifar_plain(depth: int = 20, **kwargs) -> ResNet:
    """The plain network of the paper's figure 6 (left): the layers of :func:`cifar_resnet`, no shortcuts."""
    return cifar_resnet(depth, residual=False, **kwargs)
