"""Where a learner stands: each exercise's check, the solution standing in, the summary, pieces kept for later."""

import ast
import contextlib
import datetime
import functools
import inspect
import io
import linecache
from pathlib import Path
from typing import Callable, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from .. import env as _env
from ..models import conv1x1, conv3x3

Piece = TypeVar("Piece")


class Unfinished(AssertionError):
    """The learner's piece is still the stub (it returned ``None``)."""


_results: dict[str, tuple[str, object]] = {}  # exercise name -> (status, the object it is about)
_checks: dict[str, Callable[[object], None]] = {}  # exercise name -> its check, which raises on a wrong piece
_STATUS = {  # status -> (its line in the summary, why the solution stands in for it)
    "solved": ("✓ solved: your code passed its check", "changed since it passed its check: run the check again"),
    "open": ("○ open: still the stub", "is still the stub"),
    "failed": ("✗ failed its check (its hint is printed under the check)", "did not pass its check"),
    "unchecked": ("○ not checked yet", "has not been checked: run the check cell above"),
}
_STANDS_IN = "the solution cell below stands in for it."


def exercise(name: str, keep: bool = False) -> Callable[[Callable[[object], None]], Callable[[object], bool]]:
    """Turn a check that raises ``AssertionError`` into the notebook's check, which prints and returns ``True``
    when the piece passed. ``keep``: save a piece that passed, for later notebooks (see :func:`yours`)."""

    def decorate(check: Callable[[object], None]) -> Callable[[object], bool]:
        _checks[name] = check

        def verdict(piece: object) -> tuple[str, str]:  # (its status, what to print)
            if not callable(piece):
                return "failed", (
                    f"✗ {check.__name__} takes your {name} itself, the name without parentheses: "
                    f"{check.__name__}({name}). It got {type(piece).__name__}; run the cell that defines {name} first."
                )
            try:
                check(piece)
            except Unfinished as e:
                return "open", f"○ Not done yet: {e}\n  Until it is, {_STANDS_IN}"
            except AssertionError as e:
                return "failed", f"✗ {e}\n  Until yours passes, {_STANDS_IN}"
            return "solved", ""  # the check printed its ✅ line

        @functools.wraps(check)
        def run(piece: object) -> bool:
            status, said = verdict(piece)
            _results[name] = (status, piece)
            if said:
                print(said)
            elif keep:
                _keep(name, piece)
            return status == "solved"

        run.strict = check  # type: ignore[attr-defined]  # the raising check, for tests
        return run

    return decorate


def stands_in(piece: object) -> bool:
    """In a solution cell: ``True`` (and one line that says so) unless ``piece`` passed its check."""
    checked_as = [name for name, (_, obj) in _results.items() if obj is piece]  # the learner may rename it
    name = checked_as[0] if checked_as else getattr(piece, "__name__", type(piece).__name__)
    status, checked = _results.get(name, ("unchecked", None))
    if status == "solved" and checked is piece:
        return False
    print(f"Your {name} {_STATUS[status][1]}, so the solution in this cell stands in for it.")
    _results[name] = (status if status in ("open", "failed") else "unchecked", piece)
    return True


def summary() -> None:
    """Print, for every exercise checked in this notebook, whether it is solved, open or failed."""
    print("Your exercises in this notebook:" if _results else "No exercise was checked in this notebook.")
    width = max(map(len, _results), default=0)
    for name, (status, _) in _results.items():
        print(f"  {name:{width}}  {_STATUS[status][0]}" + ("" if status == "solved" else "; the solution stood in"))
    left = sum(status != "solved" for status, _ in _results.values())
    if left:
        print(f"{left} of {len(_results)} still to do: write them in their cells and run their checks again.")
    elif _results:
        print(f"All {len(_results)} solved.")


def reset() -> None:
    """Forget every result (a fresh notebook)."""
    _results.clear()


def _kept_dir() -> Path:  # where pieces that passed are kept for later notebooks
    current = _env.current()
    return (current.cache_dir if current else _env.course_dir()) / "exercises"


def source_of(piece: object) -> str:
    """The source of a function or class (found through one of its methods), also when defined in a notebook cell."""
    methods = [v for v in vars(piece).values() if inspect.isfunction(v)] if isinstance(piece, type) else []
    filename = inspect.getsourcefile(methods[0] if methods else piece)  # a cell's code is kept under a temporary name
    text = "".join(linecache.getlines(filename)) if filename else ""
    found = [n for n in ast.parse(text).body if getattr(n, "name", None) == piece.__name__] if text else []
    if not found:
        raise OSError(f"cannot find the source of {piece.__name__}")
    return ast.get_source_segment(text, found[-1]) + "\n"


def _keep(name: str, piece: object) -> None:
    try:
        source = source_of(piece)
    except (OSError, TypeError, SyntaxError):
        return  # defined in a way that cannot be saved (exec, a lambda): later notebooks use the course's
    path = _kept_dir() / f"{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    path.write_text(f"# Your {name}, saved when it passed its check on {stamp}.\n{source}", encoding="utf-8")


def yours(name: str, fallback: Piece) -> Piece:
    """Your ``name`` saved by an earlier notebook's check, if it still passes that check, else ``fallback``: it
    prints which one runs, so the notebook can say "your BasicBlock, or the course's"."""
    path = _kept_dir() / f"{name}.py"
    if not path.is_file():
        print(f"{name}: the course's. Yours is saved once it passes its check in the notebook that builds it.")
        return fallback
    namespace = {"torch": torch, "nn": nn, "F": F, "conv1x1": conv1x1, "conv3x3": conv3x3}  # what a block may use
    try:
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
        piece = namespace[name]
        with contextlib.redirect_stdout(io.StringIO()):  # only the verdict below is printed
            _checks[name](piece)
    except Exception as e:  # noqa: BLE001  # whatever went wrong, the course's piece runs and the learner is told
        print(f"{name}: the course's. Yours, in {path}, no longer passes its check ({type(e).__name__}: {e}).")
        return fallback
    print(f"{name}: yours, from {path} (it passed its check again just now).")
    return piece
