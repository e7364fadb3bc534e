"""Checks for notebook 09 (DenseNet): the channel plan of a DenseNet."""

import random
from typing import Callable

import torch

from ..models import DenseLayer, DenseNet
from ._common import expect_answer, expect_equal, passed
from ._exercise import exercise

HINT = (
    "layer i of a dense block (from 0) sees the block's input plus growth_rate channels from each layer before it; "
    "a block of L layers outputs its input + L * growth_rate channels, and the transition after it (every block but "
    "the last) halves that, rounding down (c // 2), to give the next block's input."
)


def _reference_plan(k0: int, k: int, blocks: tuple[int, ...]) -> list[list[int]]:
    """Input channels of every DenseLayer, read off a real DenseNet (on the meta device: no memory, no time)."""
    with torch.device("meta"):
        net = DenseNet(k, tuple(blocks), k0, num_classes=10)
    dense_blocks = [b for name, b in net.features.named_children() if name.startswith("denseblock")]
    return [[layer.norm1.num_features for layer in b.children() if isinstance(layer, DenseLayer)] for b in dense_blocks]


@exercise("channel_plan")
def check_channel_plan(fn: Callable[[int, int, tuple[int, ...]], list[list[int]]]) -> None:
    """``fn(k0, growth_rate, block_config)``: each dense layer's input channels, as in a real ``DenseNet``."""
    expect_answer(fn(64, 32, (6,)), "channel_plan", "your lists", HINT)
    rng = random.Random(9)
    cases = [(64, 32, (6, 12, 24, 16)), (24, 12, (16, 16, 16)), (16, 8, (3, 5)), (7, 5, (2, 3, 4)), (64, 32, (6,))]
    cases += [
        (rng.randint(1, 40), rng.randint(1, 33), tuple(rng.choices(range(1, 7), k=rng.randint(1, 4)))) for _ in range(6)
    ]
    for k0, k, blocks in cases:
        got = fn(k0, k, blocks)
        if isinstance(got, (list, tuple)) and all(isinstance(b, (list, tuple)) for b in got):
            got = [[int(c) for c in b] for b in got]  # tuples and numpy or torch integers are fine too
        what = f"channel_plan({k0}, {k}, {blocks}), one list per dense block"
        expect_equal(got, _reference_plan(k0, k, blocks), what, HINT)
    passed(f"every dense layer's input channels match a real DenseNet in {len(cases)} configurations.")
