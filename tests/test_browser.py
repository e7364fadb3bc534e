"""A learner's view: JupyterLab in a real (headless) Chromium, a widget driven by the keyboard.

For every code cell marked ``# widget: <name>`` in notebooks/ (and for a tiny stub
notebook that checks the machinery itself) the test starts JupyterLab on
127.0.0.1 with a token (COURSE_SMOKE=1), opens a copy of the notebook in
Chromium via Playwright, runs the cells up to and including the widget cell,
moves sliders with the arrow keys and checks that the readout shows the numbers
``course_utils.widgets.WIDGETS[name]().expected(...)`` gives for the new values.
Screenshots and the server log go to test-artifacts/. JupyterLab is always shut down.

Needs Debian's ``chromium`` and the ``playwright`` package (no ``playwright install``);
skipped without them, except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import ARTIFACTS_DIR, IN_CI, NOTEBOOKS_DIR, ROOT, load_tool

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--headless",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
MARKER = re.compile(r"^# widget: (\w+)\s*$", re.MULTILINE)
NOTEBOOK_04 = NOTEBOOKS_DIR / "04_basic_and_bottleneck.ipynb"
RUN_TIMEOUT = 300  # seconds for the cells up to the widget, smoke mode
shows = load_tool("widget_compat_check").shows

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

# The stub: a notebook with one widget cell, checking the machinery without the course.
STUB_SOURCE = """\
import ipywidgets as W

def stub_widget():
    c = W.IntSlider(value=16, min=8, max=64, step=8, description="channels c")
    readout = W.HTML()
    expected = lambda c: {"params": 9 * c * c}
    update = lambda _=None: setattr(readout, "value", f"3x3 conv: <b>{expected(c.value)['params']:,}</b> weights")
    c.observe(update, names="value")
    update()
    box = W.VBox([c, readout])
    box.controls, box.readout, box.expected = {"c": c}, readout, expected
    return box
"""


def widget_cells() -> list:
    """(notebook, cell index, widget name) for every marked widget cell."""
    cases = []
    for path in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            match = MARKER.search(cell.source) if cell.cell_type == "code" else None
            if match:
                cases.append(pytest.param(path, index, match.group(1), id=f"{path.stem}-{match.group(1)}"))
    return cases


def require_browser() -> None:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append("Debian's chromium (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -r requirements-dev.txt)")
    if missing:
        message = "the browser test needs " + " and ".join(missing)
        pytest.fail(message) if IN_CI else pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LAB_SETTINGS = {  # deterministic and quiet: every cell in the DOM, no autosave, no news or update checks
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin": {"enabled": False},
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a scratch folder; yields (base url, token, folder)."""
    require_browser()
    home = tmp_path_factory.mktemp("jupyterlab")
    root = home / "root"
    (root / "notebooks").mkdir(parents=True)
    settings = home / "settings"
    for plugin, values in LAB_SETTINGS.items():
        file = settings / f"{plugin}.jupyterlab-settings"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(values), encoding="utf-8")
    port, token = free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        COURSE_SMOKE="1",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    log = open(ARTIFACTS_DIR / "jupyterlab.log", "w")
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--LabApp.extension_manager=readonly",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}", "--LabApp.news_url=",
    ]  # fmt: skip
    server = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    # The server has a session of its own: if pytest is stopped with SIGTERM (a CI timeout), still shut it down.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143)) if main_thread else None
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}; see test-artifacts/jupyterlab.log")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("JupyterLab did not answer within 90 s; see test-artifacts/jupyterlab.log")
            time.sleep(0.5)
        yield base, token, root
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


