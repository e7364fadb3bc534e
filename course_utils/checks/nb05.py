"""Checks for notebook 05: a stage of blocks (``make_layer``) and ResNet-34 assembled from stages."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn
from torchvision.models import resnet as tv

from ..inspect import layer_table
from ._common import expect_answer, expect_close, expect_equal, passed
from ._exercise import exercise

_DOWN = (
    "only the first block gets downsample = nn.Sequential(conv1x1(inplanes, planes * block.expansion, stride), "
    "nn.BatchNorm2d(planes * block.expansion)), and only when stride != 1 or the channels change "
    "(inplanes != planes * block.expansion); the other blocks get None, the identity."
)
_STAGE = (
    "return nn.Sequential(block(inplanes, planes, stride, downsample), block(planes * block.expansion, planes), ...)"
)
_CASES = [(tv.BasicBlock, 8, 8, 2, 1), (tv.BasicBlock, 8, 16, 3, 2), (tv.Bottleneck, 8, 4, 2, 1)]
_FORWARD = (
    "conv1 (7x7, stride 2, padding 3), bn1, relu, maxpool (3x3, stride 2, padding 1), layer1 ... layer4 (3, 4, 6, 3 "
    "blocks; stride 1, 2, 2, 2; inplanes: what the stage before outputs), avgpool, torch.flatten(x, 1), fc."
)


def tv_make_layer(block: type[nn.Module], inplanes: int, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
    """torchvision's own ``ResNet._make_layer``, called as a function of the stage's input channels."""
    host = SimpleNamespace(inplanes=inplanes, dilation=1, groups=1, base_width=64, _norm_layer=nn.BatchNorm2d)
    return tv.ResNet._make_layer(host, block, planes, blocks, stride)


def _load(piece: nn.Module, ref: nn.Module, what: str, hint: str) -> None:
    """Load ``ref``'s weights into ``piece`` (strict), after randomizing its BatchNorm, which could hide a slip."""
    for bn in (m for m in ref.modules() if isinstance(m, nn.BatchNorm2d)):
        for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
            t.data.uniform_(0.5, 1.5)
    try:
        piece.load_state_dict(ref.state_dict())
    except RuntimeError as e:  # its second line names the first tensor that does not fit
        raise AssertionError(
            f"{what} cannot take torchvision's weights: {str(e).splitlines()[1].strip()} Hint: {hint}"
        ) from e


@exercise("make_layer")
def check_make_layer(fn) -> None:
    """``fn(block, inplanes, planes, blocks, stride)`` must be torchvision's stage: the same modules and outputs."""
    expect_answer(fn(tv.BasicBlock, 8, 8, 2), "make_layer(BasicBlock, 8, 8, 2)", "an nn.Sequential of blocks", _STAGE)
    for block, inplanes, planes, blocks, stride in _CASES:
        what = f"make_layer({block.__name__}, {inplanes}, {planes}, {blocks}, stride={stride})"
        got, ref = fn(block, inplanes, planes, blocks, stride), tv_make_layer(block, inplanes, planes, blocks, stride)
        expect_equal(type(got), nn.Sequential, f"the type of {what}", _STAGE)
        down = [0] if ref[0].downsample else []
        only = stride == 1 and down  # a projection that only the change of channels asks for
        why = f" Here the stride is 1 but the channels change, {inplanes} -> {planes * block.expansion}." * bool(only)
        where = [i for i, b in enumerate(got) if getattr(b, "downsample", None) is not None]
        expect_equal(where, down, f"{what}: the blocks with a downsample", _DOWN + why)
        strides = [getattr(b, "stride", None) for b in got]
        expect_equal(strides, [b.stride for b in ref], f"{what}: the strides", "only the first has one: " + _STAGE)
        _load(got, ref, what, _STAGE)
        x = torch.randn(2, inplanes, 8, 8)
        with torch.no_grad():
            expect_close(got.eval()(x), ref.eval()(x), f"{what} in eval mode", _STAGE)
    passed("your stages take torchvision's weights and give its outputs, with BasicBlocks and Bottlenecks.")


@exercise("ResNet34")
def check_resnet34(cls: type[nn.Module]) -> None:
    """``cls(block, make_layer)``, given torchvision's pieces, must take ``resnet34()``'s weights and outputs."""
    model, ref, x = cls(tv.BasicBlock, tv_make_layer), tv.resnet34(), torch.randn(1, 3, 64, 64)
    theirs, yours = ref.state_dict().keys(), model.state_dict().keys()
    if not yours:  # nothing built yet: the stub
        expect_answer(model(x), "ResNet34(BasicBlock, make_layer)(x)", "its output", _FORWARD)
    if theirs != yours:  # what differs, by module, and by block inside the stages
        in_stages = any(k.startswith("layer") for k in theirs ^ yours)
        hint = "ResNet-34's stages have 3, 4, 6 and 3 blocks, as in the table of section 1." if in_stages else _FORWARD
        parts = lambda keys: ", ".join(sorted({".".join(k.split(".")[: 1 + k.startswith("layer")]) for k in keys}))
        raise AssertionError(
            f"torchvision's ResNet-34 has {parts(theirs - yours) or 'nothing'} that yours lacks, and yours has "
            f"{parts(yours - theirs) or 'nothing'} that it lacks. Hint: {hint}"
        )
    _load(model, ref, "your ResNet34", _FORWARD)
    try:
        shapes = [{r.name: r.output_shape for r in layer_table(m, tuple(x.shape), depth=1)} for m in (model, ref)]
        with torch.no_grad():
            got = model.eval()(x)
    except RuntimeError as e:
        raise AssertionError(f"your ResNet34 fails on a 64x64 image: {e} Hint: {_FORWARD}") from None
    for name, shape in shapes[1].items():
        expect_equal(shapes[0].get(name, "nothing: it never ran"), shape, f"{name}'s output for 64x64", _FORWARD)
    with torch.no_grad():
        expect_close(got, ref.eval()(x), "your ResNet34's output in eval mode", _FORWARD)
    passed("torchvision's resnet34 state dict loads into yours (strict), and both give the same outputs.")
