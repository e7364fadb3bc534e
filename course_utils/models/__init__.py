"""The networks of the course, with torchvision's structure and parameter names."""

from .cifar import CifarResNet, PadShortcut, cifar_plain, cifar_resnet, cifar_resnet18, make_shortcut
from .densenet import DenseBlock, DenseLayer, DenseNet, Transition, cifar_densenet, densenet121
from .resnet import (
    RESNET_CONFIGS,
    BasicBlock,
    Bottleneck,
    ResNet,
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
    resnext101_32x8d,
)
from .resnext import EarlyConcat, SplitTransformMerge, copy_from_grouped, grouped_block

TORCHVISION_FACTORIES = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "densenet121",
)
"""Factories that share their name, structure and state-dict keys with torchvision.models."""

__all__ = [
    "RESNET_CONFIGS",
    "TORCHVISION_FACTORIES",
    "BasicBlock",
    "Bottleneck",
    "CifarResNet",
    "DenseBlock",
    "DenseLayer",
    "DenseNet",
    "EarlyConcat",
    "PadShortcut",
    "ResNet",
    "SplitTransformMerge",
    "Transition",
    "cifar_densenet",
    "cifar_plain",
    "cifar_resnet",
    "cifar_resnet18",
    "conv1x1",
    "conv3x3",
    "copy_from_grouped",
    "densenet121",
    "grouped_block",
    "init_weights",
    "make_shortcut",
    "resnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
]
