"""Rehearse the notebooks' full mode on a CPU, in minutes, before a GPU spends its minutes on them.

Smoke mode (what CI runs) never executes what a notebook does only in full mode:
its ``if not env.smoke:`` branches, the asserts on trained results among them,
and the full sizes ``env.pick(full, smoke)`` returns. A rehearsal runs a
notebook without ``COURSE_SMOKE`` with only the training cut short: every
loader gives one batch of at most 32 images per epoch, and ``fit``,
``evaluate`` and ``predict`` take one batch, while every epoch, loop and cell
still runs. A claim about a
trained network cannot hold after that, so an ``AssertionError`` in a cell
that branches on ``env.smoke`` is expected: a *claim*. Any other error is a
bug in the full-mode code path: an *error*.

    python tools/rehearse_full.py 03 06     # notebook prefixes; no names: every notebook that trains

Checkpoints and histories go to a temporary folder, never to ``data/runs``,
so a rehearsal can never pass for a real result. Exits 1 if any notebook had
an error.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbclient
import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_notebooks import NOTEBOOKS, select  # noqa: E402  (tools/ is scripts, not a package)

TRAINING = ["01", "02", "03", "06", "07", "08", "09", "10"]
"""The notebooks that train; the others run the same in both modes, apart from downloads."""

FULL_LENGTH_LOADERS = {"07": "it asserts that its loader has 50,000 // 128 batches, as the paper's schedule needs"}
"""Notebooks whose training loaders keep their full length and batch size (``fit`` alone is cut there)."""

SHORTEN = """\
# Rehearsal (tools/rehearse_full.py): full mode with the training cut short. Not part of the course.
import course_utils.data as _data
import course_utils.train as _train

_FULL_LENGTH = {full_length}


class _SmallBatches(_data.DeviceLoader):
    def __init__(self, images, labels, batch_size, *args, **kwargs):
        super().__init__(images, labels, batch_size if _FULL_LENGTH else min(batch_size, 32), *args, **kwargs)


_data.DeviceLoader = _SmallBatches  # make_loaders builds its loaders with this name too
_make_loaders, _torchvision_loader = _data.make_loaders, _data.torchvision_loader


def _short_loaders(*args, **kwargs):
    kwargs["test_batch_size"] = 32
    if not _FULL_LENGTH:
        kwargs["max_batches"] = 1  # so the loader's length, which schedules are planned with, is 1 too
    return _make_loaders(*args, **kwargs)


def _one_batch(function):
    def cut(*args, **kwargs):
        kwargs["max_batches"] = 1
        return function(*args, **kwargs)

    return cut


_data.make_loaders = _short_loaders
_data.torchvision_loader = lambda data, batch_size=128, *a, **k: _torchvision_loader(data, min(batch_size, 32), *a, **k)
_train.fit, _train.evaluate, _train.predict = map(_one_batch, (_train.fit, _train.evaluate, _train.predict))
"""


@dataclass
class Rehearsal:
    """What went wrong in one rehearsed notebook: ``(cell, message)`` pairs, expected ones and the rest."""

    notebook: str
    seconds: float = 0.0
    claims: list[tuple[int, str]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


def rehearse(path: Path, cache_dir: Path, cell_timeout: int = 1200) -> Rehearsal:
    """Run ``path`` in full mode with the training cut short; sort its errors into claims and errors."""
    notebook = nbformat.read(path, as_version=4)
    shorten = SHORTEN.format(full_length=path.name[:2] in FULL_LENGTH_LOADERS)
    notebook.cells.insert(2, nbformat.v4.new_code_cell(shorten))  # right after the setup cell
    # Checkpoints and histories in cache_dir, the decoded datasets shared with the course's own cache.
    shared = NOTEBOOKS.parent / "data" / "cache"
    shared.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    if not (cache_dir / "cache").exists():
        (cache_dir / "cache").symlink_to(shared, target_is_directory=True)
    env = dict(os.environ, MPLBACKEND="module://matplotlib_inline.backend_inline", COURSE_CACHE_DIR=str(cache_dir))
    env.setdefault("COURSE_DATA_DIR", str(NOTEBOOKS.parent / "data"))  # where it defaults to without the override
    env.pop("COURSE_SMOKE", None)
    client = nbclient.NotebookClient(
        notebook,
        timeout=cell_timeout,
        kernel_name="python3",
        allow_errors=True,  # go on after a failing cell: the point is to see every one
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.perf_counter()
    client.execute(env=env)
    result = Rehearsal(path.name, time.perf_counter() - start)
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            original = index - 1 if index > 2 else index  # the cell's number in the notebook itself
            message = (
                f"{output['ename']}: {output['evalue'].strip().splitlines()[0] if output['evalue'].strip() else ''}"
            )
            is_claim = output["ename"] == "AssertionError" and "env.smoke" in cell.source
            (result.claims if is_claim else result.errors).append((original, message[:200]))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "notebooks", nargs="*", help=f"name prefixes (default: the training ones, {' '.join(TRAINING)})"
    )
    args = parser.parse_args(argv)
    failed = False
    for path in select(args.notebooks or TRAINING):
        with tempfile.TemporaryDirectory(prefix="rehearsal-") as cache:
            print(f"{path.name}: rehearsing full mode ...", flush=True)
            result = rehearse(path, Path(cache))
        print(
            f"  {result.seconds:.0f} s; {len(result.claims)} claim(s) not met (expected), {len(result.errors)} error(s)"
        )
        for cell, message in result.claims:
            print(f"    claim, cell {cell}: {message}")
        for cell, message in result.errors:
            print(f"    ERROR, cell {cell}: {message}")
        failed = failed or bool(result.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
