"""The course widgets work under ipywidgets 8 (JupyterLab 4) and 7.7 (Colab).

tools/widget_compat_check.py drives every widget in ``course_utils.widgets.WIDGETS``
and checks its readout against ``expected()``; here it runs once with the venv's
ipywidgets 8 and once with ipywidgets 7.7.5 from ``.venv-ipywidgets7/`` (put
first on PYTHONPATH; tools/test.sh installs it there with ``pip --target``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import IN_CI, ROOT

CHECK = ROOT / "tools" / "widget_compat_check.py"
IPYWIDGETS7 = ROOT / ".venv-ipywidgets7"
FLAVOURS = ["ipywidgets8", "ipywidgets7.7"]


def run_check(flavour: str, *args: str, pythonpath: list[Path] = ()) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg")
    paths = [str(p) for p in pythonpath]
    if flavour == "ipywidgets7.7":
        if not (IPYWIDGETS7 / "ipywidgets" / "__init__.py").exists():
            message = f"ipywidgets 7.7 is not installed in {IPYWIDGETS7.name}/ (bash tools/test.sh installs it)"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        paths.insert(0, str(IPYWIDGETS7))
        args = ("--expect-ipywidgets", "7.7", *args)
    else:
        args = ("--expect-ipywidgets", "8.", *args)
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, str(CHECK), *args], cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_course_widgets(flavour: str):
    result = run_check(flavour)
    print(result.stdout)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "widgets ok under ipywidgets" in result.stdout


STUB = """
import ipywidgets as W

def block(wrong=False):
    c = W.IntSlider(value=64, min=16, max=256, step=16, description="channels")
    bn = W.Checkbox(value=False, description="BN")
    kind = W.Dropdown(options=[("basic", 1), ("double", 2)], value=1, description="kind")
    readout = W.HTML()
    controls = {"c": c, "bn": bn, "kind": kind}

    def expected(c, bn, kind):
        return {"params": kind * 9 * c * c + (2 * c if bn else 0), "channels": c}

    def update(_=None):
        n = expected(c.value, bn.value, kind.value)["params"] + (1 if wrong and c.value != 64 else 0)
        readout.value = f"<b>{n:,}</b> parameters at {c.value:,} channels"

    for w in controls.values():
        w.observe(update, names="value")
    update()
    box = W.VBox([c, bn, kind, readout])
    box.controls, box.readout, box.expected = controls, readout, expected
    return box

WIDGETS = {"good": block, "wrong": lambda: block(wrong=True)}
"""


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_checker_catches_a_wrong_readout(flavour: str, tmp_path: Path):
    """The checker itself: a correct stub widget passes, one that is off by one fails, under both versions."""
    (tmp_path / "stub_widgets.py").write_text(textwrap.dedent(STUB), encoding="utf-8")
    result = run_check(flavour, "--module", "stub_widgets", pythonpath=[tmp_path])
    assert result.returncode == 1, f"{result.stdout}\n{result.stderr}"
    assert "ok   good: " in result.stdout, result.stdout
    assert "FAIL wrong: " in result.stdout, result.stdout
    assert "c=256: expected params = 589,824 in readout" in result.stdout, result.stdout
