"""Drive every course widget without a browser and check what its readout shows.

Run under ipywidgets 8 (the venv) and 7.7 (Colab) alike; tests/test_widgets_compat.py
runs it under both:

    python tools/widget_compat_check.py                          # course_utils.widgets
    PYTHONPATH=.venv-ipywidgets7 python tools/widget_compat_check.py --expect-ipywidgets 7.7
    python tools/widget_compat_check.py --module some_module     # any module with WIDGETS

For each factory in ``WIDGETS``: build the widget, check its shape (a Box with
``controls``, ``readout`` and, where there is one, ``expected``), then set each
control to a couple of other valid values (and back). After every change each
integer that ``expected(**values)`` returns (other values are not checked) must appear in ``readout.value``,
formatted ``f"{n:,}"``. Prints one line per widget; exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import re
import sys
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def candidates(control) -> list:
    """A few valid values for ``control`` other than its current one."""
    value = control.value
    if hasattr(control, "options"):
        options = [o[1] if isinstance(o, (tuple, list)) and len(o) == 2 else o for o in control.options]
        others = [o for o in options if o != value]
        return others[-1:] + others[:1] if len(others) > 1 else others
    if isinstance(value, bool):
        return [not value]
    if hasattr(control, "min") and hasattr(control, "max"):
        lo, hi = control.min, control.max
        step = getattr(control, "step", None) or 1
        mid = lo + round((hi - lo) / 2 / step) * step
        mid = int(mid) if isinstance(value, int) else mid
        return list(dict.fromkeys(v for v in (hi, lo, mid) if v != value))
    return []


def shows(text: str, n: int) -> bool:
    """``f"{n:,}"`` appears in ``text`` as a whole number, not inside a longer one."""
    return re.search(rf"(?<![\d,.]){re.escape(f'{n:,}')}(?![\d]|[,.]\d)", text) is not None


def check_widget(W, name: str, factory) -> tuple[int, list[str]]:
    """(states checked, problems) for one widget."""
    import matplotlib.pyplot as plt

    problems: list[str] = []
    box = factory()
    if not isinstance(box, W.Box):
        return 0, [f"factory returned {type(box).__name__}, not a Box"]
    controls = getattr(box, "controls", None)
    readout = getattr(box, "readout", None)
    expected = getattr(box, "expected", None)
    if not isinstance(controls, dict) or not controls:
        return 0, ["no `controls` dict"]
    bad = [k for k, c in controls.items() if not isinstance(c, W.ValueWidget)]
    if bad:
        problems.append(f"controls that are not ValueWidgets: {bad}")
    if not isinstance(readout, W.HTML):
        return 0, problems + ["`readout` is not an HTML widget"]

    states = 0

    def check(change: str) -> None:
        nonlocal states
        states += 1
        plt.close("all")
        if not readout.value.strip():
            problems.append(f"{change}: readout is empty")
            return
        if expected is None:
            return
        values = {k: c.value for k, c in controls.items()}
        for key, n in expected(**values).items():
            if isinstance(n, int) and not isinstance(n, bool) and not shows(readout.value, n):
                problems.append(f"{change}: expected {key} = {n:,} in readout, got: {readout.value!r}")

    check("initial")
    for key, control in controls.items():
        original = control.value
        tried = candidates(control)
        if not tried:
            problems.append(f"{key}: no other valid value to try for a {type(control).__name__}")
        for value in tried:
            control.value = value
            check(f"{key}={value!r}")
        control.value = original
        check(f"{key} back to {original!r}")
    return states, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", default="course_utils.widgets", help="module exposing WIDGETS")
    parser.add_argument("--expect-ipywidgets", metavar="PREFIX", help="fail unless ipywidgets.__version__ starts so")
    args = parser.parse_args(argv)
    sys.path.insert(1, str(ROOT))  # course_utils from this checkout, installed or not
    os.environ.setdefault("MPLBACKEND", "Agg")  # the widgets draw charts; no GUI here

    import ipywidgets as W

    print(f"ipywidgets {W.__version__} from {os.path.dirname(W.__file__)}")
    if args.expect_ipywidgets and not W.__version__.startswith(args.expect_ipywidgets):
        print(f"FAIL: expected ipywidgets {args.expect_ipywidgets}.*, got {W.__version__}")
        return 1
    warnings.simplefilter("ignore")  # matplotlib's "non-interactive backend" and deprecation chatter
    module = importlib.import_module(args.module)
    widgets = getattr(module, "WIDGETS", None)
    if not widgets:
        print(f"FAIL: {args.module}.WIDGETS is missing or empty")
        return 1

    failed = 0
    for name, factory in widgets.items():
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # Output.clear_output() writes escape codes here
                states, problems = check_widget(W, name, factory)
        except Exception:
            states, problems = 0, [traceback.format_exc()]
        if problems:
            failed += 1
            print(f"FAIL {name}: {len(problems)} problem(s) in {states} states")
            for problem in problems:
                print(f"    {problem}")
        else:
            print(f"ok   {name}: {states} states checked")
    print(f"{len(widgets) - failed}/{len(widgets)} widgets ok under ipywidgets {W.__version__}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
