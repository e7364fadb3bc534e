"""Checks for notebook 10 (ResNet-18 on handwritten digits): an RGB convolution made grey."""

import copy
from typing import Callable

import torch
from torch import nn

from ._common import expect_answer, expect_close, expect_equal, passed
from ._exercise import exercise

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
