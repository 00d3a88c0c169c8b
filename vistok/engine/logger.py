"""Where training numbers go: ``metrics.jsonl`` (one JSON object per logged step), TensorBoard,
wandb when installed and asked for, and a progress bar with loss, learning rate, speed and ETA.
Only the main process writes."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Dict, Optional

import torch


class RunLogger:
    """Scalars and images for one run; ``resume_step`` drops entries a killed run logged past it."""

    def __init__(self, output_dir: str, enabled: bool, total_steps: int, start_step: int, tensorboard: bool = True,
                 wandb: bool = False, progress: bool = True, run_name: str = "run", config: Optional[dict] = None):
        self.enabled = enabled
        self.dir = Path(output_dir)
        self.metrics_path = self.dir / "metrics.jsonl"
        self.writer = self.wandb = self.bar = None
        if not enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self._truncate_after(start_step)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.dir / "tensorboard"), purge_step=start_step + 1)
        if wandb:
            try:
                import wandb as wandb_module
            except ImportError:
                warnings.warn("logging.wandb is on but wandb is not installed; logging to TensorBoard only")
            else:
                self.wandb = wandb_module.init(project="tokzoo", name=run_name, config=config, resume="allow")
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, desc=run_name, dynamic_ncols=True)

    def _truncate_after(self, step: int) -> None:
        if not self.metrics_path.is_file():
            return
        kept = [line for line in self.metrics_path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        self.metrics_path.write_text("".join(line + "\n" for line in kept))

    def scalars(self, step: int, values: Dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, **{k: float(v) for k, v in values.items()}}
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)
        if self.wandb:
            self.wandb.log(values, step=step)

    def image(self, step: int, tag: str, grid: torch.Tensor, path: Optional[Path] = None) -> None:
        if not self.enabled:
            return
        if self.writer:
            self.writer.add_image(tag, grid.clamp(0, 1), step)
        if path is not None:
            from vistok.data.images import save_image

            save_image(grid, path)

    def progress(self, steps: int, postfix: Dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.update(steps)
            if postfix:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)
        with open(self.dir / "events.log", "a") as f:
            f.write(text + "\n")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer:
            self.writer.close()
        if self.wandb:
            self.wandb.finish()
