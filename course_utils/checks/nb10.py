"""Checks for notebook 10 (ResNet-18 on handwritten digits)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ._common import expect_answer, expect_close, expect_equal, passed

_HINT = (
    "a grey image copied into R, G and B gives every RGB filter the same input three times, so the conv sums "
    "its three channel slices: build nn.Conv2d(1, conv.out_channels, ...) with the same kernel_size, stride, "
    "padding, dilation and bias, and set its weight to conv.weight.sum(dim=1, keepdim=True) (copy the bias too), "
    "under torch.no_grad()."
)


def _cases() -> list[nn.Conv2d]:
    torch.manual_seed(10)
    return [
        nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False),  # ResNet's ImageNet stem
        nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=True),
        nn.Conv2d(3, 5, kernel_size=5, stride=1, padding=0, dilation=2, bias=True),
        nn.Conv2d(3, 4, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2), bias=False),
    ]


def check_rgb_conv_to_grey(fn) -> None:
    """``fn(conv)`` must return a 1-channel ``nn.Conv2d`` that does on a grey image what ``conv`` does on it in RGB.

    For several 3-channel convolutions (strides, paddings, dilation, with and
    without bias) and random grey batches ``x`` of a few sizes:
    ``fn(conv)(x) == conv(x.repeat(1, 3, 1, 1))``, and ``conv`` itself is left unchanged.
    """
    expect_answer(fn(nn.Conv2d(3, 2, 3)), "rgb_conv_to_grey", "the new conv", _HINT)
    for conv in _cases():
        before = copy.deepcopy(conv.state_dict())
        what = f"rgb_conv_to_grey({conv})"
        grey = fn(conv)
        if not isinstance(grey, nn.Conv2d):
            raise AssertionError(f"{what}: expected an nn.Conv2d, got {type(grey).__name__}. Hint: {_HINT}")
        expect_equal(grey.in_channels, 1, f"{what}.in_channels", _HINT)
        expect_equal(tuple(grey.weight.shape), (conv.out_channels, 1, *conv.kernel_size), f"{what}.weight.shape", _HINT)
        expect_equal(grey.bias is not None, conv.bias is not None, f"{what}: has a bias", _HINT)
        for key, value in conv.state_dict().items():
            if value.shape != before[key].shape or not torch.equal(value, before[key]):
                raise AssertionError(f"{what} changed the original conv's {key}: build a new conv instead.")
        for n, size in ((2, 16), (3, 23), (1, 32)):
            x = torch.rand(n, 1, size, size)
            with torch.no_grad():
                expected = conv(x.repeat(1, 3, 1, 1))
                got = grey(x)
            expect_close(got, expected, f"{what} on a grey batch of shape {tuple(x.shape)}", _HINT, atol=1e-4)
    passed("the summed-filter conv on grey images equals the RGB conv on the images copied into three channels.")


__all__ = ["check_rgb_conv_to_grey"]
