"""Checks for notebook 10 (ResNet-18 on handwritten digits): a stem for 28x28 digits, an RGB convolution made grey."""

import copy
from typing import Callable

import torch
from torch import nn
from torchvision.models import resnet18 as tv_resnet18

from ..inspect import layer_table
from ..models import resnet18
from ._common import expect_answer, expect_close, expect_equal, passed
from ._exercise import exercise

_STEM = (
    "model.conv1 = nn.Conv2d(1, model.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False) (no bias: "
    "bn1 follows) and model.maxpool = nn.Identity(), so that layer1 ... layer4 work at 28, 14, 7 and 4 pixels."
)
_SLIPS = {
    "resize": "the model enlarges the digits, as the notes' resize to 224x224 does: every convolution then visits "
    "(224/28)^2 = 64 times as many positions, for the same 784 pixels. Keep them at 28x28 with a small stem: " + _STEM,
    "conv1": "conv1 still halves the digit: the ImageNet stem (7x7, stride 2, then a max-pool) was made for 224-pixel "
    "images, which is why the notes resized them; at 28 it leaves layer4 a 1x1 map. Set " + _STEM,
    "maxpool": "the stem's max-pool still halves the 28x28 map: every stage sees a quarter of the positions, and "
    "layer4 is left a 2x2 map. Set model.maxpool = nn.Identity(): the forward pass calls it, and it does nothing.",
}
_SIZES = {"conv1": 28, "maxpool": 28, "layer1": 28, "layer2": 14, "layer3": 7, "layer4": 4}


@exercise("adapt_to_mnist")
def check_adapt_to_mnist(fn: Callable[[nn.Module], nn.Module]) -> None:
    """``fn(model)``, given an ImageNet ResNet-18 (a narrow one of the course's, and torchvision's), must return it
    with a 3x3 stride-1 conv1 and no max-pool: 10 logits for 1x28x28 digits, layer1..layer4 maps of 28, 14, 7, 4."""
    for imagenet in (resnet18(in_channels=1, num_classes=10, widths=(8, 16, 32, 64)), tv_resnet18(num_classes=10)):
        model = fn(imagenet)
        expect_answer(model, "adapt_to_mnist(model)", "the model with its new stem", _STEM)
        try:  # each module's output, by the last part of its name: conv1 is the stem's, the first to run
            rows = layer_table(model, (2, 1, 28, 28), depth=2)
        except RuntimeError as e:
            raise AssertionError(f"adapt_to_mnist(model) fails on 1x28x28 digits: {e} Hint: {_STEM}") from None
        found = dict(reversed([(r.name.split(".")[-1], r.output_shape) for r in rows]))
        expect_equal(rows[-1].output_shape, (2, 10), "the output shape for 2 digits", _STEM)
        sizes = {name: found[name][-1] if name in found else None for name in _SIZES}
        slip = "resize" if (sizes["layer1"] or 0) > 28 else "conv1" if sizes["conv1"] != 28 else "maxpool"
        expect_equal(sizes, _SIZES, "the map sizes after conv1, maxpool and each stage", _SLIPS[slip])
        conv = model.conv1
        got = (getattr(conv, "in_channels", None), getattr(conv, "kernel_size", None), getattr(conv, "bias", 0) is None)
        expect_equal(got, (1, (3, 3), True), "conv1's (in_channels, kernel_size, has no bias)", _STEM)
    passed("your stem keeps the digits at 28x28: layer1 ... layer4 work at 28, 14, 7 and 4 pixels, 10 logits out.")


HINT = (
    "a grey image copied into R, G and B gives every RGB filter the same input three times, so the conv sums its "
    "three channel slices: build nn.Conv2d(1, conv.out_channels, ...) with the same kernel_size, stride, padding, "
    "dilation and bias, and set its weight to conv.weight.sum(dim=1, keepdim=True) (copy the bias too), "
    "under torch.no_grad()."
)


@exercise("rgb_conv_to_grey")
def check_rgb_conv_to_grey(fn: Callable[[nn.Conv2d], nn.Conv2d]) -> None:
    """``fn(conv)`` must be a new 1-channel ``nn.Conv2d`` with ``fn(conv)(x) == conv(x.repeat(1, 3, 1, 1))``."""
    expect_answer(fn(nn.Conv2d(3, 2, 3)), "rgb_conv_to_grey", "the new conv", HINT)
    convs = [  # any weights will do: the check compares fn(conv) with conv itself
        nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False),  # ResNet's ImageNet stem
        nn.Conv2d(3, 8, kernel_size=3, padding=1),
        nn.Conv2d(3, 5, kernel_size=5, dilation=2),
        nn.Conv2d(3, 4, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2), bias=False),
    ]
    for conv in convs:
        before, what = copy.deepcopy(conv.state_dict()), f"rgb_conv_to_grey({conv})"
        grey = fn(conv)
        if not isinstance(grey, nn.Conv2d):
            raise AssertionError(f"{what}: expected an nn.Conv2d, got {type(grey).__name__}. Hint: {HINT}")
        expect_equal(tuple(grey.weight.shape), (conv.out_channels, 1, *conv.kernel_size), f"{what}.weight.shape", HINT)
        expect_equal(grey.bias is not None, conv.bias is not None, f"{what}: has a bias", HINT)
        if any(not torch.equal(value, before[key]) for key, value in conv.state_dict().items()):
            raise AssertionError(f"{what} changed the original conv's weights: build a new conv instead.")
        for n, size in ((2, 16), (3, 23), (1, 32)):
            x = torch.rand(n, 1, size, size)
            with torch.no_grad():
                expected, got = conv(x.repeat(1, 3, 1, 1)), grey(x)
            expect_close(got, expected, f"{what} on a grey batch of shape {tuple(x.shape)}", HINT, atol=1e-4)
    passed("the summed-filter conv on grey images equals the RGB conv on the images copied into three channels.")
