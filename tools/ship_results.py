"""Ship measured histories with the package: copy them from the runs folder into ``course_utils/results/``.

    python tools/ship_results.py fig6 --measured "one H100, bf16 autocast; tools/run_notebooks.py --full 07"

Notebook 07 saves each run's history as ``data/runs/fig6/<run>.json``. This
copies every one of them into ``course_utils/results/fig6/`` with
``meta["measured"]`` set to the text given, which the notebook prints when it
loads a shipped history. On Colab only the package is installed, so that is
where measured results must live. All runs must have the same number of
epochs (one figure, one schedule). Commit the files it writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.train import History  # noqa: E402  (after the path is set, so a checkout works uninstalled)


def ship(experiment: str, measured: str, runs_dir: Path, dest_dir: Path) -> list[Path]:
    """Copy ``runs_dir/*.json`` to ``dest_dir`` with ``meta["measured"] = measured``; return the written files."""
    if experiment.endswith("_smoke") or runs_dir.name.endswith("_smoke"):
        raise SystemExit(f"{runs_dir} holds smoke runs: a few batches each, not results. Run the notebook with --full.")
    if not measured.strip():
        raise SystemExit("Say where and how the runs were measured: --measured 'device, precision, command'.")
    paths = sorted(runs_dir.glob("*.json"))
    if not paths:
        raise SystemExit(f"No histories (*.json) in {runs_dir}. Run the notebook in full mode first.")
    histories = {path.name: History.load(path) for path in paths}
    lengths = {name: len(h) for name, h in histories.items()}
    if len(set(lengths.values())) != 1:
        raise SystemExit(f"The runs have different numbers of epochs ({lengths}); ship runs of one schedule only.")
    written = []
    for name, history in histories.items():
        history.meta = {**history.meta, "measured": measured.strip()}
        history.save(dest_dir / name)
        written.append(dest_dir / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="the folder name under data/runs/ and course_utils/results/, e.g. fig6")
    parser.add_argument("--measured", required=True, help="where and how: device, precision, command, date")
    parser.add_argument("--runs-dir", type=Path, help="where the histories are (default: data/runs/EXPERIMENT)")
    parser.add_argument("--dest", type=Path, help="where they go (default: course_utils/results/EXPERIMENT)")
    args = parser.parse_args(argv)
    runs_dir = args.runs_dir or ROOT / "data" / "runs" / args.experiment
    dest = args.dest or ROOT / "course_utils" / "results" / args.experiment
    for path in ship(args.experiment, args.measured, runs_dir, dest):
        history = History.load(path)
        print(f"{path}: {len(history)} epochs, last test accuracy {history.last.get('test_acc', float('nan')):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
