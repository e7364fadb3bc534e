"""ResNet and ResNeXt for ImageNet-sized and CIFAR-sized images.

The structure and parameter names follow ``torchvision.models.resnet``
(``conv1``, ``bn1``, ``layer1..layer4``, ``downsample``, ``fc``), so a state dict
from torchvision loads into these models with ``strict=True``.
"""

from __future__ import annotations

from typing import Callable

import torch
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


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut: out = relu(F(x) + shortcut(x)).

    ``downsample`` is the shortcut when the shape changes (the paper's dashed
    line); ``None`` means the identity (solid line). ``residual=False`` drops
    the shortcut altogether, giving the block of a plain network.
    """

    expansion = 1

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
        if groups != 1 or base_width != 64:
            raise ValueError(
                f"BasicBlock supports only groups=1 and base_width=64 (got groups={groups}, "
                f"base_width={base_width}); use Bottleneck for ResNeXt."
            )
        norm_layer = norm_layer or nn.BatchNorm2d
        # The stride goes on the first conv only: the block halves the size once.
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (optionally grouped), 1x1 expand, plus a shortcut.

    ``width = planes * base_width / 64 * groups`` channels run through the 3x3;
    the block outputs ``planes * 4``. With ``groups > 1`` this is the ResNeXt
    block in its grouped-convolution form (the paper's figure 3c).
    """

    expansion = 4

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
        check_positive_int(groups, "groups")
        check_positive_int(base_width, "base_width")
        norm_layer = norm_layer or nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        if width == 0:
            raise ValueError(
                f"Bottleneck width is 0 (planes={planes}, base_width={base_width}, groups={groups}): "
                "increase planes or base_width."
            )
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


Block = type[BasicBlock] | type[Bottleneck]


class ResNet(nn.Module):
    """The ResNet of the paper's table 1, built from one block type and four stage depths.

    ``stem="imagenet"`` is the 7x7/2 convolution and 3x3/2 max-pool (224 -> 56);
    ``stem="cifar"`` is a 3x3/1 convolution and no pooling, so 32x32 images keep
    their resolution into ``layer1``. The parameter names do not change.
    ``widths`` are the four stages' channel counts (before the block's expansion).
    """

    def __init__(
        self,
        block: Block,
        layers: list[int],
        num_classes: int = 1000,
        zero_init_residual: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        in_channels: int = 3,
        stem: str = "imagenet",
        residual: bool = True,
        norm_layer: NormLayer | None = None,
        widths: tuple[int, int, int, int] = (64, 128, 256, 512),
    ) -> None:
        super().__init__()
        if block not in (BasicBlock, Bottleneck):
            raise ValueError(f"block must be BasicBlock or Bottleneck, got {block!r}.")
        if len(layers) != 4 or not all(isinstance(n, int) and n >= 1 for n in layers):
            raise ValueError(f"layers must be four positive block counts, e.g. [3, 4, 6, 3]; got {layers!r}.")
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' (7x7 conv + max-pool) or 'cifar' (3x3 conv); got {stem!r}.")
        check_positive_int(in_channels, "in_channels")
        check_positive_int(num_classes, "num_classes")
        if len(widths) != 4 or not all(isinstance(w, int) and w >= 1 for w in widths):
            raise ValueError(f"widths must be four positive channel counts, e.g. (64, 128, 256, 512); got {widths!r}.")
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self.in_channels = in_channels
        self.inplanes = widths[0]
        self.groups = groups
        self.base_width = width_per_group
        self.residual = residual
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = self._norm_layer(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)
        init_weights(self, zero_init_residual)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        # A dashed shortcut wherever the block changes the size or the channel count.
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                self._norm_layer(planes * block.expansion),
            )
        kwargs = dict(
            groups=self.groups, base_width=self.base_width, norm_layer=self._norm_layer, residual=self.residual
        )
        layers = [block(self.inplanes, planes, stride, downsample, **kwargs)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, **kwargs) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.in_channels, type(self).__name__)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def init_weights(model: nn.Module, zero_init_residual: bool = False) -> None:
    """He (Kaiming) initialization for convolutions, BN to the identity.

    With ``zero_init_residual`` the last BN of every residual branch starts at
    zero, so each block starts as the identity (Goyal et al. 2017).
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, ScratchBatchNorm2d)) and m.weight is not None:
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, Bottleneck):
                nn.init.constant_(m.bn3.weight, 0)
            elif isinstance(m, BasicBlock):
                nn.init.constant_(m.bn2.weight, 0)


def resnet18(**kwargs) -> ResNet:
    """ResNet-18: BasicBlock, stages of [2, 2, 2, 2] blocks."""
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


def resnet34(**kwargs) -> ResNet:
    """ResNet-34: BasicBlock, stages of [3, 4, 6, 3] blocks."""
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


def resnet50(**kwargs) -> ResNet:
    """ResNet-50: Bottleneck, stages of [3, 4, 6, 3] blocks."""
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


def resnet101(**kwargs) -> ResNet:
    """ResNet-101: Bottleneck, stages of [3, 4, 23, 3] blocks."""
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


def resnet152(**kwargs) -> ResNet:
    """ResNet-152: Bottleneck, stages of [3, 8, 36, 3] blocks."""
    return ResNet(Bottleneck, [3, 8, 36, 3], **kwargs)


def resnext50_32x4d(**kwargs) -> ResNet:
    """ResNeXt-50 (32x4d): ResNet-50 with 32 groups of width 4 in the first stage."""
    return ResNet(Bottleneck, [3, 4, 6, 3], groups=32, width_per_group=4, **kwargs)


def resnext101_32x8d(**kwargs) -> ResNet:
    """ResNeXt-101 (32x8d): ResNet-101 with 32 groups of width 8 in the first stage."""
    return ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=8, **kwargs)


RESNET_CONFIGS: dict[str, tuple[Block, list[int]]] = {
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
    block, layers = RESNET_CONFIGS[f"resnet{depth}"]
    return ResNet(block, layers, **kwargs)
