"""What the benchmark scripts share: naming the machine a number was measured on, timing, counting FLOPs."""
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


def _cpu_sdpa_flops(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    from torch.utils import flop_counter

    # The CPU attention kernel is missing from torch's flop registry (the CUDA ones are there).
    return flop_counter.sdpa_flop_count(q_shape, k_shape, v_shape)


def count_flops(fn, *args) -> int:
    """FLOPs of ``fn(*args)`` by torch.utils.flop_counter (matmuls, convolutions, attention; a
    multiply-add is 2 FLOPs; elementwise ops are not counted)."""
    import torch
    from torch.utils import flop_counter

    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}
    with flop_counter.FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn(*args)
    return counter.get_total_flops()
