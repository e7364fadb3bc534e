"""scripts/train_ddp.py on two CPU processes (gloo): the ranks agree, and one process resumes their run.

The CIFAR-10 images come from COURSE_DATA_DIR (or the course's data/), as in the notebooks' tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT

SCRIPT = ROOT / "scripts" / "train_ddp.py"
TINY = ["--epochs", "2", "--train-images", "64", "--test-images", "20", "--batch-size", "16", "--depth", "8"]


def free_port() -> int:
    """A port nobody listens on, on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_script(*args: str, nproc: int | None = None) -> subprocess.CompletedProcess:
    """The script as a plain process, or as ``nproc`` ranks started by torchrun on the loopback interface."""
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}"] if nproc else []
    launcher += ["--master-addr=127.0.0.1", f"--master-port={free_port()}"] if nproc else []
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"  # the ranks talk over loopback only
    command = [*launcher, *([] if nproc else [sys.executable]), str(SCRIPT), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def report(result: subprocess.CompletedProcess, path: Path) -> dict:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr[-3000:]}"
    return json.loads(path.read_text())


def state_sha256(state: dict) -> str:
    """The script's own hash of a state dict."""
    spec = importlib.util.spec_from_file_location("train_ddp", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.state_sha256(state)


@pytest.mark.slow
def test_two_ranks_agree_and_one_process_resumes_their_run(tmp_path: Path):
    checkpoint, two_json, one_json = tmp_path / "run.pt", tmp_path / "two.json", tmp_path / "one.json"
    common = [*TINY, "--sync-bn", "--checkpoint", str(checkpoint)]

    two = report(run_script(*common, "--stop-after", "1", "--out", str(two_json), nproc=2), two_json)
    assert two["world_size"] == 2 and two["epochs_done"] == 1
    assert [r["rank"] for r in two["ranks"]] == [0, 1]
    assert two["ranks"][0]["weights_sha256"] == two["ranks"][1]["weights_sha256"]  # DDP: the same weights
    assert two["ranks"][0]["state_sha256"] == two["ranks"][1]["state_sha256"]  # SyncBatchNorm: the same BN buffers
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["epoch"] == 1 and state_sha256(saved["model"]) == two["ranks"][0]["state_sha256"]

    one = report(run_script(*common, "--resume", "--out", str(one_json)), one_json)
    assert one["world_size"] == 1 and one["start_state_sha256"] == two["ranks"][0]["state_sha256"]
    assert [(h["epoch"], h["world_size"]) for h in one["history"]] == [(1, 2), (2, 1)]
    assert one["history"][0] == two["history"][0]  # the 2-rank epoch is kept as it was
    assert one["history"][1]["effective_batch_size"] == 16 and one["peak_lr"] == two["peak_lr"] / 2
    assert one["ranks"][0]["weights_sha256"] != two["ranks"][0]["weights_sha256"]  # it trained on
    resumed = torch.load(checkpoint, weights_only=True)
    assert resumed["epoch"] == 2 and state_sha256(resumed["model"]) == one["ranks"][0]["state_sha256"]


@pytest.mark.slow
def test_a_checkpoint_of_another_recipe_is_refused(tmp_path: Path):
    checkpoint = tmp_path / "run.pt"
    first = run_script(*TINY, "--stop-after", "1", "--checkpoint", str(checkpoint))
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_script(*TINY, "--checkpoint", str(checkpoint))
    assert again.returncode != 0 and "pass --resume" in again.stderr
    changed = run_script(*TINY, "--lr", "0.2", "--resume", "--checkpoint", str(checkpoint))
    assert changed.returncode != 0 and "lr: saved 0.1, now 0.2" in changed.stderr
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1  # untouched
