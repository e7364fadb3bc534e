"""DenseNet (Huang et al. 2017): each layer of a dense block sees all earlier layers' maps, concatenated, and adds
``growth_rate`` channels; transitions halve channels and resolution. Names follow ``torchvision.models.densenet``."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_image_batch, check_positive_int
from .resnet import init_weights


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (to ``bn_size * growth_rate``), BN-ReLU-3x3 conv (to ``growth_rate``), on the list of all
    earlier feature maps, concatenated here (as in torchvision)."""

    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        out = self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))
        return self.conv2(self.relu2(self.norm2(out)))


class DenseBlock(nn.ModuleDict):
    """``num_layers`` DenseLayers; the block outputs every layer's features, its input's included, concatenated."""

    def __init__(self, num_layers: int, num_input_features: int, bn_size: int, growth_rate: int) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv to fewer channels, then 2x2 average pooling."""

    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(num_input_features, num_output_features, 1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    """DenseNet-BC: a stem, dense blocks joined by transitions, a final BN, a classifier. ``stem="cifar"``: one 3x3/1
    conv instead of the 7x7/2 conv, BN, ReLU and max-pool, for 32x32 images."""

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        num_classes: int = 1000,
        in_channels: int = 3,
        stem: str = "imagenet",
    ) -> None:
        super().__init__()
        check_positive_int(growth_rate, "growth_rate")
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar'; got {stem!r}.")
        self.in_channels = check_positive_int(in_channels, "in_channels")
        kernel, stride = (7, 2) if stem == "imagenet" else (3, 1)
        self.features = nn.Sequential(
            OrderedDict(conv0=nn.Conv2d(in_channels, num_init_features, kernel, stride, kernel // 2, bias=False))
        )
        if stem == "imagenet":  # the CIFAR stem is the convolution alone
            self.features.add_module("norm0", nn.BatchNorm2d(num_init_features))
            self.features.add_module("relu0", nn.ReLU(inplace=True))
            self.features.add_module("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(num_layers, channels, bn_size, growth_rate))
            channels += num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.num_features = channels
        self.classifier = nn.Linear(channels, num_classes)
        init_weights(self)  # He initialization, as the DenseNet paper's code does (by fan-out)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.in_channels, type(self).__name__)
        out = F.adaptive_avg_pool2d(F.relu(self.features(x)), (1, 1))
        return self.classifier(torch.flatten(out, 1))


def densenet121(**kwargs) -> DenseNet:
    """DenseNet-121: growth rate 32, dense blocks of (6, 12, 24, 16) layers."""
    return DenseNet(32, (6, 12, 24, 16), 64, **kwargs)


def cifar_densenet(growth_rate: int = 12, block_config: tuple[int, ...] = (16, 16, 16), **kwargs) -> DenseNet:
    """A small DenseNet-BC for 32x32 images (growth 12, three blocks of 16 layers: DenseNet-BC-100)."""
    kwargs.setdefault("num_classes", 10)
    return DenseNet(growth_rate, block_config, 2 * growth_rate, stem="cifar", **kwargs)
