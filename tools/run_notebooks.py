"""Run the course's notebooks top to bottom, outside Jupyter, and time them.

For teachers: check that the whole course runs on a machine (a GPU box
before a class, say), and see how long each notebook takes.

    python tools/run_notebooks.py                         # every notebook at the smoke size
    python tools/run_notebooks.py --size cpu 06 07        # the cpu size, notebooks whose names start with 06 and 07
    python tools/run_notebooks.py --size cpu --follow 06  # ... and echo what the cells print as it comes
    python tools/run_notebooks.py --solutions 04          # with every exercise's solution in the learner's cell
    python tools/run_notebooks.py --size cpu --write      # run the course; outputs and times into notebooks/, README

Each finished cell prints a line (elapsed time, the end of its printed output).
With ``--follow`` every line a cell prints is echoed as soon as it is printed,
so a long training cell shows its epochs one by one. The executed copies,
outputs and figures included, are written to ``data/executed/`` (not tracked
by git); the notebooks in ``notebooks/`` are left untouched, unless ``--write``
puts each notebook that ran through back there with its outputs and a
fingerprint of the code that made them (``tools/sync_notebooks.py`` checks it). Training runs
checkpoint as usual, so a run that is stopped continues where it stopped
when started again. Exits 1 if any notebook failed.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import textwrap
import time
from pathlib import Path

import nbclient
import nbformat
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync_notebooks  # noqa: E402  (a script beside this one)

sys.path.insert(0, str(ROOT))
from course_utils import env as cu_env  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
SIZES = ("smoke", "cpu", "gpu")
WIDGET = "application/vnd.jupyter.widget-view+json"


def select(prefixes: list[str]) -> list[Path]:
    """The notebooks whose file names start with one of ``prefixes`` (all of them if none is given)."""
    every = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not prefixes:
        return every
    chosen = [p for p in every if any(p.name.startswith(prefix) for prefix in prefixes)]
    unknown = [prefix for prefix in prefixes if not any(p.name.startswith(prefix) for p in every)]
    if unknown:
        names = ", ".join(p.stem for p in every)
        raise SystemExit(f"No notebook starts with {', '.join(unknown)}. The notebooks: {names}.")
    return chosen


def solution_body(source: str) -> tuple[str, str] | None:
    """``(name, code)`` of a solution cell, ``if cu.checks.stands_in(name): <code>``; ``None`` for other cells."""
    if "cu.checks.stands_in(" not in source:
        return None
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and "cu.checks.stands_in(" in ast.get_source_segment(source, node.test):
            lines = source.splitlines()[node.body[0].lineno - 1 : node.body[-1].end_lineno]
            return ast.get_source_segment(source, node.test.args[0]), textwrap.dedent("\n".join(lines))
    return None


def with_solutions(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``notebook`` with each exercise's solution pasted into the learner's cell, as a learner who solved it has:
    the check then passes, and the solution no longer stands in."""
    cells = notebook.cells
    for i, cell in enumerate(cells):
        found = solution_body(cell.source) if cell.cell_type == "code" else None
        if found is None:
            continue
        name, code = found
        stubs = [c for c in cells[:i] if c.cell_type == "code" and "# YOUR CODE HERE" in c.source]
        defines = [c for c in stubs if any(getattr(n, "name", "") == name for n in ast.parse(c.source).body)]
        if not defines:
            raise ValueError(f"no exercise cell with '# YOUR CODE HERE' defines {name} before its solution")
        defines[-1].source = code
    return notebook


class FollowingClient(nbclient.NotebookClient):
    """A NotebookClient that also echoes every line the cells print, as it arrives."""

    def output(self, outs, msg, display_id, cell_index):
        if msg["msg_type"] == "stream":
            for line in msg["content"]["text"].splitlines():
                line = line.rsplit("\r", 1)[-1].rstrip()  # a text progress bar: only its latest state
                if line:
                    print(f"          | {line[:160]}", flush=True)
        return super().output(outs, msg, display_id, cell_index)


