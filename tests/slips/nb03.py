"""Slips for notebook 03's residual block: each a block a learner could plausibly write, and words of its hint."""

import torch
from torch import nn


class _Block(nn.Module):
    """A residual block whose shortcut and addition the slips below change."""

    project_when_stride = True  # a projection also where only the stride changes the shape
    projection_stride = True  # the 1x1 projection has the block's stride

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False), nn.BatchNorm2d(planes)
        self.downsample = None
        if in_planes != planes or (stride != 1 and self.project_when_stride):
            s = stride if self.projection_stride else 1
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, s, bias=False), nn.BatchNorm2d(planes))

    def branch(self, x):
        return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))

    def shortcut(self, x):
        if self.downsample is not None:
            return self.downsample(x)
        return x[:, :, :: self.conv1.stride[0], :: self.conv1.stride[0]]  # subsample the identity where it must

    def forward(self, x):
        return torch.relu(self.branch(x) + self.shortcut(x))


class ReluBeforeAdd(_Block):
    def forward(self, x):
        return torch.relu(self.branch(x)) + self.shortcut(x)


class ReluBeforeAndAfterAdd(_Block):
    def forward(self, x):
        return torch.relu(torch.relu(self.branch(x)) + self.shortcut(x))


class ProjectionWithoutStride(_Block):
    projection_stride = False  # F(x) is halved, the shortcut is not: they cannot be added


class ProjectionOnlyForNewChannels(_Block):
    project_when_stride = False  # same channels, stride 2: the identity, subsampled


MISTAKES = {
    "ResidualBlock": [
        (ReluBeforeAdd, "ReLU only after the addition"),
        (ReluBeforeAndAfterAdd, "ReLU only after the addition"),
        (ProjectionWithoutStride, "give the 1x1 projection the block's stride"),
        (ProjectionOnlyForNewChannels, r"stride != 1 or in_planes != planes"),
    ],
}
