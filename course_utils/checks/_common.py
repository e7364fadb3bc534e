"""What every exercise check shares: comparing a learner's result with the reference."""

from __future__ import annotations

import torch

from ._exercise import Unfinished

# Tolerances follow the dtype. float32 sets the finest: a correct answer computed in float32 anywhere along
# the way differs from a float64 reference by rounding, ~1e-6.
_TOLERANCE = {torch.float64: 1e-5, torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 1e-3}


def passed(message: str) -> None:
    """Print the success line every check ends with."""
    print(f"✅ Correct: {message}")


def expect_close(got: torch.Tensor, expected: torch.Tensor, what: str, hint: str, atol: float | None = None) -> None:
    """Raise an AssertionError naming ``what`` and giving ``hint`` unless the tensors match: within ``atol``,
    by default a tolerance for the coarser of the two dtypes, relative to the reference's largest value."""
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{what}: expected a torch.Tensor, got {type(got).__name__}. Hint: {hint}")
    if got.shape != expected.shape:
        raise AssertionError(f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}. Hint: {hint}")
    if atol is None:
        coarse = max(_TOLERANCE.get(got.dtype, 1e-5), _TOLERANCE.get(expected.dtype, 1e-5))
        atol = coarse * max(1.0, expected.detach().abs().max().item() if expected.numel() else 1.0)
    err = (got.detach().double() - expected.detach().double()).abs().max().item() if got.numel() else 0.0
    if not err <= atol:
        raise AssertionError(
            f"{what}: values differ from the reference by up to {err:.3g} (allowed {atol:.2g}). Hint: {hint}"
        )


def expect_equal(got: object, expected: object, what: str, hint: str) -> None:
    """Raise an AssertionError naming ``what`` and giving ``hint`` unless ``got == expected``."""
    if got != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {got!r}. Hint: {hint}")


def expect_answer(got: object, what: str, todo: str = "your code", hint: str | None = None) -> None:
    """Raise :class:`Unfinished` while the exercise still returns ``None`` (its stub)."""
    if got is None:
        message = f"{what} returned None: replace `return None` with {todo}."
        raise Unfinished(f"{message} Hint: {hint}" if hint else message)
