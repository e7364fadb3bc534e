"""Checks for notebook 07 (plain vs residual networks): the paper's step learning-rate schedule."""

from typing import Callable

import torch

from ._common import exercise, expect_answer, fail, passed

_HINT = (
    "count the milestones that are <= step (the lr drops at the milestone step itself, and stays down), then return "
    "base_lr * gamma ** count: milestones [32000, 48000] give 0.1 up to step 31999, 0.01 from 32000, 0.001 from 48000."
)


@exercise("step_lr")
def check_step_lr(fn: Callable[..., float]) -> None:
    """``fn(step, base_lr, milestones, gamma=0.1)`` must give the lr torch's ``MultiStepLR`` uses at ``step``."""
    cases = [(0.1, [32, 48], 0.1, 70), (0.1, [5], 0.1, 12), (0.05, [1, 2, 3], 0.5, 6), (0.3, [7, 40, 41], 0.2, 60)]
    for base_lr, milestones, gamma, steps in cases:
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=gamma)
        for step in range(steps):  # the lr a training loop uses at `step`: read before scheduler.step()
            want, got = optimizer.param_groups[0]["lr"], fn(step, base_lr, list(milestones), gamma)
            what = f"step_lr({step}, base_lr={base_lr}, milestones={milestones}, gamma={gamma})"
            expect_answer(got, what)
            if not isinstance(got, (int, float)) or abs(got - want) > 1e-6 * want:
                fail(f"{what}: expected {want:.6g} (torch's MultiStepLR), got {got!r}.", _HINT)
            optimizer.step()
            scheduler.step()
    passed(f"your step schedule matches torch.optim.lr_scheduler.MultiStepLR at every step of {len(cases)} schedules.")
