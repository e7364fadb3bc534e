"""Checks for the exercises: one submodule per notebook (``checks.nb02``, ...).

Each ``check_*`` function prints a short success message, or raises an
``AssertionError`` whose message says what was expected and gives a hint.
"""

import importlib
import pkgutil

__all__ = []
for _info in pkgutil.iter_modules(__path__):
    if _info.name.startswith("nb"):
        globals()[_info.name] = importlib.import_module(f"{__name__}.{_info.name}")
        __all__.append(_info.name)
