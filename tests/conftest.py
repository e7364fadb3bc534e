"""Shared by the tests: repository paths, tools as modules, and how long each notebook took."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
ARTIFACTS_DIR = ROOT / "test-artifacts"  # git-ignored: executed notebooks, screenshots, logs
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def load_script(path: Path, name: str):
    """The script at ``path`` as a module called ``name`` (tools/, benchmarks/ and tests/slips/ are not packages)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def load_tool(name: str):
    """``tools/<name>.py`` as a module."""
    return load_script(ROOT / "tools" / f"{name}.py", name)


def pytest_terminal_summary(terminalreporter):
    """One line per executed notebook (and browser test) with its time, slowest first."""
    rows = []
    for reports in terminalreporter.stats.values():
        for rep in reports:
            if getattr(rep, "when", None) != "call":
                continue
            if "test_notebooks.py::" in rep.nodeid or "test_browser.py::" in rep.nodeid:
                rows.append((rep.duration, rep.outcome, rep.nodeid))
    if rows:
        terminalreporter.section("notebook and browser times")
        for duration, outcome, nodeid in sorted(rows, reverse=True):
            terminalreporter.write_line(f"{duration:7.1f}s  {outcome:7s}  {nodeid}")
