"""Measure the course on a lent GPU machine in one prepared, time-boxed call.

A GPU machine lent to a maintainer's session is bare: its Python has PyTorch
but none of Jupyter, it reaches no network (no PyPI, no dataset download) and
it is lent for minutes, not hours. So everything it needs travels with the
working tree, prepared here, and one command does the measuring:

    python tools/device_kit.py prepare          # here, with PyPI: wheels + offline datasets into .device-kit/
    python3 tools/device_kit.py run --budget 540 06 07 03 bench   # there: install, measure, pack into $OUT

``prepare`` downloads, for the GPU machine's Python (3.12 by default), the
wheels that executing a notebook needs (nbclient, ipykernel, ipywidgets and
their dependencies, less those the machine's image already has), copies the
offline datasets beside them and prints the size and the call to make.

``run`` installs those wheels into ``/tmp/site``, points ``COURSE_DATA_DIR``
at the carried datasets and works through its items in the order given: a
notebook prefix runs that notebook in full mode (``tools/run_notebooks.py
--full``), ``bench`` runs ``benchmarks/train_cifar.py``. An item starts only
while the budget leaves it at least ``--min-start`` seconds, and is stopped
when the budget runs out, so the call ends inside its limit. After every item
the results are packed into ``$OUT``: ``results.tar.gz`` (a summary table,
the log, the histories under ``data/runs`` in ``runs/`` and those inside its
checkpoints in ``from-checkpoints/``) and ``executed.tar.gz`` (the executed
notebooks, outputs and figures included). Unpack them here; ``runs/fig6`` is
what ``tools/ship_results.py --runs-dir`` takes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / ".device-kit"  # git-ignored; carried to the GPU machine with `carry: [".device-kit"]`
SITE = Path("/tmp/site")  # where `run` installs the carried wheels, outside the working tree
WORK = Path("/tmp/device-kit-work")  # the log and executed notebooks, before they are packed into $OUT

RUNNER_PACKAGES = ["nbclient", "nbformat", "ipykernel", "ipywidgets>=7.7,<9"]
"""What executing the notebooks needs beyond PyTorch, torchvision, numpy, matplotlib, pillow and tqdm."""

ON_THE_IMAGE = {"attrs", "packaging", "psutil", "pygments", "python-dateutil", "typing-extensions"}
"""Dependencies the GPU machine's image already has (the device tool's KINDS.md): not carried, so that the
image's own copies, which its torch and matplotlib were installed with, stay the ones imported."""

PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"]
DATASETS = ["cifar10-jpeg.tar.gz", "mnist-test"]  # what the course's loaders find offline (see data/README.md)

PRIORITY = ["06", "07", "03", "bench", "10", "08", "09", "01", "02"]
"""The suggested order: the notebooks whose full-mode claims were never measured on a GPU first (06's
accuracy, 07's figure 6), then the benchmark, then the rest; 00, 04 and 05 train nothing."""

CPU_BESIDE_GPU = "a GPU is available, but the model and the batches are on the CPU"
"""Part of what course_utils.train.fit prints when a run trains on the CPU beside the GPU (not imported: the
kit runs before the wheels that course_utils needs are installed)."""
OUT_FILE_LIMIT = 16 * 2**20
"""The largest file the device tool brings back from $OUT."""


def dist_name(wheel: Path) -> str:
    """The normalized project name of a wheel file (``python_dateutil-2.9-...whl`` -> ``python-dateutil``)."""
    return wheel.name.split("-", 1)[0].lower().replace("_", "-").replace(".", "-")


def prepare(kit: Path, python_version: str, datasets: Path) -> list[str]:
    """Fill ``kit`` with wheels for ``python_version`` and the offline datasets; return the lines to print."""
    missing = [name for name in DATASETS if not (datasets / name).exists()]
    if missing:
        raise SystemExit(
            f"{datasets} lacks {', '.join(missing)}: point --datasets (or COURSE_DATA_DIR) at the folder that holds "
            "the offline copies (../shared/datasets beside the checkout)."
        )
    wheels = kit / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    abi = "cp" + python_version.replace(".", "")
    command = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(wheels)]
    command += ["--python-version", python_version, "--implementation", "cp", "--abi", abi, "--abi", "abi3"]
    command += ["--abi", "none"] + [arg for p in PLATFORMS for arg in ("--platform", p)] + RUNNER_PACKAGES
    subprocess.run(command, check=True)
    (kit / "python-version").write_text(python_version + "\n")
    for wheel in wheels.glob("*.whl"):
        if dist_name(wheel) in ON_THE_IMAGE:
            wheel.unlink()
    for name in DATASETS:
        src, dst = datasets / name, kit / "datasets" / name
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    size = sum(f.stat().st_size for f in kit.rglob("*") if f.is_file()) / 2**20
    return [
        f"{kit}: {len(list(wheels.glob('*.whl')))} wheels for Python {python_version} and {', '.join(DATASETS)}; "
        f"{size:.1f} MiB (the working tree that travels may hold 64 MiB in all)",
        "On the GPU machine, with the device tool:",
        f'  run(command="python3 tools/device_kit.py run --budget 540 {" ".join(PRIORITY)}", '
        'carry=[".device-kit"], timeout_s=600)',
        "then, here: mkdir -p data/device && tar xzf <files_at>/results.tar.gz -C data/device (executed.tar.gz too).",
    ]


