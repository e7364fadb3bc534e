"""Checks for notebook 08 (ResNeXt): grouped convolution by hand, and the ResNeXt block with torchvision's names."""

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck

from ..models import conv1x1
from ._common import exercise, expect_answer, expect_close, expect_equal, fail, match_module, passed

_HINT = {
    "conv": "cut x's channels and the weight's output channels (dim 0) into `groups` contiguous chunks (.chunk), "
    "F.conv2d each input chunk with its own weight chunk, stride and padding, and torch.cat the outputs along dim=1",
    "every G-th": "group g takes the contiguous channels g*C/G to (g+1)*C/G (x.chunk(groups, 1)), not every G-th one",
    "batch": "concatenate the groups' outputs along the channels (dim=1), not along the batch (dim 0)",
    "block": "width = int(planes * base_width / 64) * groups; conv1 1x1 inplanes -> width, conv2 3x3 width -> width "
    "(stride, padding 1, groups), conv3 1x1 width -> planes * 4, nn.Conv2d without bias, each followed by bn1, bn2, "
    "bn3; relu after bn1, bn2 and after adding x, or downsample(x); the class attribute expansion = 4",
    "1x1": "only conv2, the 3x3, is grouped: conv1 and conv3 are ordinary 1x1 convolutions (groups=1)",
    "width": "multiply by the cardinality: width = int(planes * base_width / 64) * groups, all the paths together",
}


@exercise("grouped_conv")
def check_grouped_conv(fn: Callable[..., torch.Tensor]) -> None:
    """``fn(x, weight, groups, stride, padding)`` must equal ``F.conv2d(..., groups=groups)``."""
    gen = torch.Generator().manual_seed(8)
    cases = [(8, 8, 3, 1, 1), (16, 32, 3, 1, 4), (128, 128, 3, 1, 32), (12, 6, 3, 2, 3), (8, 16, 1, 1, 2)]
    for c_in, c_out, k, s, g in [*cases, (64, 64, 3, 2, 64)]:  # (in, out, kernel, stride, groups); padding k // 2
        x, w = torch.randn(2, c_in, 7, 7, generator=gen), torch.randn(c_out, c_in // g, k, k, generator=gen)
        what = f"grouped_conv(x {tuple(x.shape)}, weight {tuple(w.shape)}, groups={g}, stride={s}, padding={k // 2})"
        try:
            got = fn(x, w, g, stride=s, padding=k // 2)
        except RuntimeError as e:
            fail(f"{what} raised RuntimeError: {e}", _HINT["conv"])
        expect_answer(got, what, "the concatenated outputs")
        want = F.conv2d(x, w, None, s, k // 2, 1, g)
        every = F.conv2d(torch.cat([x[:, i::g] for i in range(g)], 1), w, None, s, k // 2, 1, g)
        slips = [(_HINT["every G-th"], every), (_HINT["batch"], torch.cat(want.chunk(g, 1)))]  # what each returns
        expect_close(got, want, what, _HINT["conv"], slips=slips)
    passed(f"your grouped_conv equals F.conv2d(..., groups=groups) on {len(cases) + 1} settings, up to depthwise.")


@exercise("ResNeXtBottleneck")
def check_resnext_bottleneck(cls: type[nn.Module]) -> None:
    """``cls(inplanes, planes, stride, downsample, groups, base_width)`` must be torchvision's grouped Bottleneck."""
    cases = [(64, 64, 1, 4, 16), (256, 64, 1, 32, 4), (256, 128, 2, 32, 4), (128, 32, 2, 8, 8)]  # C = 4, 32, 8
    for inplanes, planes, stride, groups, base_width in cases:  # projections and identities, stride 1 and 2
        what = f"ResNeXtBottleneck({inplanes}, {planes}, stride={stride}, groups={groups}, base_width={base_width})"
        same = stride == 1 and inplanes == 4 * planes
        down = None if same else nn.Sequential(conv1x1(inplanes, 4 * planes, stride), nn.BatchNorm2d(4 * planes))
        block = cls(inplanes, planes, stride, copy.deepcopy(down), groups=groups, base_width=base_width)
        ref = Bottleneck(inplanes, planes, stride, down, groups=groups, base_width=base_width)
        one_by_one = any(getattr(getattr(block, n, None), "groups", 1) != 1 for n in ("conv1", "conv3"))
        narrow = getattr(getattr(block, "conv2", None), "out_channels", 0) == int(planes * base_width / 64)
        misfit = _HINT["1x1"] if one_by_one else _HINT["width"] if narrow else _HINT["block"]
        match_module(block, ref, (2, inplanes, 6, 6), what, _HINT["block"], misfit)
    expect_equal(getattr(cls, "expansion", None), 4, "ResNeXtBottleneck.expansion", _HINT["block"])
    passed(f"your block takes torchvision's Bottleneck weights and gives its outputs on {len(cases)} shapes.")