# JavaScript run in the page, against the JupyterLab app (exposed by --LabApp.expose_app_in_browser).
JS_KERNEL_IDLE = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && panel.content.widgets.length > 0;
}"""
JS_RUN_UP_TO = """(index) => {
  const app = window.jupyterapp, notebook = app.shell.currentWidget.content;
  notebook.activeCellIndex = index;
  notebook.deselectAll();
  // Not awaited: run_up_to() polls, so a cell that hangs times out there instead of here.
  const above = index > 0 ? app.commands.execute('notebook:run-all-above') : Promise.resolve();
  void above.then(() => app.commands.execute('notebook:run-cell'));
}"""
JS_SHUTDOWN_KERNEL = """async () => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (panel && panel.sessionContext) await panel.sessionContext.shutdown();
}"""
JS_PROGRESS = """(index) => {
  const panel = window.jupyterapp.shell.currentWidget;
  const errors = [];
  let pending = 0;
  panel.content.widgets.slice(0, index + 1).forEach((cell, i) => {
    if (cell.model.type !== 'code') return;
    if (cell.model.executionCount === null) pending += 1;
    for (const out of cell.model.toJSON().outputs) {
      if (out.output_type !== 'error') continue;
      errors.push(`cell ${i}: ${out.ename}: ${out.evalue}\\n${out.traceback.join('\\n')}`);
    }
  });
  return {pending, errors, status: panel.sessionContext.session.kernel.status};
}"""


def run_up_to(page, index: int) -> None:
    """Run the cells above ``index`` and that cell, waiting until they ran (or one raised)."""
    page.wait_for_function(JS_KERNEL_IDLE, timeout=120_000)
    page.evaluate(JS_RUN_UP_TO, index)
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        progress = page.evaluate(JS_PROGRESS, index)
        if progress["errors"]:
            ansi = re.compile(r"\x1b\[[0-9;]*m")
            pytest.fail("a cell raised in the browser:\n" + ansi.sub("", "\n".join(progress["errors"])), pytrace=False)
        if progress["pending"] == 0 and progress["status"] == "idle":
            return
        if time.monotonic() > deadline:
            pytest.fail(f"cells up to {index} did not finish in {RUN_TIMEOUT} s: {progress}")
        time.sleep(0.5)


def readout_text(cell) -> str:
    return "\n".join(cell.locator(".widget-html-content").all_inner_texts())


def wait_for_numbers(cell, numbers: dict[str, int], what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        text = readout_text(cell)
        missing = {k: f"{n:,}" for k, n in numbers.items() if not shows(text, n)}
        if not missing:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: the readout does not show {missing}; it shows:\n{text}")
        time.sleep(0.2)


def int_numbers(expected: dict) -> dict[str, int]:
    return {k: v for k, v in expected.items() if isinstance(v, int) and not isinstance(v, bool)}


def drive_widget(page, cell_index: int, box, shot: str) -> list[str]:
    """Move up to two sliders of the widget in cell ``cell_index``; check the readout each time."""
    import ipywidgets as W

    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(cell_index)
    cell.scroll_into_view_if_needed()
    sliders = cell.locator(".widget-hslider")
    sliders.first.wait_for(state="visible", timeout=60_000)
    by_label = {c.description: name for name, c in box.controls.items() if isinstance(c, W.IntSlider)}
    values = {name: c.value for name, c in box.controls.items()}
    dom = {}  # control name -> slider locator
    for i in range(sliders.count()):
        slider = sliders.nth(i)
        name = by_label.get(slider.locator(".widget-label").inner_text().strip())
        if name:
            dom[name] = slider
            values[name] = int(float(slider.locator(".noUi-handle").get_attribute("aria-valuenow")))
    assert dom, f"no slider in the cell matches the widget's IntSliders {sorted(by_label)}"
    wait_for_numbers(cell, int_numbers(box.expected(**values)), "as displayed")

    moves = []
    for name, slider in list(dom.items())[:2]:
        control = box.controls[name]
        steps = 2
        key = "ArrowRight" if values[name] + steps * control.step <= control.max else "ArrowLeft"
        new = values[name] + (steps if key == "ArrowRight" else -steps) * control.step
        old, before = values[name], int_numbers(box.expected(**values))
        handle = slider.locator(".noUi-handle")
        handle.focus()
        for _ in range(steps):
            handle.press(key)
        values[name] = new
        after = int_numbers(box.expected(**values))
        assert after != before, f"moving {name} to {new} should change the numbers"
        wait_for_numbers(cell, after, f"after {steps} x {key} on {name!r}")
        shown = int(float(handle.get_attribute("aria-valuenow")))
        assert shown == new, f"{name}: slider shows {shown}, expected {new}"
        moves.append(f"{name}: {old} -> {new}")
    wait_for_one_chart(cell)
    cell.screenshot(path=str(ARTIFACTS_DIR / f"browser-{shot}.png"))
    return moves


def wait_for_one_chart(cell) -> None:
    """Once the updates settle, each Output widget shows at most one figure (old charts are cleared)."""
    deadline = time.monotonic() + 20
    while True:
        counts = [out.locator("img").count() for out in cell.locator(".widget-output").all()]
        if all(n <= 1 for n in counts):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"charts pile up instead of being replaced: images per Output widget {counts}")
        time.sleep(0.3)


def open_and_drive(lab, notebook: nbformat.NotebookNode, name: str, cell_index: int, box, shot: str) -> None:
    from playwright.sync_api import sync_playwright

    base, token, root = lab
    nbformat.write(notebook, root / "notebooks" / name)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            start = time.perf_counter()
            # A workspace of its own, reset: only this notebook open, nothing restored from a previous test.
            page.goto(f"{base}/lab/workspaces/{shot}/tree/notebooks/{name}?reset&token={token}", timeout=90_000)
            run_up_to(page, cell_index)
            ran = time.perf_counter()
            moves = drive_widget(page, cell_index, box, shot)
            print(f"{name}: opened and ran in {ran - start:.1f} s, widget checked in {time.perf_counter() - ran:.1f} s")
            print("moved " + "; ".join(moves))
        finally:
            page.screenshot(path=str(ARTIFACTS_DIR / f"browser-{shot}-page.png"))
            page.evaluate(JS_SHUTDOWN_KERNEL)  # frees its memory for the next test
            browser.close()


def test_stub_widget_in_jupyterlab(lab):
    """The machinery: a one-cell notebook with an IntSlider and a 9 c^2 readout."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(STUB_SOURCE + "\nstub_widget()")]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    namespace: dict = {}
    exec(STUB_SOURCE, namespace)
    open_and_drive(lab, nb, "stub_widget.ipynb", 0, namespace["stub_widget"](), "stub")


@pytest.mark.skipif(not NOTEBOOK_04.exists(), reason=f"{NOTEBOOK_04.name} is not written yet")
def test_notebook_04_has_the_block_comparison_widget():
    sources = [c.source for c in nbformat.read(NOTEBOOK_04, as_version=4).cells if c.cell_type == "code"]
    assert any(MARKER.search(s) and MARKER.search(s).group(1) == "block_comparison" for s in sources), (
        f"{NOTEBOOK_04.name} should have a code cell marked `# widget: block_comparison`"
    )


@pytest.mark.parametrize("path, cell_index, widget", widget_cells())
def test_widget_cell_in_jupyterlab(lab, path: Path, cell_index: int, widget: str):
    """A marked widget cell of a course notebook, run in JupyterLab and driven with the keyboard."""
    import matplotlib

    matplotlib.use("Agg")  # the in-process twin of the widget draws its chart here, not on a screen
    from course_utils.widgets import WIDGETS

    assert widget in WIDGETS, f"`# widget: {widget}` in {path.name}, but WIDGETS has {sorted(WIDGETS)}"
    open_and_drive(lab, nbformat.read(path, as_version=4), path.name, cell_index, WIDGETS[widget](), path.stem)
