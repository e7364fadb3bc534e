"""tools/device_kit.py: the time-boxed run on a lent GPU machine, tried here with stand-in items."""

from __future__ import annotations

import json
import os
import tarfile
import time

import pytest
import torch
from conftest import load_tool

from course_utils.train import CPU_BESIDE_GPU, History, save_checkpoint

kit = load_tool("device_kit")


def test_item_commands_run_the_notebook_runner_and_the_benchmark():
    full = kit.item_command("06", "python")
    assert full[1].endswith("tools/run_notebooks.py") and "--full" in full and "06" in full
    assert "--full" not in kit.item_command("06", "python", smoke=True)
    assert kit.item_command("bench", "python")[1].endswith("benchmarks/train_cifar.py")
    assert kit.item_command("bench", "python", smoke=True)[-1] == "--quick"


def test_wheel_names_are_normalized_like_the_image_list():
    assert kit.dist_name(kit.Path("python_dateutil-2.9.0.post0-py2.py3-none-any.whl")) == "python-dateutil"
    assert kit.dist_name(kit.Path("typing_extensions-4.12.2-py3-none-any.whl")) in kit.ON_THE_IMAGE


def test_prepare_without_the_datasets_says_where_to_point(tmp_path):
    with pytest.raises(SystemExit, match="--datasets"):
        kit.prepare(tmp_path / "kit", "3.12", tmp_path / "nowhere")


def running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a killed one may linger as a zombie until it is reaped)."""
    for _ in range(50):
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state in "ZX":
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    """A stand-in checkout: one history and one real checkpoint under data/runs, as the notebooks leave them."""
    runs = tmp_path / "repo" / "data" / "runs" / "fig6"
    runs.mkdir(parents=True)
    history = History([{"epoch": 1, "train_acc": 0.5, "test_acc": 0.4}])
    history.save(runs / "plain-20.json")
    save_checkpoint(runs / "plain-20_32ep.pt", model=torch.nn.Linear(2, 2), epoch=1, history=history)
    (runs / "broken.pt").write_bytes(b"not a checkpoint")
    monkeypatch.setattr(kit, "ROOT", tmp_path / "repo")
    return tmp_path


def test_items_run_in_order_within_the_budget_and_results_are_packed(fake_repo, monkeypatch):
    pid_file = fake_repo / "grandchild.pid"
    scripts = {
        "quick": "print('quick item ran')",
        "fails": "raise SystemExit(3)",
        # Starts a grandchild (as run_notebooks.py starts a kernel), then outlives the budget.
        "long": (
            "import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pid_file)!r}, 'w').write(str(p.pid)); print('long item started', flush=True); time.sleep(60)"
        ),
        "never": "print('this must not run')",
    }
    monkeypatch.setattr(kit, "item_command", lambda item, python, smoke=False: [python, "-c", scripts[item]])
    work, out = fake_repo / "work", fake_repo / "out"
    work.mkdir()
    out.mkdir()
    start = time.monotonic()
    outcomes = kit.run_items(["quick", "fails", "long", "never"], 6.0, 2.0, work, out, dict(os.environ))
    assert time.monotonic() - start < 30

    assert [(o.item, o.status) for o in outcomes] == [
        ("quick", "passed"),
        ("fails", "FAILED"),
        ("long", "stopped at the budget"),
        ("never", "skipped: budget spent"),
    ]
    assert not running(int(pid_file.read_text()))  # stopping the item stopped its whole process group

    assert sorted(p.name for p in out.iterdir()) == ["executed.tar.gz", "results.tar.gz"]
    with tarfile.open(out / "results.tar.gz") as tar:
        names = tar.getnames()
        summary = tar.extractfile("summary.md").read().decode()
        log = tar.extractfile("log.txt").read().decode()
        from_checkpoint = json.loads(tar.extractfile("from-checkpoints/fig6/plain-20_32ep.json").read())
    assert "runs/fig6/plain-20.json" in names and "runs/fig6/plain-20_32ep.json" not in names
    assert not any("broken" in name for name in names)  # a damaged checkpoint is passed over, the rest packed
    assert History.from_dict(from_checkpoint).last["test_acc"] == 0.4
    assert "| long | stopped at the budget |" in summary and "| never | skipped: budget spent |" in summary
    assert "quick item ran" in log and "long item started" in log and "this must not run" not in log
    # The device tool brings back files named in letters, digits, '.', '_' and '-', at most two folders down.
    assert all(all(c.isalnum() or c in "._-/" for c in name) and name.count("/") <= 2 for name in names)


def test_a_run_that_trained_on_the_cpu_beside_the_gpu_is_flagged(fake_repo, monkeypatch):
    assert kit.CPU_BESIDE_GPU in CPU_BESIDE_GPU  # the kit looks for what fit prints
    script = f"print({CPU_BESIDE_GPU!r})"
    monkeypatch.setattr(kit, "item_command", lambda item, python, smoke=False: [python, "-c", script])
    work, out = fake_repo / "work", fake_repo / "out"
    work.mkdir()
    out.mkdir()
    outcomes = kit.run_items(["06"], 30.0, 1.0, work, out, dict(os.environ))
    assert outcomes[0].status == "passed, but 1 run(s) trained on the CPU"


def test_run_without_wheels_says_to_prepare_first(tmp_path, monkeypatch):
    monkeypatch.setattr(kit, "KIT", tmp_path / "empty-kit")
    with pytest.raises(SystemExit, match="prepare"):
        kit.run(["06"], 60, 10, tmp_path / "out")


def test_main_needs_somewhere_to_put_the_results(monkeypatch):
    monkeypatch.delenv("OUT", raising=False)
    with pytest.raises(SystemExit, match="OUT"):
        kit.main(["run", "06"])


def test_a_failed_wheel_install_names_both_pythons(tmp_path, monkeypatch):
    kit_dir = tmp_path / "kit"
    (kit_dir / "wheels").mkdir(parents=True)
    (kit_dir / "wheels" / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    (kit_dir / "python-version").write_text("3.99\n")
    monkeypatch.setattr(kit, "KIT", kit_dir)
    monkeypatch.setattr(kit, "SITE", tmp_path / "site")
    with pytest.raises(SystemExit, match=r"made for Python 3\.99; this machine runs Python 3\.\d+"):
        kit.run(["06"], 60, 10, tmp_path / "out")