@dataclass
class Outcome:
    """What became of one item of a run."""

    item: str
    status: str  # passed, FAILED, stopped at the budget, skipped: budget spent
    seconds: float


def item_command(item: str, python: str, smoke: bool = False) -> list[str]:
    """The command that measures ``item``: ``bench``, or a notebook prefix such as ``06``.

    ``smoke``: the CPU-sized versions (``--quick``, smoke mode), to try the kit without a GPU.
    """
    if item == "bench":
        return [python, str(ROOT / "benchmarks" / "train_cifar.py"), *(["--quick"] if smoke else [])]
    mode = [] if smoke else ["--full"]
    return [python, str(ROOT / "tools" / "run_notebooks.py"), *mode, "--follow", item, "--out", "{work}/executed"]


def run_items(
    items: list[str], budget: float, min_start: float, work: Path, out: Path, env: dict, smoke: bool = False
) -> list[Outcome]:
    """Run ``items`` in order within ``budget`` seconds, packing the results into ``out`` after each one.

    What the items print goes to stdout (the device tool shows its end) and to ``work/log.txt``.
    """
    start = time.monotonic()
    outcomes: list[Outcome] = []
    with open(work / "log.txt", "a") as log:

        def echo(text: str) -> None:
            log.write(text)
            log.flush()
            sys.stdout.write(text)
            sys.stdout.flush()

        for i, item in enumerate(items):
            left = budget - (time.monotonic() - start)
            if left < min_start:  # the budget only shrinks: this item and all after it are skipped
                outcomes += [Outcome(rest, "skipped: budget spent", 0.0) for rest in items[i:]]
                break
            command = [arg.replace("{work}", str(work)) for arg in item_command(item, sys.executable, smoke)]
            echo(f"=== {item}: {' '.join(command)} (at most {left:.0f} s)\n")
            began = time.monotonic()
            process = subprocess.Popen(
                command,
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                start_new_session=True,  # its own process group: stopping it stops the notebook's kernel too
            )
            # A thread copies the output, so that the wait below can stop the item at the budget
            # even while it prints nothing (a long training epoch).
            on_cpu: list[str] = []  # course_utils.train.fit's note that a run trained on the CPU beside the GPU

            def copy(lines=process.stdout, on_cpu=on_cpu) -> None:
                for line in lines:
                    echo(line)
                    if CPU_BESIDE_GPU in line:
                        on_cpu.append(line)

            reader = threading.Thread(target=copy, daemon=True)
            reader.start()
            try:
                status = "passed" if process.wait(timeout=left) == 0 else "FAILED"
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                status = "stopped at the budget"
            reader.join(timeout=5)
            if on_cpu:
                status += f", but {len(on_cpu)} run(s) trained on the CPU"
            outcomes.append(Outcome(item, status, time.monotonic() - began))
            echo(f"=== {item}: {status} after {outcomes[-1].seconds:.0f} s\n")
            pack(work, out, outcomes)
    if not outcomes or outcomes[-1].status == "skipped: budget spent":  # else the last item packed already
        pack(work, out, outcomes)
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    """A markdown table of the outcomes, with the machine it ran on."""
    lines = [f"host: {os.uname().nodename}; python {sys.version.split()[0]}", ""]
    gpu = shutil.which("nvidia-smi")
    if gpu:
        query = [gpu, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
        lines[0] += "; GPU: " + subprocess.run(query, capture_output=True, text=True).stdout.strip()
    lines += ["| item | result | time |", "| --- | --- | --- |"]
    lines += [f"| {o.item} | {o.status} | {o.seconds:.0f} s |" for o in outcomes]
    return "\n".join(lines) + "\n"


def pack(work: Path, out: Path, outcomes: list[Outcome]) -> None:
    """Write ``out/results.tar.gz`` (summary, log, histories) and ``out/executed.tar.gz``, each atomically.

    The histories: every ``*.json`` under ``data/runs`` goes to ``runs/``, and the history inside each
    checkpoint (``*.pt``, too large to bring back itself) to ``from-checkpoints/``, under the same names.
    """
    (work / "summary.md").write_text(summary(outcomes))
    runs = ROOT / "data" / "runs"
    for path in sorted(runs.rglob("*")) if runs.is_dir() else []:
        relative = path.relative_to(runs)
        if path.suffix == ".json":  # as the notebook saved it: what tools/ship_results.py takes
            (work / "runs" / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, work / "runs" / relative)
        elif path.suffix == ".pt":
            dst = work / "from-checkpoints" / relative.with_suffix(".json")
            if dst.exists() and dst.stat().st_mtime >= path.stat().st_mtime:
                continue  # read at an earlier item's packing, unchanged since
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                checkpoint_history(path).save(dst)
            except Exception as error:  # a damaged checkpoint must not cost the other results
                print(f"warning: no history from {path}: {str(error)[:160]}", file=sys.stderr)
    parts = {
        "results.tar.gz": ["summary.md", "log.txt", "runs", "from-checkpoints"],
        "executed.tar.gz": ["executed"],
    }
    for name, members in parts.items():
        tmp = out / f".{name}.tmp"
        with tarfile.open(tmp, "w:gz") as tar:
            for member in members:
                if (work / member).exists():
                    tar.add(work / member, arcname=member)
        if tmp.stat().st_size > OUT_FILE_LIMIT:
            print(f"warning: {name} is over 16 MiB and will not come back", file=sys.stderr)
        tmp.replace(out / name)


def checkpoint_history(path: Path):
    """The :class:`course_utils.train.History` inside a checkpoint written by ``fit``."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the checkout's course_utils, installed or not
    from course_utils.train import History, load_checkpoint

    return History.from_dict(load_checkpoint(path)["history"])


def run(items: list[str], budget: float, min_start: float, out: Path, smoke: bool = False) -> int:
    """Install the carried wheels, then measure ``items`` within ``budget`` seconds.

    Returns 0 if every item passed, 1 if one failed, 2 if the budget stopped or skipped one.
    """
    wheels = sorted((KIT / "wheels").glob("*.whl"))
    if not wheels:
        raise SystemExit(
            f"No wheels in {KIT / 'wheels'}: run `python tools/device_kit.py prepare` here first, "
            "then carry .device-kit."
        )
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    if subprocess.run(install + ["--upgrade", "--target", str(SITE), *map(str, wheels)]).returncode != 0:
        built_for = (KIT / "python-version").read_text().strip() if (KIT / "python-version").is_file() else "?"
        here = ".".join(map(str, sys.version_info[:2]))
        raise SystemExit(
            f"Installing the carried wheels failed (see pip's message above). They were made for Python {built_for}; "
            f"this machine runs Python {here}. If those differ, run `python tools/device_kit.py prepare "
            f"--python-version {here}` here and carry .device-kit again."
        )
    sys.path.insert(0, str(SITE))  # for this process too: packing reads checkpoints through course_utils
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SITE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.update(COURSE_DATA_DIR=str(KIT / "datasets"), PYTHONUNBUFFERED="1")
    env.pop("COURSE_SMOKE", None)  # run_notebooks.py sets it for smoke mode itself
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    out.mkdir(parents=True, exist_ok=True)
    outcomes = run_items(items, budget, min_start, WORK, out, env, smoke)
    print(summary(outcomes))
    if any(o.status == "FAILED" for o in outcomes):
        return 1
    return 0 if all(o.status == "passed" for o in outcomes) else 2  # 2: stopped or skipped at the budget


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="here: wheels and datasets into .device-kit/")
    p.add_argument("--python-version", default="3.12", help="the GPU machine's Python (default 3.12)")
    default_data = os.environ.get("COURSE_DATA_DIR") or str(ROOT.parent / "shared" / "datasets")
    p.add_argument("--datasets", type=Path, default=Path(default_data), help="where the offline datasets are")
    r = sub.add_parser("run", help="there: install, measure the items, pack the results into $OUT")
    r.add_argument("items", nargs="+", help="notebook prefixes (06, 07, ...) and/or bench, in the order to run")
    r.add_argument("--budget", type=float, default=540, help="seconds for all items together (default 540)")
    r.add_argument("--min-start", type=float, default=60, help="start no item with fewer seconds left (default 60)")
    r.add_argument("--out", type=Path, default=os.environ.get("OUT"), help="where the packed results go ($OUT)")
    r.add_argument("--smoke", action="store_true", help="CPU-sized items (smoke mode, bench --quick): try the kit")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        print("\n".join(prepare(KIT, args.python_version, args.datasets)))
        return 0
    if args.out is None:
        raise SystemExit("No --out and no $OUT: say where the packed results go.")
    return run(args.items, args.budget, args.min_start, args.out, args.smoke)


if __name__ == "__main__":
    sys.exit(main())
