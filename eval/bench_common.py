"""What the benchmark scripts share: naming the machine a number was measured on."""
from __future__ import annotations

import platform


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def sync(device) -> None:
    """Wait for queued CUDA work (``device``: a torch.device or a string such as "cuda:0")."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device) -> float:
    """Wall seconds of one ``fn()``, with the device synchronised before and after."""
    import time

    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start
