"""course_utils.results: measured histories shipped inside the package (notebook 07 reads them on Colab)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import load_tool

from course_utils import results
from course_utils.train import History

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A stand-in for the package's results folder, with one experiment of one run."""
    (tmp_path / "demo").mkdir()
    History([{"epoch": 1, "test_acc": 0.5}, {"epoch": 2, "test_acc": 0.6}], meta={"measured": "somewhere"}).save(
        tmp_path / "demo" / "resnet-20.json"
    )
    monkeypatch.setattr(results, "_folder", lambda experiment: tmp_path / experiment)
    return tmp_path


def test_shipped_history_is_found_by_run_name(shipped):
    assert results.shipped_runs("demo") == ["resnet-20"]
    history = results.shipped_history("demo", "ResNet-20")  # names are matched lower-cased, as notebook 07 saves
    assert history["test_acc"] == [0.5, 0.6] and history.meta == {"measured": "somewhere"}


def test_nothing_shipped_is_none_not_an_error(shipped):
    assert results.shipped_history("demo", "plain-56") is None
    assert results.shipped_history("no-such-experiment", "plain-20") is None
    assert results.shipped_runs("no-such-experiment") == []


def test_damaged_shipped_file_says_what_to_do(shipped):
    (shipped / "demo" / "plain-20.json").write_text("[1, 2", encoding="utf-8")
    with pytest.raises(ValueError, match="not a History JSON file.*Reinstall course_utils"):
        results.shipped_history("demo", "plain-20")


def test_every_shipped_history_loads():
    # The real folder: whatever the course ships must load and have epochs in it.
    folder = Path(results.__file__).parent
    for path in sorted(folder.glob("*/*.json")):
        history = results.shipped_history(path.parent.name, path.stem)
        assert history is not None and len(history) > 0, path
        assert history.meta.get("measured"), f"{path}: say in meta['measured'] where and how it was measured"


@pytest.mark.slow
def test_wheel_carries_the_result_files(tmp_path):
    # Colab installs the package from the repository (not editable): the JSON files must be in the wheel.
    src = tmp_path / "src"
    shutil.copytree(ROOT / "course_utils", src / "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    History([{"epoch": 1}], meta={"measured": "test"}).save(src / "course_utils" / "results" / "demo" / "run.json")
    out = tmp_path / "wheel"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = out.glob("course_utils-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "course_utils/results/demo/run.json" in names
    assert "course_utils/results/__init__.py" in names


def test_ship_results_tool_copies_histories_with_their_provenance(tmp_path, capsys):
    ship_results = load_tool("ship_results")
    runs, dest = tmp_path / "runs" / "demo", tmp_path / "results" / "demo"
    for name in ("plain-20", "resnet-20"):
        History([{"epoch": 1, "test_acc": 0.4}, {"epoch": 2, "test_acc": 0.5}]).save(runs / f"{name}.json")
    argv = ["demo", "--measured", "2-core CPU, fp32", "--runs-dir", str(runs), "--dest", str(dest)]
    assert ship_results.main(argv) == 0
    assert sorted(p.name for p in dest.iterdir()) == ["plain-20.json", "resnet-20.json"]
    shipped = History.load(dest / "resnet-20.json")
    assert shipped.meta == {"measured": "2-core CPU, fp32"} and shipped["test_acc"] == [0.4, 0.5]
    assert "2 epochs, last test accuracy 0.5000" in capsys.readouterr().out

    History([{"epoch": 1}]).save(runs / "resnet-56.json")  # a run of another length
    with pytest.raises(SystemExit, match="different numbers of epochs"):
        ship_results.main(argv)
    with pytest.raises(SystemExit, match="smoke runs"):
        ship_results.ship("demo_smoke", "x", runs, dest)
    with pytest.raises(SystemExit, match="No histories"):
        ship_results.ship("demo", "x", tmp_path / "empty", dest)
    with pytest.raises(SystemExit, match="Say where and how"):
        ship_results.ship("demo", " ", runs, dest)
