"""Exercise checks, one submodule per notebook (``checks.nb02``, ...): each prints ✅, ✗ with a hint or "○ Not done
yet", never stops "Run all", and the solution stands in (:func:`stands_in`) until the learner's piece passes."""

import importlib
import pkgutil

from ._exercise import Unfinished, exercise, reset, source_of, stands_in, summary, yours

_NOTEBOOKS = [info.name for info in pkgutil.iter_modules(__path__) if info.name.startswith("nb")]
__all__ = ["Unfinished", "exercise", "reset", "source_of", "stands_in", "summary", "yours", *_NOTEBOOKS]
for _name in _NOTEBOOKS:
    globals()[_name] = importlib.import_module(f"{__name__}.{_name}")
