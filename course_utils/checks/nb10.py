"""Checks for notebook 10 (ResNet-18 on handwritten digits): a stem for 28x28 digits, an RGB convolution made grey."""

import copy
from typing import Callable

import torch
from torch import nn
from torchvision.models import resnet18 as tv_resnet18

from ..inspect import layer_table
from ..models import resnet18
from ._common import exercise, expect_answer, expect_close, expect_equal, fail, passed

_STEM = (
    "model.conv1 = nn.Conv2d(1, model.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False) (no bias: "
    "bn1 follows) and model.maxpool = nn.Identity(), so that layer1 ... layer4 work at 28, 14, 7 and 4 pixels."
)
_HINT = {
    "resize": "the model enlarges the digits, as the notes' resize to 224x224 does: every convolution then visits "
    "(224/28)^2 = 64 times as many positions, for the same 784 pixels. Keep them at 28x28 with a small stem: " + _STEM,
    "conv1": "conv1 still halves the digit: the ImageNet stem (7x7, stride 2, then a max-pool) was made for 224-pixel "
    "images, which is why the notes resized them; at 28 it leaves layer4 a 1x1 map. Set " + _STEM,
    "maxpool": "the stem's max-pool still halves the 28x28 map: every stage sees a quarter of the positions, and "
    "layer4 is left a 2x2 map. Set model.maxpool = nn.Identity(): the forward pass calls it, and it does nothing.",
    "grey": "a grey image copied into R, G and B gives every RGB filter the same input three times, so the conv sums "
    "its three channel slices: build nn.Conv2d(1, conv.out_channels, ...) with the same kernel_size, stride, padding, "
    "dilation and bias; under torch.no_grad(), copy conv.weight.sum(dim=1, keepdim=True) and the bias into it.",
}
_SIZES = {"conv1": 28, "maxpool": 28, "layer1": 28, "layer2": 14, "layer3": 7, "layer4": 4}


@exercise("adapt_to_mnist")
def check_adapt_to_mnist(fn: Callable[[nn.Module], nn.Module]) -> None:
    """``fn(model)`` must give an ImageNet ResNet-18 a 3x3 stride-1 conv1 and no max-pool, for 1x28x28 digits."""
    for imagenet in (resnet18(in_channels=1, num_classes=10, widths=(8, 16, 32, 64)), tv_resnet18(num_classes=10)):
        model = fn(imagenet)  # a narrow ResNet-18 of the course's, then torchvision's
        expect_answer(model, "adapt_to_mnist(model)", "the model with its new stem")
        try:  # each module's output, by the last part of its name: conv1 is the stem's, the first to run
            rows = layer_table(model, (2, 1, 28, 28), depth=2)
        except RuntimeError as e:
            fail(f"adapt_to_mnist(model) fails on 1x28x28 digits: {e}", _STEM)
        found = dict(reversed([(r.name.split(".")[-1], r.output_shape) for r in rows]))
        expect_equal(rows[-1].output_shape, (2, 10), "the output shape for 2 digits", _STEM)
        sizes = {name: found[name][-1] if name in found else None for name in _SIZES}
        slip = "resize" if (sizes["layer1"] or 0) > 28 else "conv1" if sizes["conv1"] != 28 else "maxpool"
        expect_equal(sizes, _SIZES, "the map sizes after conv1, maxpool and each stage", _HINT[slip])
        conv = model.conv1
        got = (getattr(conv, "in_channels", None), getattr(conv, "kernel_size", None), getattr(conv, "bias", 0) is None)
        expect_equal(got, (1, (3, 3), True), "conv1's (in_channels, kernel_size, has no bias)", _STEM)
    passed("your stem keeps the digits at 28x28: layer1 ... layer4 work at 28, 14, 7 and 4 pixels, 10 logits out.")


@exercise("rgb_conv_to_grey")
def check_rgb_conv_to_grey(fn: Callable[[nn.Conv2d], nn.Conv2d]) -> None:
    """``fn(conv)`` must be a new 1-channel ``nn.Conv2d`` with ``fn(conv)(x) == conv(x.repeat(1, 3, 1, 1))``."""
    expect_answer(fn(nn.Conv2d(3, 2, 3)), "rgb_conv_to_grey", "the new conv")
    # Any weights will do, the check compares fn(conv) with conv itself. First, ResNet's ImageNet stem.
    convs = [nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.Conv2d(3, 8, 3, padding=1)]
    convs += [nn.Conv2d(3, 5, 5, dilation=2), nn.Conv2d(3, 4, (3, 5), stride=(2, 1), padding=(1, 2), bias=False)]
    for conv in convs:
        before, what, hint = copy.deepcopy(conv.state_dict()), f"rgb_conv_to_grey({conv})", _HINT["grey"]
        grey = fn(conv)
        if not isinstance(grey, nn.Conv2d):
            fail(f"{what}: expected an nn.Conv2d, got {type(grey).__name__}.", hint)
        expect_equal(tuple(grey.weight.shape), (conv.out_channels, 1, *conv.kernel_size), f"{what}.weight.shape", hint)
        expect_equal(grey.bias is not None, conv.bias is not None, f"{what}: has a bias", hint)
        if any(not torch.equal(value, before[key]) for key, value in conv.state_dict().items()):
            fail(f"{what} changed the original conv's weights.", "build a new conv, and leave the one given as it is.")
        for x in (torch.rand(2, 1, 16, 16), torch.rand(3, 1, 23, 23), torch.rand(1, 1, 32, 32)):
            with torch.no_grad():
                expected, got = conv(x.repeat(1, 3, 1, 1)), grey(x)
            expect_close(got, expected, f"{what} on a grey batch of shape {tuple(x.shape)}", hint, atol=1e-4)
    passed("the summed-filter conv on grey images equals the RGB conv on the images copied into three channels.")