def run(
    path: Path,
    size: str,
    out_dir: Path,
    cell_timeout: int | None,
    follow: bool = False,
    solutions: bool = False,
    write: bool = False,
) -> tuple[bool, float]:
    """Execute one notebook at ``size`` in its own kernel; return ``(passed, seconds)``. ``follow``: echo output;
    ``solutions``: paste the exercises' solutions into the learner's cells first; ``write``: if it passed, write
    it back to ``path`` with its outputs (the exercises as learners get them: ``solutions`` must be off)."""
    if write and solutions:
        raise ValueError("--write ships the notebooks as learners get them: leave out --solutions.")
    notebook = sync_notebooks.normalized(
        nbformat.read(path, as_version=4), path.name, sync_notebooks.repository_url(), strip=True
    )
    made_from = sync_notebooks.fingerprint(notebook)
    if solutions:
        notebook = with_solutions(notebook)
    env = dict(os.environ, MPLBACKEND="module://matplotlib_inline.backend_inline")  # figures inline, never a GUI
    env.pop("COURSE_SMOKE", None)
    env["COURSE_SIZE"] = size
    if write:
        env["TQDM_DISABLE"] = "1"  # progress bars are for watching a run; the epoch lines stay in the outputs
    start = time.perf_counter()

    def on_cell_executed(cell, cell_index: int, **_) -> None:
        printed = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        last = printed.strip().splitlines()[-1][-100:] if printed.strip() else ""
        print(f"  [{time.perf_counter() - start:7.0f} s] cell {cell_index:3d}  {last}", flush=True)

    client = (FollowingClient if follow else nbclient.NotebookClient)(
        notebook,
        timeout=cell_timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        on_cell_executed=on_cell_executed,
    )
    passed = True
    try:
        client.execute(env=env)
    except Exception as error:  # a failing cell: report it, keep the executed copy, go on with the next notebook
        passed = False
        print(f"  FAILED: {str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__}")
    seconds = time.perf_counter() - start
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out_dir / path.name)
    if write and passed:
        path.write_text(nbformat.writes(shipped(notebook, path.name, made_from, size, seconds)) + "\n", "utf-8")
    return passed, seconds


def shipped(
    notebook: nbformat.NotebookNode, name: str, made_from: str, size: str, seconds: float
) -> nbformat.NotebookNode:
    """An executed notebook as it is committed: synced (no run timings or widget state), printed paths relative,
    widgets replaced by a line that says to run the cell, and what made the outputs in its metadata."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            _relative_paths(output)
            if WIDGET in output.get("data", {}):  # its state is not kept: a reader sees a sentence, not "VBox(...)"
                output["data"] = {
                    "text/plain": "An interactive widget: run this cell in Jupyter or on Colab to use it."
                }
    notebook = sync_notebooks.normalized(notebook, name, sync_notebooks.repository_url())
    notebook.metadata["course"] = {
        **{"size": size, "fingerprint": made_from, "minutes": round(seconds / 60, 1)},
        **{"device": _machine(), "torch": torch.__version__.split("+")[0]},
    }
    return notebook


def _machine() -> str:
    """This machine's CPU, as a reader names it: "2-core Intel(R) Xeon(R) Processor"."""
    described = cu_env.describe_device(torch.device("cpu"))  # "CPU <model> (<n> cores, <t> torch threads)"
    model = described.removeprefix("CPU ").rsplit(" (", 1)[0]
    return f"{os.cpu_count()}-core {model}"


def _relative_paths(output: nbformat.NotebookNode) -> None:
    """Paths printed in an output, as a reader of the repository sees them: relative to it, or $COURSE_DATA_DIR."""
    places = [(str(ROOT) + os.sep, "")]
    if os.environ.get("COURSE_DATA_DIR"):
        places.insert(0, (str(Path(os.environ["COURSE_DATA_DIR"]).resolve()), "$COURSE_DATA_DIR"))
    texts = [("text", output)] if "text" in output else []
    texts += [(key, output["data"]) for key in ("text/plain",) if key in output.get("data", {})]
    for key, holder in texts:
        text = holder[key] if isinstance(holder[key], str) else "".join(holder[key])
        for where, shown in places:
            text = text.replace(where, shown)
        holder[key] = text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="name prefixes, e.g. 06 or 07_plain (default: all)")
    parser.add_argument("--size", choices=SIZES, default="smoke", help="smoke (default), cpu or gpu")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "executed", help="where executed copies go")
    parser.add_argument("--cell-timeout", type=int, default=None, help="seconds a cell may take (default: no limit)")
    parser.add_argument("--follow", action="store_true", help="echo every line the cells print, as it is printed")
    parser.add_argument("--solutions", action="store_true", help="paste each solution into its exercise cell")
    parser.add_argument("--write", action="store_true", help="write each notebook that ran back, with its outputs")
    args = parser.parse_args(argv)

    results = []
    for path in select(args.notebooks):
        print(f"{path.name} (size {args.size})", flush=True)
        results.append(
            (path.name, *run(path, args.size, args.out, args.cell_timeout, args.follow, args.solutions, args.write))
        )

    print(f"\n{'notebook':40s} {'size':6s} {'result':7s} {'time':>9s}")
    for name, passed, seconds in results:
        took = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
        print(f"{name:40s} {args.size:6s} {'passed' if passed else 'FAILED':7s} {took:>9s}")
    print(f"executed copies: {args.out}")
    if args.write:  # the measured times into each intro and the README, beside the gpu estimates
        import estimate_gpu  # a script beside this one; counting FLOPs takes a few seconds

        for name in estimate_gpu.updated(write=True):
            print(f"times updated: {name}")
    return 0 if all(passed for _, passed, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
