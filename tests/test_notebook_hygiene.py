"""What is committed is clean and consistent, and the Colab install upgrades nothing.

- notebooks are exactly what ``tools/sync_notebooks.py`` writes (badge, setup
  cell, last line, Colab metadata, no widget state), and lessons hold no test
  scaffolding;
- every notebook carries fresh outputs of a cpu-size run: made by
  ``tools/run_notebooks.py --size cpu --write`` from the code cells and the
  course_utils of this commit, without errors, cells run in order;
- each notebook's badge and setup cell point at pyproject's Repository URL;
- the setup cell's pip line neither upgrades nor installs editable, and the
  package's dependencies are bare lower bounds, so pip keeps Colab's versions;
- ruff lints and format-checks the package, tools, benchmarks, tests and notebooks.
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import NOTEBOOKS_DIR, ROOT, load_tool
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
REPOSITORY = PYPROJECT["project"]["urls"]["Repository"].rstrip("/").removesuffix(".git")
LINTED = [d for d in ("course_utils", "scripts", "tools", "benchmarks", "tests", "notebooks") if (ROOT / d).is_dir()]


sync = load_tool("sync_notebooks")


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


def test_notebooks_are_synced():
    """`tools/sync_notebooks.py --check` would change nothing (it lists the stale ones)."""
    result = run(sys.executable, "tools/sync_notebooks.py", "--check")
    assert result.returncode == 0, (
        f"stale notebooks, run `python tools/sync_notebooks.py`:\n{result.stdout}{result.stderr}"
    )


def test_every_notebook_ends_with_finish_once():
    for path in NOTEBOOKS:
        sources = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert sources[-1].endswith(sync.FINISH) and sum(sync.FINISH in s for s in sources) == 1, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_outputs_are_fresh(path: Path):
    nb = nbformat.read(path, as_version=4)
    rerun = (
        f"Run `python tools/run_notebooks.py --size cpu --write {path.stem[:2]}`, then `tools/estimate_gpu.py --write`."
    )
    assert nb.metadata.get("course", {}).get("size") == "cpu", f"{path.name} has no outputs of a cpu-size run. {rerun}"
    why = sync.stale(nb)
    assert not why, f"{path.name}: {'; '.join(why)}. {rerun}"


def test_stale_outputs_are_caught():
    nb = sync.normalized(nbformat.read(NOTEBOOKS[0], as_version=4), NOTEBOOKS[0].name, REPOSITORY, strip=True)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    for count, cell in enumerate(code, start=1):
        cell.execution_count, cell.outputs = count, [nbformat.v4.new_output("stream", text="ran\n")]
    assert sync.stale(nb) == ["a code cell or course_utils changed since the outputs were made"]  # no fingerprint
    nb.metadata["course"] = {"size": "cpu", "fingerprint": sync.fingerprint(nb)}
    assert sync.stale(nb) == []
    code[1].source += "\n"  # an edited cell
    assert sync.stale(nb) == ["a code cell or course_utils changed since the outputs were made"]
    code[1].source = code[1].source[:-1]
    code[0].execution_count, code[1].execution_count = 2, 1
    code[2].outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="x", traceback=[]))
    assert sync.stale(nb) == [
        "code cell 2 shows an error",
        "the execution counts are not 1, 2, 3, ... in order (cells were run out of order)",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_colab_asks_for_a_gpu_only_where_the_notebook_trains(path: Path):
    nb = nbformat.read(path, as_version=4)
    trains = any(sync.trains(cell.source) for cell in nb.cells if cell.cell_type == "code")
    assert (nb.metadata.get("accelerator") == "GPU") == trains
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), "notebooks are named NN_topic.ipynb"


# What a lesson must not contain: test scaffolding and size branches (sizes differ only through env.pick).
SCAFFOLDING = {
    r"\benv\.smoke\b|\benv\.size\s*(==|!=|in\b)|\bif\b.*\benv\.size\b": "a branch on the size: use env.pick(...)",
    r"\bmax_batches\b": "max_batches: size runs by their data and epochs, chosen with env.pick",
    r"_expected\(": "a widget self-test: widgets are tested in tests/test_widgets.py",
    r"^\s*(import course_utils\.|from course_utils(\.\w+)* import)": "an import of course_utils.x: use cu.x",
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_lessons_hold_no_scaffolding(path: Path):
    cells = nbformat.read(path, as_version=4).cells
    found = [
        f"cell {i}: {why}: {line.strip()}"
        for i, cell in enumerate(cells[2:], start=2)
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
        for pattern, why in SCAFFOLDING.items()
        if re.search(pattern, line)
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_badge_and_setup_cell_match_pyproject(path: Path):
    """Cell 1 opens with the Colab badge of this very notebook; cell 2 is the setup cell for REPOSITORY."""
    cells = nbformat.read(path, as_version=4).cells
    assert len(cells) >= 2 and cells[0].cell_type == "markdown" and cells[1].cell_type == "code"
    github_path = REPOSITORY.removeprefix("https://github.com/")
    link = f"https://colab.research.google.com/github/{github_path}/blob/{sync.BRANCH}/notebooks/{path.name}"
    assert cells[0].source.startswith(
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({link})"
    )
    assert cells[1].source == sync.setup_source(REPOSITORY)
    assert f"git+{REPOSITORY}.git@{sync.BRANCH}" in cells[1].source


def pip_lines(source: str) -> list[list[str]]:
    """The pip commands in a cell, as argument lists."""
    commands = []
    for line in source.splitlines():
        line = line.strip()
        match = re.match(r"^[%!]\s*pip\s+install\s+(.*)$", line) or re.match(r"^[%!].*-m\s+pip\s+install\s+(.*)$", line)
        if match:
            commands.append(shlex.split(match.group(1)))
    return commands


def test_setup_cell_pip_line_upgrades_nothing():
    """On Colab the setup cell installs course_utils non-editable and never upgrades what is there."""
    source = sync.setup_source(REPOSITORY)
    commands = pip_lines(source)
    assert len(commands) == 1, f"expected one pip install line in the setup cell:\n{source}"
    args = commands[0]
    forbidden = {"-U", "--upgrade", "-e", "--editable", "--force-reinstall", "-I", "--ignore-installed"}
    assert not forbidden & set(args), f"setup cell pip line uses {sorted(forbidden & set(args))}: {args}"
    assert not any(a.startswith("--upgrade-strategy") for a in args), args
    assert not any(re.match(r"^-[a-zA-Z]*[Ue][a-zA-Z]*$", a) for a in args), f"combined short flag with -U/-e: {args}"
    targets = [a for a in args if not a.startswith("-")]
    assert targets == [f"course-utils @ git+{REPOSITORY}.git@{sync.BRANCH}"], targets


def test_pip_line_parser_catches_upgrades():
    assert pip_lines('    %pip install -q -U "x @ git+https://e/x.git"') == [["-q", "-U", "x @ git+https://e/x.git"]]
    assert pip_lines("!python -m pip install -e .") == [["-e", "."]]


def test_dependencies_are_lower_bounds_only():
    """pip's default only-if-needed strategy then leaves Colab's torch, numpy, ... alone."""
    for dep in PYPROJECT["project"]["dependencies"]:
        req = Requirement(dep)
        ops = {spec.operator for spec in req.specifier}
        assert ops <= {">="}, f"{dep!r}: only '>=' lower bounds (or none) are allowed in pyproject dependencies"
        assert req.url is None, f"{dep!r}: no direct URLs in the dependencies"


def test_setup_notebook_checks_the_package_lower_bounds():
    """00_setup's version check states the same oldest versions as pyproject (python and the dependencies)."""
    cells = nbformat.read(NOTEBOOKS_DIR / "00_setup.ipynb", as_version=4).cells
    assignments = [
        node.value
        for cell in cells
        if cell.cell_type == "code" and "MINIMUM = " in cell.source
        for node in ast.walk(ast.parse(cell.source))
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MINIMUM" for t in node.targets)
    ]
    assert len(assignments) == 1, "00_setup no longer defines MINIMUM (a dict of oldest versions) in one place"
    stated = ast.literal_eval(assignments[0])
    wanted = {"python": PYPROJECT["project"]["requires-python"]}
    for dep in PYPROJECT["project"]["dependencies"]:
        req = Requirement(dep)
        if req.name in stated:
            wanted[req.name] = str(req.specifier)
    for name, spec in wanted.items():
        version = tuple(int(p) for p in spec.removeprefix(">=").split("."))
        assert stated.get(name) == version[:2], f"00_setup MINIMUM[{name!r}] = {stated.get(name)}, pyproject: {spec}"


