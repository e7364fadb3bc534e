"""What both benchmarks need to time honestly: waiting for the device, and saying how busy the machine was."""

from __future__ import annotations

import os

import torch


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work. On a GPU, Python moves on before the work is done: read the clock after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def load_average(when: str = "start") -> str:
    """The machine's load average (1, 5, 15 min) next to its cores: other work skews every timing."""
    try:
        one, five, fifteen = os.getloadavg()
    except (AttributeError, OSError):  # Windows has none
        return f"load average at {when}: not available here"
    return f"load average at {when}: {one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min) on {os.cpu_count()} cores"
