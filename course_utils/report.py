"""Saying what a training run showed: a ✓ or ✗ with the measured numbers, never an exception, so that a long run
always reaches its last cell. (What construction guarantees, a shape or a parameter count, a notebook asserts.)"""

from __future__ import annotations

from . import env as _env


def verdict(condition: bool, claim: str, measured: str = "") -> bool:
    """Print ``✓ claim (measured)`` or ``✗ claim (measured)`` and return whether it held; at the smoke size, a run
    far too short to show anything, the claim is not judged."""
    held = bool(condition)
    detail = f" ({measured})" if measured else ""
    current = _env.current()
    size = current.size if current is not None else _env.course_size()
    if size == "smoke":
        print(f"· {claim}: not judged, a smoke-size run is too small to show it{detail}")
    else:
        print(f"{'✓' if held else '✗'} {claim}{detail}")
    return held
