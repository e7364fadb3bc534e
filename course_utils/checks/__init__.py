"""Checks for the exercises: one submodule per notebook (``checks.nb02``, ...).

Each ``check_*`` function prints ✅, or ✗ with what was expected and a hint,
and returns whether the piece passed; it never stops the notebook. A solution
cell stands in with :func:`stands_in`, the last cell prints :func:`summary`,
and :func:`yours` hands an earlier notebook's piece to a later one.
"""

import importlib
import pkgutil

from ._exercise import Unfinished, exercise, reset, source_of, stands_in, summary, yours  # noqa: F401

__all__ = ["Unfinished", "exercise", "reset", "source_of", "stands_in", "summary", "yours"]
for _info in pkgutil.iter_modules(__path__):
    if _info.name.startswith("nb"):
        globals()[_info.name] = importlib.import_module(f"{__name__}.{_info.name}")
        __all__.append(_info.name)
