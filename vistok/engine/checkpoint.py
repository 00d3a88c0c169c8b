"""Checkpoint directories ``<output_dir>/checkpoints/step-00001234``, written by accelerate's
``save_state`` (models as safetensors, optimizers, schedulers, grad scaler, per-rank RNG states,
and the registered engine objects: EMA, data position, counters) into a temporary directory that
is renamed when complete. Only complete directories are ever resumed from."""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import List, Optional

STEP_DIR = re.compile(r"^step-(\d{8})$")
COMPLETE_MARK = "COMPLETE"


def checkpoint_root(output_dir: str) -> Path:
    return Path(output_dir) / "checkpoints"


def complete_checkpoints(output_dir: str) -> List[Path]:
    """Complete checkpoint directories, oldest first."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if STEP_DIR.match(p.name) and (p / COMPLETE_MARK).is_file()]
    return sorted(found, key=lambda p: int(STEP_DIR.match(p.name).group(1)))


def latest_checkpoint(output_dir: str) -> Optional[Path]:
    found = complete_checkpoints(output_dir)
    return found[-1] if found else None


def save(accelerator, output_dir: str, step: int, keep_last: int) -> Path:
    """Save the full training state for ``step``; all processes must call this."""
    root = checkpoint_root(output_dir)
    final = root / f"step-{step:08d}"
    staging = root / f".staging-step-{step:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (staging / COMPLETE_MARK).write_text(f"{step}\n")
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
        for old in complete_checkpoints(output_dir)[:-keep_last] if keep_last > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final
