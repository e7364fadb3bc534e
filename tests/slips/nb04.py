"""Slips for notebook 04's blocks: each a block a learner could plausibly write, and words of its hint."""

import torch
from torch import nn


class StrideOnBothConvs(nn.Module):
    """The source notes' BasicBlock: the stride on both 3x3 convolutions."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ReluBeforeAdd(StrideOnBothConvs):
    """The stride right, the ReLU on F(x) before the addition."""

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__(inplanes, planes, stride, downsample)
        self.conv2.stride = (1, 1)

    def forward(self, x):
        out = torch.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class StrideOnFirst1x1(nn.Module):
    """The paper's v1 bottleneck: the stride on the first 1x1 convolution, where torchvision strides the 3x3."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = nn.Conv2d(planes, 4 * planes, 1, bias=False), nn.BatchNorm2d(4 * planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class NoExpansion(StrideOnFirst1x1):
    """A right bottleneck, but ``expansion`` left at 1 (copied from the BasicBlock)."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__(inplanes, planes, 1, downsample)
        self.conv2.stride = (stride, stride)


MISTAKES = {
    "BasicBlock": [
        (StrideOnBothConvs, "the source notes' bug"),
        (ReluBeforeAdd, r"then return relu\(out \+ shortcut\)"),
    ],
    "Bottleneck": [
        (StrideOnFirst1x1, r"on the 3x3 conv2 as torchvision does \(ResNet v1.5\)"),
        (NoExpansion, "planes . expansion"),
    ],
}
