"""Checks for notebook 07 (plain vs residual networks): the paper's step learning-rate schedule."""

from __future__ import annotations

import math
import random

import torch

from ._common import expect_answer, passed

_HINT = (
    "count the milestones that are <= step (the lr drops at the milestone step itself, and stays down), "
    "then return base_lr * gamma ** count. Example: milestones [32000, 48000] give 0.1 up to step 31999, "
    "0.01 from step 32000, 0.001 from step 48000."
)


def _reference(base_lr: float, milestones: list[int], gamma: float, steps: int) -> list[float]:
    """The lr of each step from torch's MultiStepLR, read before each scheduler.step() (as a training loop uses it)."""
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=base_lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=gamma)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def check_step_lr(fn) -> None:
    """``fn(step, base_lr, milestones, gamma=0.1)`` must give the lr torch's ``MultiStepLR`` uses at ``step``."""
    rng = random.Random(7)
    cases = [(0.1, [32, 48], 0.1, 70), (0.1, [5], 0.1, 12), (0.05, [1, 2, 3], 0.5, 6)]
    for _ in range(5):
        total = rng.randrange(10, 200)
        milestones = sorted(rng.sample(range(1, total), rng.randrange(1, 4)))
        cases.append((round(rng.uniform(0.01, 1.0), 3), milestones, rng.choice([0.1, 0.2, 0.5]), total))
    for base_lr, milestones, gamma, steps in cases:
        expected = _reference(base_lr, milestones, gamma, steps)
        for step, want in enumerate(expected):
            got = fn(step, base_lr, list(milestones), gamma)
            what = f"step_lr({step}, base_lr={base_lr}, milestones={milestones}, gamma={gamma})"
            expect_answer(got, what, hint=_HINT)
            try:
                value = float(got)
            except (TypeError, ValueError):
                raise AssertionError(f"{what}: expected a number, got {type(got).__name__}. Hint: {_HINT}") from None
            if not math.isclose(value, want, rel_tol=1e-6):
                raise AssertionError(f"{what}: expected {want:.6g} (torch's MultiStepLR), got {got!r}. Hint: {_HINT}")
    passed(f"your step schedule matches torch.optim.lr_scheduler.MultiStepLR at every step of {len(cases)} schedules.")
