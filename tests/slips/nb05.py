"""Slips for notebook 05: a stage (make_layer) and ResNet-34 assembled from stages."""

import torch
from torch import nn

import course_utils as cu


def _projection(inplanes, outplanes, stride):
    return nn.Sequential(cu.models.conv1x1(inplanes, outplanes, stride), nn.BatchNorm2d(outplanes))


def _make_layer_no_downsample(block, inplanes, planes, blocks, stride=1):
    layers = [block(inplanes, planes, stride)]  # the projection shortcut forgotten
    layers += [block(planes * block.expansion, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _make_layer_downsample_on_stride_only(block, inplanes, planes, blocks, stride=1):
    outplanes = planes * block.expansion
    downsample = _projection(inplanes, outplanes, stride) if stride != 1 else None  # a change of channels forgotten
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(outplanes, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _make_layer_stride_everywhere(block, inplanes, planes, blocks, stride=1):
    outplanes = planes * block.expansion
    downsample = _projection(inplanes, outplanes, stride) if stride != 1 or inplanes != outplanes else None
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(outplanes, planes, stride) for _ in range(blocks - 1)]  # every block halves the map
    return nn.Sequential(*layers)


def _resnet34(layers, maxpool_in_forward=True):
    """A ResNet-34 class with ``layers`` blocks per stage, and (or not) the max-pool in its forward pass."""

    class ResNet34(nn.Module):
        def __init__(self, block, make_layer, num_classes=1000):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1, self.relu = nn.BatchNorm2d(64), nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = make_layer(block, 64, 64, layers[0])
            self.layer2 = make_layer(block, 64, 128, layers[1], stride=2)
            self.layer3 = make_layer(block, 128, 256, layers[2], stride=2)
            self.layer4 = make_layer(block, 256, 512, layers[3], stride=2)
            self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(512, num_classes)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.maxpool(x) if maxpool_in_forward else x
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet34


MISTAKES = {
    "make_layer": [
        (_make_layer_no_downsample, r"only the first block gets downsample = nn\.Sequential\(conv1x1"),
        (_make_layer_downsample_on_stride_only, r"the stride is 1 but the channels change, 8 -> 16"),
        (
            _make_layer_stride_everywhere,
            r"the strides: expected \[2, 1, 1\], got \[2, 2, 2\]. Hint: only the first has one",
        ),
    ],
    "ResNet34": [
        (
            _resnet34([2, 2, 2, 2]),
            r"layer1\.2, layer2\.2, layer2\.3, layer3\.2.* that yours lacks.*stages have 3, 4, 6 and 3 blocks",
        ),
        (_resnet34([3, 4, 6, 3], maxpool_in_forward=False), r"maxpool's output .*never ran.*maxpool \(3x3, stride 2"),
    ],
}
