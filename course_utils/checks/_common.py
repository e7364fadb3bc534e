"""What every exercise check shares: comparing a learner's result, or module, with the reference."""

from __future__ import annotations

import contextlib
from typing import Callable, NoReturn, Sequence

import torch
from torch import nn

from ._exercise import Unfinished
from ._exercise import exercise as exercise  # the checks import all they use from here

Slips = Sequence[tuple[str, torch.Tensor]]  # (the hint for a typical slip, what that slip computes)

# Per dtype. float32 sets the finest: a right answer computed in float32 anywhere is ~1e-6 off a float64 reference.
_TOLERANCE = {torch.float64: 1e-5, torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 1e-3}
_WHOSE = {"torch": "PyTorch's", "torchvision": "torchvision's"}  # whose weights the reference has, by its package


def passed(message: str) -> None:
    """Print the success line every check ends with."""
    print(f"✅ Correct: {message}")


def fail(what: str, hint: str) -> NoReturn:
    """Raise the AssertionError that the notebook prints after ✗: what is wrong, then how to fix it."""
    raise AssertionError(f"{what} Hint: {hint}") from None  # the learner's error it may replace is in ``what``


def expect_answer(got: object, what: str, todo: str = "your code") -> None:
    """Raise :class:`Unfinished` while the exercise returns ``None`` (the stub); no hint, that would tell the answer."""
    if got is None:
        raise Unfinished(f"{what} returned None: replace `return None` with {todo}.")


def expect_equal(got: object, expected: object, what: str, hint: str) -> None:
    """Fail, naming ``what`` and giving ``hint``, unless ``got == expected``."""
    if got != expected:
        fail(f"{what}: expected {expected!r}, got {got!r}.", hint)


def expect_close(
    got: object, expected: torch.Tensor, what: str, hint: str, atol: float | None = None, slips: Slips = ()
) -> None:
    """Fail unless ``got`` has ``expected``'s shape and values within ``atol`` (by default a tolerance for the
    coarser dtype, relative to the largest expected value); if ``got`` is one of ``slips``, with that slip's hint."""
    if not isinstance(got, torch.Tensor):
        fail(f"{what}: expected a torch.Tensor, got {type(got).__name__}.", hint)
    got = got.detach()
    if got.shape != expected.shape:
        problem = f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    else:
        if atol is None:
            coarse = max(_TOLERANCE.get(got.dtype, 1e-5), _TOLERANCE.get(expected.dtype, 1e-5))
            atol = coarse * max(1.0, expected.detach().abs().max().item() if expected.numel() else 1.0)
        err = (got.double() - expected.detach().double()).abs().max().item() if got.numel() else 0.0
        if err <= atol:
            return
        problem = f"values differ from the reference by up to {err:.3g} (allowed {atol:.2g})"
    # Only now, on a mismatch: a right float32 answer is never taken for a slip.
    same = lambda slip: got.shape == slip.shape and torch.allclose(got.double(), slip.detach().double(), 1e-4, 1e-5)
    fail(f"{what}: {problem}.", next((h for h, slip in slips if same(slip)), hint))


def load_reference(mine: nn.Module, ref: nn.Module, what: str, hint: str) -> None:
    """Give ``ref``'s BatchNorms random weights and statistics, then load all of ``ref``'s weights into ``mine``;
    if their names or shapes differ, fail naming the first difference in (at most) two layers."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # fresh BatchNorms do nothing in eval mode, which could hide a slip
        for bn in (m for m in ref.modules() if isinstance(m, nn.BatchNorm2d)):
            for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                t.uniform_(0.5, 1.5, generator=gen)
    ours, theirs = mine.state_dict(), ref.state_dict()
    whose = _WHOSE.get(type(ref).__module__.split(".")[0], "the course's")
    shape = lambda sd, k: tuple(sd[k].shape) if k in sd else "missing"
    wrong: dict[str, str] = {}  # layer -> its first difference
    for k in (k for k in dict.fromkeys([*theirs, *ours]) if shape(ours, k) != shape(theirs, k)):
        wrong.setdefault(k.rsplit(".", 1)[0], f"{k} is {shape(ours, k)} in yours, {shape(theirs, k)} in {whose}")
    if wrong:
        fail(f"{what} cannot take {whose} weights: {'; '.join(list(wrong.values())[:2])}.", hint)
    mine.load_state_dict(theirs)


def match_module(
    mine: nn.Module,
    ref: nn.Module,
    shape: tuple[int, ...] | list[tuple[int, ...]],
    what: str,
    hint: str,
    misfit: str | None = None,
    slips: Callable[..., Slips] | None = None,
    errors: dict[str, str] | None = None,
    strides: dict[str, str] | None = None,
) -> None:
    """``mine`` must take ``ref``'s weights (:func:`load_reference`; ``misfit``: the hint if they do not fit) and
    give ``ref``'s outputs in eval and train mode on a random input of ``shape`` (a list of shapes: a list of inputs).
    ``slips(ref, x)``: as in :func:`expect_close`; ``errors``: the words of a RuntimeError -> its hint;
    ``strides``: a conv that has the stride where ``ref``'s has not, or the other way round -> its hint."""
    gen = torch.Generator().manual_seed(1)
    x = [torch.randn(s, generator=gen) for s in shape] if isinstance(shape, list) else torch.randn(shape, generator=gen)

    def run(net: nn.Module, mode: str) -> object:
        with torch.no_grad():  # on a copy of x: a learner's in-place operation cannot change the next run's input
            return net.train(mode == "train")([t.clone() for t in x] if isinstance(x, list) else x.clone())

    with contextlib.suppress(RuntimeError):  # only the stub matters here: an error is reported below, with its hint
        expect_answer(run(mine, "train"), what, "its output")
    load_reference(mine, ref, what, misfit or hint)
    strided = lambda b: sorted(n for n, m in b.named_modules() if isinstance(m, nn.Conv2d) and m.stride != (1, 1))
    yours, theirs = strided(mine), strided(ref)
    if yours != theirs:  # the same weights, the stride elsewhere: name the conv that should (not) have it
        only = f"put the stride on {', '.join(theirs)} only." if theirs else "leave every conv at stride 1."
        fix = (strides or {}).get(min(set(yours) ^ set(theirs)), only)
        fail(f"{what} has the stride on {yours}, the reference on {theirs}.", fix)
    for mode in ("eval", "train"):
        want = run(ref, mode)
        try:
            got = run(mine, mode)
        except RuntimeError as e:
            why = next((h for words, h in (errors or {}).items() if words in str(e)), hint)
            fail(f"{what} in {mode} mode raised RuntimeError: {e}", why)
        with torch.no_grad():
            expect_close(got, want, f"{what} in {mode} mode", hint, slips=slips(ref, x) if slips else ())
