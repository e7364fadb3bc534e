"""Slips for notebook 10: the stem of a ResNet-18 for 28x28 digits."""

from torch import nn


def _resized_to_224(model):
    """The source notes' way: the ImageNet stem kept (for 1 channel), the digits enlarged to 224x224 on the way in."""
    model.conv1 = nn.Conv2d(1, model.conv1.out_channels, kernel_size=7, stride=2, padding=3, bias=False)
    return nn.Sequential(nn.Upsample(size=(224, 224), mode="bilinear"), model)


def _imagenet_stem_kept(model):
    model.conv1 = nn.Conv2d(1, model.conv1.out_channels, kernel_size=7, stride=2, padding=3, bias=False)
    return model  # only the input channels changed


def _maxpool_kept(model):
    model.conv1 = nn.Conv2d(1, model.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    return model  # the max-pool left in


MISTAKES = {
    "adapt_to_mnist": [
        (_resized_to_224, r"\(224/28\)\^2 = 64 times"),
        (_imagenet_stem_kept, r"conv1 still halves the digit.*made for 224-pixel images"),
        (_maxpool_kept, r"max-pool still halves the 28x28 map.*Set model\.maxpool = nn\.Identity\(\)"),
    ],
}
