"""Rewrite every notebook's Colab badge, setup cell, last line and metadata from one template.

The repository address lives in one place, ``pyproject.toml``'s
``[project.urls] Repository``. This script puts, at the top of each notebook in
``notebooks/``:

1. a markdown cell that starts with the "Open in Colab" badge for that notebook
   (the rest of that cell, the title and intro, is kept), and
2. the setup code cell (on Colab: pip-install ``course_utils`` from the
   repository, non-editable, upgrading nothing already there; locally: import
   it from the checkout);

and, at the end, ``cu.env.finish()``, which prints how long the notebook took.
It also collapses exercise solutions (JupyterLab and Colab), drops widget state,
and sets the notebook metadata Colab needs (a Python 3 kernel; a T4 GPU for the
notebooks that train). Outputs are kept: ``tools/run_notebooks.py --write`` makes
them, with a fingerprint of what made them (:func:`fingerprint`), and
:func:`stale` says when they no longer match the code.

    python tools/sync_notebooks.py           # rewrite in place
    python tools/sync_notebooks.py --check   # exit 1 and list what would change
    python tools/sync_notebooks.py --strip   # ... and remove every output
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import nbformat

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BRANCH = "main"
BADGE_RE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\s*\n*")
SOLUTION_TITLE = "# @title Solution (double-click to show the code)"
SETUP_MARKER = "# Setup (Colab and local alike)"
FINISH = "cu.env.finish()  # how long this notebook took, and where"

SETUP_TEMPLATE = """{marker}: on Colab, install course_utils from the course repository
# without upgrading torch, numpy, matplotlib or ipywidgets; locally, use the checkout.
import sys
from pathlib import Path

if "google.colab" in sys.modules:
    %pip install -q "course-utils @ git+{repo}.git@{branch}"
elif not (Path.cwd() / "course_utils").is_dir() and (Path.cwd().parent / "course_utils").is_dir():
    sys.path.insert(0, str(Path.cwd().parent))  # running from notebooks/ without `pip install -e .`

import course_utils as cu

env = cu.env.setup()"""


def repository_url() -> str:
    """The repository address from pyproject.toml, without a trailing slash or .git."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        url = tomllib.load(f)["project"]["urls"]["Repository"]
    return url.rstrip("/").removesuffix(".git")


def badge(repo: str, name: str) -> str:
    """The markdown of the Colab badge for notebook ``name``."""
    path = repo.removeprefix("https://github.com/")
    link = f"https://colab.research.google.com/github/{path}/blob/{BRANCH}/notebooks/{name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({link})\n\n"


def setup_source(repo: str) -> str:
    """The source of the setup cell."""
    return SETUP_TEMPLATE.format(marker=SETUP_MARKER, repo=repo, branch=BRANCH)


def hide_solution(cell: nbformat.NotebookNode) -> None:
    """Collapse an exercise's solution cell in JupyterLab (``source_hidden``) and on Colab, which ignores that
    and hides the code of a form cell instead: a ``# @title`` first line and ``cellView: form``."""
    cell.metadata["jupyter"] = {**cell.metadata.get("jupyter", {}), "source_hidden": True}
    cell.metadata["cellView"] = "form"
    lines = cell.source.splitlines()
    if not lines or not lines[0].startswith("# @title"):
        cell.source = "\n".join([SOLUTION_TITLE, *lines])


def trains(source: str) -> bool:
    """Whether a code cell trains a network: with ``fit`` or with the several-GPU script."""
    return "cu.train.fit(" in source or "train_ddp.py" in source


def fingerprint(nb: nbformat.NotebookNode) -> str:
    """What a notebook's outputs were made from: the source of every code cell, and every file of course_utils."""
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode() + b"\0")
    for path in sorted((ROOT / "course_utils").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def stale(nb: nbformat.NotebookNode) -> list[str]:
    """Why a notebook's outputs cannot be trusted (an empty list: no outputs, or fresh ones)."""
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    if not any(cell.outputs for cell in code):
        return ["execution metadata without outputs"] if "course" in nb.metadata else []
    reasons = []
    if nb.metadata.get("course", {}).get("fingerprint") != fingerprint(nb):
        reasons.append("a code cell or course_utils changed since the outputs were made")
    errors = [i for i, cell in enumerate(code) for out in cell.outputs if out.output_type == "error"]
    reasons += [f"code cell {i} shows an error" for i in errors[:3]]
    if [cell.execution_count for cell in code] != list(range(1, len(code) + 1)):
        reasons.append("the execution counts are not 1, 2, 3, ... in order (cells were run out of order)")
    return reasons


def normalized(nb: nbformat.NotebookNode, name: str, repo: str, strip: bool = False) -> nbformat.NotebookNode:
    """``nb`` with badge, setup cell, last line and metadata, as it should be committed (``strip``: no outputs)."""
    cells = nb.cells
    if not cells or cells[0].cell_type != "markdown":
        cells.insert(0, nbformat.v4.new_markdown_cell(f"# {name}"))
    cells[0].source = badge(repo, name) + BADGE_RE.sub("", cells[0].source)
    if len(cells) > 1 and cells[1].cell_type == "code" and cells[1].source.startswith(SETUP_MARKER):
        cells[1].source = setup_source(repo)
    else:
        cells.insert(1, nbformat.v4.new_code_cell(setup_source(repo)))
    last = cells[-1]
    if last.cell_type == "code" and last.source.startswith("cu.checks.summary()") and FINISH not in last.source:
        last.source = f"{last.source.rstrip()}\n{FINISH}"  # the exercises' summary, then the time
    elif last.cell_type != "code" or FINISH not in last.source:
        cells.append(nbformat.v4.new_code_cell(FINISH))
    for cell in cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in ("tags", "jupyter", "cellView")}
        if "solution" in cell.metadata.get("tags", []):
            hide_solution(cell)
        if cell.cell_type == "code" and strip:
            cell.outputs = []
            cell.execution_count = None
    executed = {} if strip or "course" not in nb.metadata else {"course": nb.metadata["course"]}
    nb.metadata = {
        **executed,
        "colab": {"provenance": [], "toc_visible": True},
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    if any(trains(cell.source) for cell in cells if cell.cell_type == "code"):
        # Only a notebook that trains asks Colab for a GPU; the others run on any runtime.
        nb.metadata["accelerator"] = "GPU"
        nb.metadata["colab"]["gpuType"] = "T4"
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is out of date")
    parser.add_argument("--strip", action="store_true", help="remove every output and execution count")
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    args = parser.parse_args(argv)
    repo = repository_url()
    changed = []
    for path in args.paths or sorted(NOTEBOOKS.glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        nb = normalized(nbformat.reads(text, as_version=4), path.name, repo, strip=args.strip)
        new_text = nbformat.writes(nb) + "\n"
        if new_text != text:
            changed.append(path)
            if not args.check:
                path.write_text(new_text, encoding="utf-8")
    verb = "out of date" if args.check else "rewritten"
    for path in changed:
        shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
        print(f"{verb}: {shown}")
    if args.check and changed:
        print("Run `python tools/sync_notebooks.py` to fix.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
