"""Checks for notebook 08 (ResNeXt): grouped convolution by hand, and the ResNeXt block with torchvision's names."""

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck

from ..models import conv1x1
from ._common import expect_answer, expect_close, expect_equal, passed
from ._exercise import exercise

_CONV = (
    "cut x's channels and the weight's output channels (dim 0) into `groups` contiguous chunks (.chunk), F.conv2d "
    "each input chunk with its own weight chunk, stride and padding, and torch.cat the outputs along dim=1"
)
_SLIPS = {
    "every G-th": "group g takes the contiguous channels g*C/G to (g+1)*C/G (x.chunk(groups, 1)), not every G-th one",
    "batch": "concatenate the groups' outputs along the channels (dim=1), not along the batch (dim 0)",
    "1x1": "only conv2, the 3x3, is grouped: conv1 and conv3 are ordinary 1x1 convolutions (groups=1)",
    "width": "multiply by the cardinality: width = int(planes * base_width / 64) * groups, all the paths together",
}
_BLOCK = (
    "width = int(planes * base_width / 64) * groups; conv1 1x1 inplanes -> width, conv2 3x3 width -> width (stride, "
    "padding 1, groups), conv3 1x1 width -> planes * 4, nn.Conv2d without bias, each followed by bn1, bn2, bn3; relu "
    "after bn1, bn2 and after adding x, or downsample(x); the class attribute expansion = 4"
)


def match_reference(mine: nn.Module, ref: nn.Module, x: object, what: str, hint: str, misfit: str, slips=None) -> None:
    """``mine`` must take ``ref``'s weights strictly (else: which differ, and ``misfit``) and then, its BatchNorms given
    random statistics, give ``ref``'s outputs in eval and train mode. ``slips``: an error's words or "N channels"."""

    def run(net: nn.Module, mode: str) -> object:
        try:  # on a copy of x: a learner's in-place operation cannot change the next run's input
            with torch.no_grad():
                return net.train(mode == "train")([t.clone() for t in x] if isinstance(x, list) else x.clone())
        except RuntimeError as e:
            why = next((h for words, h in (slips or {}).items() if words in str(e)), hint)
            raise AssertionError(f"{what} in {mode} mode raised RuntimeError: {e} Hint: {why}") from None

    expect_answer(run(mine, "train"), what, "its output", hint)
    ours, theirs = mine.state_dict(), ref.state_dict()
    shapes = {k: [tuple(sd[k].shape) if k in sd else "none" for sd in (ours, theirs)] for k in {**theirs, **ours}}
    wrong: dict[str, str] = {}  # the first difference in each layer
    for k, (a, b) in ((k, shape) for k, shape in shapes.items() if shape[0] != shape[1]):
        wrong.setdefault(k.rsplit(".", 1)[0], f"{k} is {a} in yours, {b} in torchvision's")
    if wrong:
        found = "; ".join(list(wrong.values())[:2])
        raise AssertionError(f"{what} cannot take torchvision's weights: {found}. Hint: {misfit}")
    gen = torch.Generator().manual_seed(8)
    for bn in (m for m in ref.modules() if isinstance(m, nn.BatchNorm2d)):  # fresh BNs do nothing in eval mode
        for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
            t.data.uniform_(0.5, 1.5, generator=gen)
    mine.load_state_dict(ref.state_dict())
    for mode in ("eval", "train"):
        want, got = run(ref, mode), run(mine, mode)
        channels = f"{got.shape[1]} channels" if isinstance(got, torch.Tensor) and got.dim() == 4 else ""
        expect_close(got, want, f"{what} in {mode} mode", (slips or {}).get(channels, hint))


@exercise("grouped_conv")
def check_grouped_conv(fn) -> None:
    """``fn(x, weight, groups, stride, padding)`` must equal ``F.conv2d(..., groups=groups)``."""
    gen = torch.Generator().manual_seed(8)
    cases = [(8, 8, 3, 1, 1), (16, 32, 3, 1, 4), (128, 128, 3, 1, 32), (12, 6, 3, 2, 3), (8, 16, 1, 1, 2)]
    for c_in, c_out, k, s, g in [*cases, (64, 64, 3, 2, 64)]:  # (in, out, kernel, stride, groups); padding k // 2
        x, w = torch.randn(2, c_in, 7, 7, generator=gen), torch.randn(c_out, c_in // g, k, k, generator=gen)
        what = f"grouped_conv(x {tuple(x.shape)}, weight {tuple(w.shape)}, groups={g}, stride={s}, padding={k // 2})"
        try:
            got = fn(x, w, g, stride=s, padding=k // 2)
        except RuntimeError as e:
            raise AssertionError(f"{what} raised RuntimeError: {e} Hint: {_CONV}") from None
        expect_answer(got, what, "the concatenated outputs", _CONV)
        want = F.conv2d(x, w, None, s, k // 2, 1, g)
        slips = {"every G-th": F.conv2d(torch.cat([x[:, i::g] for i in range(g)], 1), w, None, s, k // 2, 1, g)}
        slips["batch"] = torch.cat(want.chunk(g, 1))  # what each slip returns
        tensor = got if isinstance(got, torch.Tensor) else torch.empty(0)
        close = [n for n, t in slips.items() if tensor.shape == t.shape and tensor.allclose(t, atol=1e-4)]
        expect_close(got, want, what, _SLIPS[close[0]] if close else _CONV)  # the hint of the slip it matches, if any
    passed(f"your grouped_conv equals F.conv2d(..., groups=groups) on {len(cases) + 1} settings, up to depthwise.")


@exercise("ResNeXtBottleneck")
def check_resnext_bottleneck(cls: type[nn.Module]) -> None:
    """``cls(inplanes, planes, stride, downsample, groups, base_width)`` must be torchvision's grouped Bottleneck."""
    gen = torch.Generator().manual_seed(8)
    cases = [(64, 64, 1, 4, 16), (256, 64, 1, 32, 4), (256, 128, 2, 32, 4), (128, 32, 2, 8, 8)]  # C = 4, 32, 8
    for inplanes, planes, stride, groups, base_width in cases:  # projections and identities, stride 1 and 2
        what = f"ResNeXtBottleneck({inplanes}, {planes}, stride={stride}, groups={groups}, base_width={base_width})"
        same = stride == 1 and inplanes == 4 * planes
        down = None if same else nn.Sequential(conv1x1(inplanes, 4 * planes, stride), nn.BatchNorm2d(4 * planes))
        block = cls(inplanes, planes, stride, copy.deepcopy(down), groups=groups, base_width=base_width)
        ref = Bottleneck(inplanes, planes, stride, down, groups=groups, base_width=base_width)
        one_by_one = any(getattr(getattr(block, n, None), "groups", 1) != 1 for n in ("conv1", "conv3"))
        narrow = getattr(getattr(block, "conv2", None), "out_channels", 0) == int(planes * base_width / 64)
        misfit = _SLIPS["1x1"] if one_by_one else _SLIPS["width"] if narrow else _BLOCK
        match_reference(block, ref, torch.randn(2, inplanes, 6, 6, generator=gen), what, _BLOCK, misfit)
        expect_equal(getattr(cls, "expansion", None), 4, "ResNeXtBottleneck.expansion", _BLOCK)
    passed(f"your block takes torchvision's Bottleneck weights and gives its outputs on {len(cases)} shapes.")
