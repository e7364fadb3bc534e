"""Checks for the exercises, one submodule per notebook (``checks.nb02``, ...), and where the learner stands.

An exercise is three cells: the learner's stub, its check, and a collapsed solution. A check prints ✅, ✗ with what
was expected and a hint, or "○ Not done yet", and never stops "Run all": unless the learner's piece passed, the
solution stands in for it (:func:`stands_in`), and the learner can come back to the exercise. The last cell prints
:func:`summary`; :func:`yours` hands an earlier notebook's piece to a later one::

    def bn_forward(x, gamma, beta, eps=1e-5):      # the learner's cell
        # YOUR CODE HERE
        return None

    cu.checks.nb02.check_bn_forward(bn_forward)    # the check

    if cu.checks.stands_in(bn_forward):            # the solution cell
        def bn_forward(x, gamma, beta, eps=1e-5): ...
"""

import importlib
import pkgutil

from ._exercise import Unfinished, exercise, reset, source_of, stands_in, summary, yours  # noqa: F401

__all__ = ["Unfinished", "exercise", "reset", "source_of", "stands_in", "summary", "yours"]
for _info in pkgutil.iter_modules(__path__):
    if _info.name.startswith("nb"):
        globals()[_info.name] = importlib.import_module(f"{__name__}.{_info.name}")
        __all__.append(_info.name)
