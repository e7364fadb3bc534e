"""Every notebook in notebooks/ runs top to bottom, at the smoke size, on the CPU, offline: as learners get it
(the exercises' stubs, with the solutions standing in), and again with every solution pasted into its exercise.

One test per notebook and way (id = file name), discovered when the tests are collected.
The kernel starts in notebooks/, as it does for a learner in JupyterLab. A cell
that raises fails the test with that cell's source and traceback; the executed
notebook is written to test-artifacts/executed/ either way.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from conftest import ARTIFACTS_DIR, NOTEBOOKS_DIR, ROOT, load_tool
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
WITH_EXERCISES = [p for p in NOTEBOOKS if "cu.checks.stands_in(" in p.read_text(encoding="utf-8")]
CELL_TIMEOUT = 600  # seconds per cell; smoke-size cells take a few seconds
DATASET_CACHE = ARTIFACTS_DIR / "dataset-cache"  # decoded datasets, shared: decoding CIFAR-10 takes ~20 s


def course_dirs(tmp_path: Path) -> dict[str, str]:
    """A fresh course folder for one run (no checkpoint of an earlier run to resume), sharing the dataset cache."""
    DATASET_CACHE.mkdir(parents=True, exist_ok=True)
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "cache").symlink_to(DATASET_CACHE.resolve(), target_is_directory=True)
    return {"COURSE_CACHE_DIR": str(tmp_path / "course")}


def kernel_env(**overrides: str) -> dict[str, str]:
    """The kernel's environment: the smoke size, CPU, inline plots, no GUI."""
    env = dict(os.environ)
    env.pop("COURSE_SIZE", None)
    env.update(
        COURSE_SMOKE="1",
        COURSE_DEVICE="cpu",
        MPLBACKEND="module://matplotlib_inline.backend_inline",  # what a Jupyter kernel uses; never a GUI
        PYDEVD_DISABLE_FILE_VALIDATION="1",  # silences a debugger warning on stderr
        TQDM_MININTERVAL="5",
    )
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:  # share the cores between the pytest-xdist workers' kernels
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    env.update(overrides)
    return env


def execute(
    path: Path, env: dict[str, str], timeout: int = CELL_TIMEOUT, tag: str = "", solved: bool = False
) -> nbformat.NotebookNode:
    """Run ``path`` top to bottom with cwd = its folder; fail with the cell's source and traceback.
    ``solved``: with each exercise's solution pasted into the learner's cell."""
    nb = nbformat.read(path, as_version=4)
    if solved:
        nb = load_tool("run_notebooks").with_solutions(nb)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    out = ARTIFACTS_DIR / "executed" / f"{path.stem}{tag}{path.suffix}"
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        client.execute(env=env)
    except CellExecutionError as err:
        # The message already holds the failing cell's source and the traceback.
        pytest.fail(f"{path.name} raised (executed copy: {out.relative_to(ROOT)}):\n{err}", pytrace=False)
    finally:
        nbformat.write(nb, out)
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    return nb


def output_text(nb: nbformat.NotebookNode) -> str:
    """Everything the code cells printed or displayed as text."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in ("display_data", "execute_result"):
                parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path):
    printed = output_text(execute(path, kernel_env(**course_dirs(tmp_path))))
    if path in WITH_EXERCISES:  # every stub is told it is open, and the summary lists it
        assert "stands in for it" in printed and "still to do" in printed, printed[-2000:]


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("path", WITH_EXERCISES, ids=[p.name for p in WITH_EXERCISES])
def test_notebook_runs_with_the_solutions_pasted_in(path: Path, tmp_path: Path):
    printed = output_text(execute(path, kernel_env(**course_dirs(tmp_path)), tag="-solved", solved=True))
    assert "stands in for it" not in printed and "✗" not in printed.split("Your exercises in this notebook:")[-1]
    assert re.search(r"All \d+ solved\.", printed), printed[-2000:]


@pytest.mark.slow
@pytest.mark.notebook
def test_run_notebooks_tool(tmp_path: Path, capsys, monkeypatch):
    # tools/run_notebooks.py, the teachers' way to run (and time) the course outside Jupyter.
    run_notebooks = load_tool("run_notebooks")
    monkeypatch.setenv("COURSE_CACHE_DIR", course_dirs(tmp_path)["COURSE_CACHE_DIR"])
    assert run_notebooks.main(["04", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "04_basic_and_bottleneck.ipynb" in out and "smoke" in out and "passed" in out
    executed = nbformat.read(tmp_path / "04_basic_and_bottleneck.ipynb", as_version=4)
    assert all(c.get("outputs") is not None for c in executed.cells if c.cell_type == "code")
    assert any(c.outputs for c in executed.cells if c.cell_type == "code")

    broken = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise RuntimeError('broken cell')")])
    nbformat.write(broken, tmp_path / "99_broken.ipynb")
    passed, _ = run_notebooks.run(tmp_path / "99_broken.ipynb", "smoke", out_dir=tmp_path / "out", cell_timeout=60)
    assert not passed and "broken cell" in capsys.readouterr().out
    assert (tmp_path / "out" / "99_broken.ipynb").is_file()  # the executed copy is kept, for reading the error

    chatty = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('epoch 1'); print('epoch 2')")])
    nbformat.write(chatty, tmp_path / "98_chatty.ipynb")
    assert run_notebooks.run(tmp_path / "98_chatty.ipynb", "smoke", tmp_path / "out", 60, follow=True)[0]
    echoed = [line for line in capsys.readouterr().out.splitlines() if "|" in line]
    # Each printed line, as it came; the setup cell and cu.env.finish() are added as in every notebook.
    assert [line.split("| ", 1)[1] for line in echoed][1:-1] == ["epoch 1", "epoch 2"]

    with pytest.raises(SystemExit, match="No notebook starts with 99"):
        run_notebooks.select(["99"])

    # --write: the outputs go into the notebook, with the fingerprint of the code that made them.
    shipped = tmp_path / "97_shipped.ipynb"
    cells = [f"print({str(ROOT)!r} + '/data/x')", "import ipywidgets\ndisplay(ipywidgets.IntSlider())"]
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), shipped)
    assert run_notebooks.run(shipped, "smoke", tmp_path / "out", 60, write=True)[0]
    written, sync = nbformat.read(shipped, as_version=4), run_notebooks.sync_notebooks
    assert written.metadata["course"]["size"] == "smoke" and sync.stale(written) == []
    resynced = sync.normalized(nbformat.read(shipped, as_version=4), shipped.name, sync.repository_url())
    assert nbformat.writes(resynced) == nbformat.writes(written)  # committed as written: sync --check passes
    widget = [o for c in written.cells if c.cell_type == "code" for o in c.outputs if "widget" in str(o.get("data"))]
    assert widget[0].data == {"text/plain": "An interactive widget: run this cell in Jupyter or on Colab to use it."}
    printed = [o.text for c in written.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"]
    assert printed[0].startswith("Size 'smoke' on CPU") and "data/x\n" in printed and str(ROOT) not in "".join(printed)
    assert printed[-1].startswith("This notebook ran in ")  # the first output says where, the last how long
