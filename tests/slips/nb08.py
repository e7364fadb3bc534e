"""Slips a learner may make in notebook 08 (ResNeXt), each with words its check's hint must contain."""

import torch
import torch.nn.functional as F
from torch import nn


def _every_gth_channel(x, weight, groups, stride=1, padding=0):
    ins, outs = [x[:, g::groups] for g in range(groups)], weight.chunk(groups, dim=0)  # every G-th input channel
    return torch.cat([F.conv2d(xi, wi, stride=stride, padding=padding) for xi, wi in zip(ins, outs)], dim=1)


def _cat_on_the_batch(x, weight, groups, stride=1, padding=0):
    pairs = zip(x.chunk(groups, dim=1), weight.chunk(groups, dim=0))
    return torch.cat([F.conv2d(xi, wi, stride=stride, padding=padding) for xi, wi in pairs])  # dim 0: the batch


def _weight_by_its_inputs(x, weight, groups, stride=1, padding=0):
    pairs = zip(x.chunk(groups, dim=1), weight.chunk(groups, dim=1))  # the weight cut along its input channels
    return torch.cat([F.conv2d(xi, wi, stride=stride, padding=padding) for xi, wi in pairs], dim=1)


class _Bottleneck(nn.Module):
    """A ResNeXt block whose width and 1x1 groups the slips below choose."""

    expansion = 4

    def __init__(self, inplanes, planes, stride, downsample, width, groups, groups_1x1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, width, 1, groups=groups_1x1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, groups=groups_1x1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu, self.downsample = nn.ReLU(inplace=True), downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(self.relu(self.bn2(self.conv2(out)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class _GroupsOnEveryConv(_Bottleneck):
    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=32, base_width=4):
        width = int(planes * base_width / 64) * groups
        super().__init__(inplanes, planes, stride, downsample, width, groups, groups)  # the 1x1s grouped too


class _WidthOfOnePath(_Bottleneck):
    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=32, base_width=4):
        width = int(planes * base_width / 64)  # one path's width: not multiplied by the cardinality
        super().__init__(inplanes, planes, stride, downsample, width, groups, 1)


MISTAKES = {
    "grouped_conv": [
        (_every_gth_channel, "contiguous channels g\\*C/G"),
        (_cat_on_the_batch, "along the channels \\(dim=1\\), not along the batch"),
        (_weight_by_its_inputs, "output channels \\(dim 0\\)"),
    ],
    "ResNeXtBottleneck": [
        (_GroupsOnEveryConv, "only conv2, the 3x3, is grouped"),
        (_WidthOfOnePath, "conv1.weight is \\(16, 64, 1, 1\\) in yours.*multiply by the cardinality"),
    ],
}
