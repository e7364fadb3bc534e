"""The networks of the course, with torchvision's structure and parameter names."""
# ruff: noqa: F401  (this file re-exports the public names of the modules below)

from .densenet import DenseBlock, DenseLayer, DenseNet, Transition, cifar_densenet, densenet121
from .resnet import (
    RESNET_CONFIGS,
    BasicBlock,
    Bottleneck,
    PadShortcut,
    ResNet,
    cifar_plain,
    cifar_resnet,
    conv1x1,
    conv3x3,
    init_weights,
    resnet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
)
from .resnext import EarlyConcat, SplitTransformMerge, copy_from_grouped
