"""Checks for notebook 09 (DenseNet)."""

from __future__ import annotations

import random

import torch

from ..models import DenseLayer, DenseNet
from ._common import expect_answer, expect_equal, passed

_HINT = (
    "inside a dense block, layer i (counting from 0) sees the block's input plus the growth_rate channels of "
    "each of the i layers before it: num_init_features + i * growth_rate. A block of L layers outputs "
    "its input + L * growth_rate channels; the transition after it (every block but the last) halves "
    "that, rounding down (c // 2), and the result is the next block's input."
)


def _reference_plan(num_init_features: int, growth_rate: int, block_config: tuple[int, ...]) -> list[list[int]]:
    """Input channels of every DenseLayer, read off a real DenseNet (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        model = DenseNet(growth_rate, tuple(block_config), num_init_features, num_classes=10)
    plan = []
    for name, block in model.features.named_children():
        if name.startswith("denseblock"):
            plan.append([layer.norm1.num_features for layer in block.children() if isinstance(layer, DenseLayer)])
    return plan


def check_channel_plan(fn) -> None:
    """``fn(num_init_features, growth_rate, block_config)``: each dense layer's input channels, block by block.

    Compared with the ``norm1.num_features`` of every ``DenseLayer`` of a real
    ``course_utils.models.DenseNet`` (whose channel counts equal torchvision's),
    for DenseNet-121's configuration and random ones with odd channel counts.
    """
    probe = fn(64, 32, (6,))
    expect_answer(probe, "channel_plan", "your lists", _HINT)
    rng = random.Random(9)
    cases = [(64, 32, (6, 12, 24, 16)), (24, 12, (16, 16, 16)), (16, 8, (3, 5)), (7, 5, (2, 3, 4)), (64, 32, (6,))]
    for _ in range(6):
        blocks = tuple(rng.randint(1, 6) for _ in range(rng.randint(1, 4)))
        cases.append((rng.randint(1, 40), rng.randint(1, 33), blocks))
    for k0, k, blocks in cases:
        got = fn(k0, k, blocks)
        if not isinstance(got, (list, tuple)) or not all(isinstance(b, (list, tuple)) for b in got):
            raise AssertionError(
                f"channel_plan({k0}, {k}, {blocks}) should return a list with one list per dense block, "
                f"got {got!r}. Hint: {_HINT}"
            )
        got = [[int(c) for c in b] for b in got]
        expected = _reference_plan(k0, k, blocks)
        what = f"channel_plan({k0}, {k}, {blocks})"
        expect_equal(len(got), len(expected), f"{what}: number of blocks (lists)", _HINT)
        for b, (got_block, expected_block) in enumerate(zip(got, expected)):
            expect_equal(got_block, expected_block, f"{what}, block {b + 1} (list {b})", _HINT)
    d121 = ", ".join(f"{b[0]}..{b[-1]}" for b in _reference_plan(64, 32, (6, 12, 24, 16)))
    passed(
        f"every dense layer's input channels match a real DenseNet in {len(cases)} configurations "
        f"(DenseNet-121's blocks: {d121})."
    )


__all__ = ["check_channel_plan"]
