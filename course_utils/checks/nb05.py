"""Checks for notebook 05: a stage of blocks (``make_layer``) and ResNet-34 assembled from stages."""

from types import SimpleNamespace
from typing import Callable

import torch
from torch import nn
from torchvision.models import resnet as tv

from ..inspect import layer_table
from ._common import exercise, expect_answer, expect_equal, fail, match_module, passed

_HINT = {
    "down": "only the first block gets downsample = nn.Sequential(conv1x1(inplanes, planes * block.expansion, "
    "stride), nn.BatchNorm2d(planes * block.expansion)), and only when stride != 1 or the channels change "
    "(inplanes != planes * block.expansion); the other blocks get None, the identity.",
    "stage": "nn.Sequential(block(inplanes, planes, stride, downsample), block(planes * block.expansion, planes), ...)",
    "forward": "conv1 (7x7, stride 2, padding 3), bn1, relu, maxpool (3x3, stride 2, padding 1), layer1 ... layer4 (3, "
    "4, 6, 3 blocks; stride 1, 2, 2, 2; inplanes: what the stage before outputs), avgpool, torch.flatten(x, 1), fc.",
    "blocks": "ResNet-34's stages have 3, 4, 6 and 3 blocks, as in the table of section 1.",
}
_CASES = [(tv.BasicBlock, 8, 8, 2, 1), (tv.BasicBlock, 8, 16, 3, 2), (tv.Bottleneck, 8, 4, 2, 1)]


def tv_make_layer(block: type[nn.Module], inplanes: int, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
    """torchvision's own ``ResNet._make_layer``, called as a function of the stage's input channels."""
    host = SimpleNamespace(inplanes=inplanes, dilation=1, groups=1, base_width=64, _norm_layer=nn.BatchNorm2d)
    return tv.ResNet._make_layer(host, block, planes, blocks, stride)


@exercise("make_layer")
def check_make_layer(fn: Callable[..., nn.Sequential]) -> None:
    """``fn(block, inplanes, planes, blocks, stride)`` must be torchvision's stage: the same modules and outputs."""
    expect_answer(fn(tv.BasicBlock, 8, 8, 2), "make_layer(BasicBlock, 8, 8, 2)", "an nn.Sequential of blocks")
    for block, inplanes, planes, blocks, stride in _CASES:
        what = f"make_layer({block.__name__}, {inplanes}, {planes}, {blocks}, stride={stride})"
        got, ref = fn(block, inplanes, planes, blocks, stride), tv_make_layer(block, inplanes, planes, blocks, stride)
        expect_equal(type(got), nn.Sequential, f"the type of {what}", _HINT["stage"])
        down, out = [0] if ref[0].downsample else [], planes * block.expansion
        why = f" Here the stride is 1 but the channels change, {inplanes} -> {out}." if stride == 1 and down else ""
        where = [i for i, b in enumerate(got) if getattr(b, "downsample", None) is not None]
        expect_equal(where, down, f"{what}: the blocks with a downsample", _HINT["down"] + why)
        strides, only_first = [getattr(b, "stride", None) for b in got], "only the first has one: " + _HINT["stage"]
        expect_equal(strides, [b.stride for b in ref], f"{what}: the strides", only_first)
        match_module(got, ref, (2, inplanes, 8, 8), what, _HINT["stage"])
    passed("your stages take torchvision's weights and give its outputs, with BasicBlocks and Bottlenecks.")


@exercise("ResNet34")
def check_resnet34(cls: type[nn.Module]) -> None:
    """``cls(block, make_layer)``, given torchvision's pieces, must take ``resnet34()``'s weights and outputs."""
    model, ref, shape = cls(tv.BasicBlock, tv_make_layer), tv.resnet34(), (2, 3, 64, 64)
    theirs, yours = ref.state_dict().keys(), model.state_dict().keys()
    if not yours:  # nothing built yet: the stub
        expect_answer(model(torch.randn(shape)), "ResNet34(BasicBlock, make_layer)(x)", "its output")
    if theirs != yours:  # what differs, by module, and by block inside the stages
        parts = lambda keys: ", ".join(sorted({".".join(k.split(".")[: 1 + k.startswith("layer")]) for k in keys}))
        hint = _HINT["blocks"] if any(k.startswith("layer") for k in theirs ^ yours) else _HINT["forward"]
        missing, extra = parts(theirs - yours) or "nothing", parts(yours - theirs) or "nothing"
        fail(f"torchvision's ResNet-34 has {missing} that yours lacks, and yours has {extra} that it lacks.", hint)
    try:  # each top-level module's output shape: a module that never ran is missing from the forward pass
        shapes = [{r.name: r.output_shape for r in layer_table(m, shape, depth=1)} for m in (model, ref)]
    except RuntimeError as e:
        fail(f"your ResNet34 fails on a 64x64 image: {e}", _HINT["forward"])
    for name, want in shapes[1].items():
        expect_equal(shapes[0].get(name, "nothing: it never ran"), want, f"{name}'s output for 64x64", _HINT["forward"])
    match_module(model, ref, shape, "ResNet34(BasicBlock, make_layer)", _HINT["forward"])
    passed("torchvision's resnet34 state dict loads into yours (strict), and both give the same outputs.")
