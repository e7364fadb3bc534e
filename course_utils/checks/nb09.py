"""Checks for notebook 09 (DenseNet): the dense layer, the dense block, and the channel plan of a DenseNet."""

import random
from typing import Callable

import torch
from torch import nn
from torchvision.models import densenet as tv

from ..models import DenseBlock, DenseNet
from ._common import exercise, expect_answer, expect_equal, match_module, passed

_HINT = {
    "layer": "norm1 (num_input_features), relu1, conv1 (1x1 to bn_size * growth_rate), norm2, relu2, conv2 (3x3, "
    "padding 1, to growth_rate), no conv bias; forward(features): "
    "conv2(relu2(norm2(conv1(relu1(norm1(torch.cat(features, 1)))))))",
    "block": "denselayer{i + 1} = DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size): layer i "
    "sees the block's input and the i earlier layers' features; forward: features = [x], append layer(features) for "
    "each layer, return torch.cat(features, 1)",
    "order": "BN and ReLU come before each convolution: norm1 normalises the layer's input (num_input_features)",
    "alone": "return only the growth_rate new channels: the block, not the layer, puts them next to the old ones",
    "add": "concatenate with torch.cat(..., 1), do not add: the new features go next to the old ones",
    "input": "the block returns its input too, torch.cat([x, new_1, ..., new_L], 1): k0 + num_layers * growth_rate",
    "plan": "layer i of a dense block (from 0) sees the block's input plus growth_rate channels from each layer before "
    "it; a block of L layers outputs its input + L * growth_rate channels, and the transition after it (every block "
    "but the last) halves that, rounding down (c // 2), to give the next block's input.",
}


@exercise("DenseLayer")
def check_dense_layer(cls: type[nn.Module]) -> None:
    """``cls(num_input_features, growth_rate, bn_size)`` on a list of maps must be torchvision's ``_DenseLayer``."""
    for parts, k, bn_size in [((64,), 32, 4), ((64, 32, 32), 32, 4), ((24, 12), 12, 2), ((7, 5, 5, 5), 5, 3)]:
        c_in, what = sum(parts), f"DenseLayer({sum(parts)}, growth_rate={k}, bn_size={bn_size})"
        layer, ref = cls(c_in, k, bn_size), tv._DenseLayer(c_in, k, bn_size, drop_rate=0.0, memory_efficient=False)
        order = getattr(getattr(layer, "norm1", None), "num_features", c_in) != c_in
        misfit = _HINT["order"] if order else _HINT["layer"]
        alone = lambda ref, x: [(_HINT["alone"], torch.cat([*x, ref(x)], 1))]  # the old features returned too
        match_module(layer, ref, [(2, c, 6, 6) for c in parts], what, _HINT["layer"], misfit, alone)
    passed("your DenseLayer takes torchvision's _DenseLayer weights and gives its new features, 4 shapes, both modes.")


@exercise("DenseBlock")
def check_dense_block(cls: type[nn.Module]) -> None:
    """``cls(num_layers, num_input_features, bn_size, growth_rate)`` must be torchvision's ``_DenseBlock``."""
    for n, k0, bn_size, k in [(6, 64, 4, 32), (3, 24, 4, 12), (4, 7, 2, 5), (1, 16, 4, 8)]:
        what = f"DenseBlock({n}, {k0}, bn_size={bn_size}, growth_rate={k})"
        ref = tv._DenseBlock(n, k0, bn_size, k, drop_rate=0.0, memory_efficient=False)
        no_input = lambda ref, x: [(_HINT["input"], ref(x)[:, x.shape[1] :])]  # the block's input left out
        added = {"must match the size": _HINT["add"]}  # the words of the RuntimeError that adding the maps raises
        match_module(cls(n, k0, bn_size, k), ref, (2, k0, 6, 6), what, _HINT["block"], slips=no_input, errors=added)
    passed("your DenseBlock takes torchvision's _DenseBlock weights and gives its outputs, 4 shapes, both modes.")


@exercise("channel_plan")
def check_channel_plan(fn: Callable[[int, int, tuple[int, ...]], list[list[int]]]) -> None:
    """``fn(k0, growth_rate, block_config)``: each dense layer's input channels, as in a real ``DenseNet``."""
    expect_answer(fn(64, 32, (6,)), "channel_plan", "your lists")
    rng = random.Random(9)
    cases = [(64, 32, (6, 12, 24, 16)), (24, 12, (16, 16, 16)), (16, 8, (3, 5)), (7, 5, (2, 3, 4)), (64, 32, (6,))]
    for _ in range(6):  # and 6 at random
        cases.append((rng.randint(1, 40), rng.randint(1, 33), tuple(rng.choices(range(1, 7), k=rng.randint(1, 4)))))
    for k0, k, blocks in cases:
        with torch.device("meta"):  # a real DenseNet's layers, read off without memory or time
            net = DenseNet(k, tuple(blocks), k0, num_classes=10)
        want = [[layer.norm1.num_features for layer in b.values()] for b in net.features if isinstance(b, DenseBlock)]
        got = fn(k0, k, blocks)
        if isinstance(got, (list, tuple)) and all(isinstance(b, (list, tuple)) for b in got):
            got = [[int(c) for c in b] for b in got]  # tuples and numpy or torch integers are fine too
        expect_equal(got, want, f"channel_plan({k0}, {k}, {blocks}), one list per dense block", _HINT["plan"])
    passed(f"every dense layer's input channels match a real DenseNet in {len(cases)} configurations.")