def test_ruff_check():
    result = run(sys.executable, "-m", "ruff", "check", "--no-cache", *LINTED)
    assert result.returncode == 0, f"ruff check {' '.join(LINTED)}:\n{result.stdout}{result.stderr}"


def test_ruff_format():
    result = run(sys.executable, "-m", "ruff", "format", "--check", "--no-cache", *LINTED)
    assert result.returncode == 0, (
        f"ruff format --check {' '.join(LINTED)} (run `ruff format`):\n{result.stdout}{result.stderr}"
    )


def test_every_notebook_that_trains_has_a_gpu_estimate():
    estimate_gpu = load_tool("estimate_gpu")
    training = {
        path.stem[:2]
        for path in NOTEBOOKS
        if any(sync.trains(c.source) for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    }
    assert set(estimate_gpu.RUNS) == training
    stale = estimate_gpu.updated(write=False)  # each intro's time line and the README's table, from the outputs
    assert not stale, f"Times out of date in {stale}: run `python tools/estimate_gpu.py --write`."
    run = estimate_gpu.Run(lambda: estimate_gpu.cu.models.cifar_resnet(8), (3, 32, 32), 100, 10, 2, 50, count=3)
    flops, seconds = estimate_gpu.estimate(run)
    forward = estimate_gpu.cu.inspect.count_flops(run.build(), (1, 3, 32, 32))
    assert flops == 3 * 2 * forward * (3 * 100 + 10)  # 3 runs x 2 epochs x (3 passes per training image + test)
    floor = 3 * 2 * 2 * estimate_gpu.step_operations(run.build, run.shape) * estimate_gpu.LAUNCH_SECONDS
    assert seconds["H100"] == pytest.approx(max(floor, flops / (989e12 * estimate_gpu.GPUS["H100"][1])))
