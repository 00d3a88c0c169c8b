"""Checkpoint directories ``<output_dir>/checkpoints/step-00001234``, written by accelerate's
``save_state`` (models as safetensors, optimizers, schedulers, grad scaler, per-rank RNG states,
and the registered engine objects: EMA, data position, counters) into a temporary directory that
is renamed when complete. Only complete directories are ever resumed from."""
from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path
from typing import List, Optional

from vistok.errors import UnreadableFileError

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


# what reading a damaged or foreign checkpoint file raises (a planted pickle: UnpicklingError)
_UNREADABLE = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, TypeError, AttributeError,
               IndexError, ImportError, OSError)


def load(accelerator, path: Path) -> None:
    """Restore the training state saved in ``path`` (a complete checkpoint directory).

    accelerate unpickles the registered objects' states (``custom_checkpoint_*.pkl``) with
    ``weights_only=False``, which runs whatever a planted pickle holds. So every pickled file in
    the directory is first loaded with the restricted unpickler (``weights_only=True`` and
    accelerate's allowed numpy types, which is all a checkpoint written here contains); a file
    that needs more, or is damaged, is refused naming it, as is a state that does not fit this run."""
    from accelerate.utils import load as safe_load
    from safetensors import SafetensorError

    for file in sorted(path.iterdir()):
        if file.is_file() and file.suffix in (".pkl", ".bin", ".pt", ".pth"):
            try:
                safe_load(str(file), map_location="cpu")
            except pickle.UnpicklingError:
                raise UnreadableFileError(f"{file}: refused: unpickling it needs more than tensors and plain data, "
                                          "so it could run code (a checkpoint written by tokzoo never does)") from None
            except _UNREADABLE as err:
                raise UnreadableFileError(f"{file}: not a readable checkpoint file ({type(err).__name__}: "
                                          f"{_first_line(err)})") from None
    try:
        accelerator.load_state(str(path))
    except (SafetensorError,) + _UNREADABLE as err:
        raise UnreadableFileError(f"{path}: cannot resume from this checkpoint ({type(err).__name__}: "
                                  f"{_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""
