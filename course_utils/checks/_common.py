"""What every exercise check shares: comparing a learner's result with the reference."""

from __future__ import annotations

import torch


def passed(message: str) -> None:
    """Print the success line every check ends with."""
    print(f"✅ Correct: {message}")


def expect_close(got: torch.Tensor, expected: torch.Tensor, what: str, hint: str, atol: float = 1e-5) -> None:
    """Raise an AssertionError naming ``what`` and giving ``hint`` unless the tensors match."""
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{what}: expected a torch.Tensor, got {type(got).__name__}. Hint: {hint}")
    if got.shape != expected.shape:
        raise AssertionError(f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}. Hint: {hint}")
    err = (got.detach().float() - expected.detach().float()).abs().max().item()
    if not err <= atol:
        raise AssertionError(
            f"{what}: values differ from the reference by up to {err:.3g} (allowed {atol}). Hint: {hint}"
        )


def expect_equal(got: object, expected: object, what: str, hint: str) -> None:
    """Raise an AssertionError naming ``what`` and giving ``hint`` unless ``got == expected``."""
    if got != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {got!r}. Hint: {hint}")


def expect_answer(got: object, what: str, todo: str = "your code", hint: str | None = None) -> None:
    """Raise the AssertionError every check gives while the exercise still returns ``None`` (its stub)."""
    if got is None:
        message = f"{what} returned None: replace `return None` with {todo}."
        raise AssertionError(f"{message} Hint: {hint}" if hint else message)
