"""The training loop shared by every tokenizer family, on HF accelerate.

Read it as: for each step, accumulate the generator loss over micro-batches, step; then the
discriminator (when it is on), step; EMA; log; maybe evaluate; maybe save. Everything the loop
needs to continue exactly where it stopped is in the checkpoint.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from vistok.engine import builders, checkpoint
from vistok.engine.data import build_train_batches, build_val_batches
from vistok.engine.ema import EMA
from vistok.engine.errors import TrainingStopped
from vistok.engine.evaluate import evaluate_reconstruction
from vistok.engine.logger import RunLogger
from vistok.engine.recipe import Recipe, recipe_to_yaml


class Counters:
    """Step and bad-step counters, checkpointed with the rest of the state."""

    def __init__(self):
        self.step = 0
        self.bad_steps = 0
        self.skipped_total = 0

    def state_dict(self) -> Dict[str, int]:
        return dict(step=self.step, bad_steps=self.bad_steps, skipped_total=self.skipped_total)

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self.step, self.bad_steps, self.skipped_total = state["step"], state["bad_steps"], state["skipped_total"]


def _has_accelerator() -> bool:
    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


class Trainer:
    """Builds everything a recipe names and runs it; see :func:`vistok.engine.train.main`."""

    def __init__(self, recipe: Recipe):
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.recipe = recipe
        cfg = recipe.training
        kwargs = {}
        if cfg.strategy == "fsdp":
            from accelerate import FullyShardedDataParallelPlugin

            kwargs["fsdp_plugin"] = FullyShardedDataParallelPlugin()
        # Without cpu=True accelerate ignores torchrun's environment on a machine with no
        # accelerator and every process believes it is the only one.
        self.accelerator = Accelerator(mixed_precision=cfg.precision, cpu=not _has_accelerator(), **kwargs)
        acc = self.accelerator
        set_seed(recipe.experiment.seed, device_specific=False, deterministic=recipe.experiment.deterministic)
        if torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
            torch.backends.cudnn.allow_tf32 = cfg.tf32
        self.output_dir = Path(recipe.experiment.output_dir)

        model = builders.build_model(recipe)
        self.perturbation = builders.build_perturbation(recipe)
        if self.perturbation is not None:
            if not hasattr(model, "perturbation"):
                raise ValueError(f"perturbation is set but {type(model).__name__} has no perturbation hook")
            model.perturbation = self.perturbation
        self.ema = EMA(model, cfg.ema_decay).to(acc.device) if cfg.ema_decay > 0 else None
        optimizer = builders.build_optimizer(model, recipe)
        scheduler = builders.build_scheduler(optimizer, recipe)
        self.model, self.optimizer, self.scheduler = acc.prepare(model, optimizer, scheduler)

        self.image_losses = self._build_image_losses(model)
        self.train_batches = build_train_batches(recipe, acc.process_index, acc.num_processes)
        self.val_batches = build_val_batches(recipe)
        self.counters = Counters()
        for obj in (self.counters, self.train_batches) + ((self.ema,) if self.ema is not None else ()):
            acc.register_for_checkpointing(obj)
        if self.adversarial is not None:
            acc.register_for_checkpointing(self.adversarial.lecam)

    # ----- construction helpers -----

    def _build_image_losses(self, model: nn.Module):
        from vistok.losses import AdversarialLoss, PatchDiscriminator, PerceptualLoss

        recipe, acc = self.recipe, self.accelerator
        self.perceptual = None
        if recipe.loss.perceptual_weight > 0:
            self.perceptual = PerceptualLoss(recipe.loss.perceptual_net).to(acc.device)
            self.backbone_note = self.perceptual.status
        adv = recipe.loss.adversarial
        self.adversarial = None
        self.d_optimizer = None
        if adv.weight > 0:
            disc = PatchDiscriminator(channels=adv.channels, num_layers=adv.num_layers, norm=adv.norm)
            if acc.num_processes > 1 and adv.norm == "batch" and acc.device.type == "cuda":  # (SyncBN is CUDA-only)
                disc = nn.SyncBatchNorm.convert_sync_batchnorm(disc)
            d_opt = builders.build_optimizer(disc, recipe, lr=adv.lr)
            d_sched = builders.build_scheduler(d_opt, recipe)
            disc, self.d_optimizer, self.d_scheduler = acc.prepare(disc, d_opt, d_sched)
            self.adversarial = AdversarialLoss(disc, weight=adv.weight, start_step=adv.start_step, loss=adv.loss,
                                               lecam_weight=adv.lecam_weight, adaptive=adv.adaptive).to(acc.device)
        return None

    # ----- one step -----

    def _reconstruction_loss(self, recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        fn = F.mse_loss if self.recipe.loss.reconstruction == "l2" else F.l1_loss
        return fn(recon.float(), x.float())

    def _generator_micro_step(self, x: torch.Tensor, step: int):
        cfg = self.recipe.loss
        with self.accelerator.autocast():
            out = self.model(x)
        rec = self._reconstruction_loss(out.recon, x)
        terms = {"loss/reconstruction": rec}
        total = cfg.reconstruction_weight * rec + cfg.quantizer_weight * out.loss.float()
        terms["loss/quantizer"] = out.loss.float()
        if self.perceptual is not None:
            perc = self.perceptual(out.recon.float(), x.float())
            terms["loss/perceptual"] = perc
            total = total + cfg.perceptual_weight * perc
        stats = {}
        if self.adversarial is not None:
            last = self.accelerator.unwrap_model(self.model).last_layer_weight if cfg.adversarial.adaptive else None
            g_loss, stats = self.adversarial.generator_loss(out.recon, step, rec_loss=total, last_layer=last)
            total = total + g_loss
            terms["loss/generator"] = g_loss
        terms["loss/total"] = total
        return total, terms, out, stats

    def _all_finite(self, value: torch.Tensor) -> bool:
        bad = (~torch.isfinite(value.detach())).float().reshape(1)
        return self.accelerator.reduce(bad, reduction="sum").item() == 0

    def _optimizer_step(self, model, optimizer, scheduler) -> float:
        norm = float("nan")
        max_norm = self.recipe.training.max_grad_norm
        if max_norm > 0:
            norm = float(self.accelerator.clip_grad_norm_(model.parameters(), max_norm))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return norm

    def train_step(self, step: int) -> Optional[Dict[str, float]]:
        """One optimizer step (generator, then discriminator); None when the step was skipped."""
        acc, accum = self.accelerator, self.recipe.training.grad_accum
        micro = [next(self.train_batches).to(acc.device) for _ in range(accum)]
        logged: Dict[str, float] = {}
        recons = []
        finite = True
        for i, x in enumerate(micro):
            sync = contextlib.nullcontext() if i == accum - 1 else acc.no_sync(self.model)
            with sync:
                total, terms, out, stats = self._generator_micro_step(x, step)
                if not self._all_finite(total):
                    finite = False
                    break
                acc.backward(total / accum)
            recons.append(out.recon.detach())
            for k, v in {**terms, **{f"stats/{k}": v for k, v in out.stats.items()}, **stats}.items():
                logged[k] = logged.get(k, 0.0) + float(v) / accum
        if not finite:
            self.optimizer.zero_grad(set_to_none=True)
            return None
        logged["grad_norm"] = self._optimizer_step(self.model, self.optimizer, self.scheduler)
        logged["lr"] = self.scheduler.get_last_lr()[0]
        if self.adversarial is not None and step >= self.adversarial.start_step:
            for i, (x, recon) in enumerate(zip(micro, recons)):
                sync = contextlib.nullcontext() if i == accum - 1 else acc.no_sync(self.adversarial.discriminator)
                with sync:
                    with acc.autocast():
                        d_loss, d_stats = self.adversarial.discriminator_loss(x, recon, step)
                    acc.backward(d_loss / accum)
                for k, v in {"loss/discriminator": d_loss, **d_stats}.items():
                    logged[k] = logged.get(k, 0.0) + float(v) / accum
            self._optimizer_step(self.adversarial.discriminator, self.d_optimizer, self.d_scheduler)
        if self.ema is not None:
            self.ema.update(acc.unwrap_model(self.model))
        return logged

    # ----- the loop -----

    def _resume(self, log: RunLogger) -> None:
        target = self.recipe.experiment.resume
        if target == "never":
            return
        path = checkpoint.latest_checkpoint(str(self.output_dir)) if target == "auto" else Path(target)
        if path is None:
            return
        if not (path / checkpoint.COMPLETE_MARK).is_file():
            raise FileNotFoundError(f"experiment.resume: {path} is not a complete checkpoint directory")
        self.accelerator.load_state(str(path))

    def _perturbation_progress(self, step: int) -> None:
        if self.perturbation is None:
            return
        per_epoch = self.train_batches.steps_per_epoch(self.recipe.training.grad_accum)
        progress = step if self.recipe.perturbation.progress == "step" else step // max(1, per_epoch)
        self.perturbation.set_progress(progress)

    def export(self) -> Path:
        model = self.ema.shadow if self.ema is not None else self.accelerator.unwrap_model(self.model)
        target = self.output_dir / "export"
        if self.accelerator.is_main_process:
            perturbation = getattr(model, "perturbation", None)
            if perturbation is not None:
                model.perturbation = None  # a training-time hook, not part of the tokenizer
            model.save_pretrained(target)
            if perturbation is not None:
                model.perturbation = perturbation
        self.accelerator.wait_for_everyone()
        return target

    def fit(self) -> Path:
        recipe, acc, cfg = self.recipe, self.accelerator, self.recipe.training
        self._resume(None)
        start = self.counters.step
        log = RunLogger(str(self.output_dir), acc.is_main_process, cfg.max_steps, start,
                        tensorboard=recipe.logging.tensorboard, wandb=recipe.logging.wandb,
                        progress=recipe.logging.progress, run_name=recipe.experiment.name)
        if acc.is_main_process:
            (self.output_dir / "recipe.yaml").write_text(recipe_to_yaml(recipe))
            if start:
                log.message(f"resumed at step {start}")
            if self.perceptual is not None:
                log.message(self.perceptual.status)
        tic, window = time.time(), 0
        try:
            while self.counters.step < cfg.max_steps:
                step = self.counters.step
                self._perturbation_progress(step)
                logged = self.train_step(step)
                if logged is None:
                    self.counters.bad_steps += 1
                    self.counters.skipped_total += 1
                    log.message(f"step {step + 1}: non-finite loss, step skipped "
                                f"({self.counters.bad_steps} in a row)")
                    if self.counters.bad_steps >= cfg.max_bad_steps:
                        raise TrainingStopped(
                            f"{self.counters.bad_steps} consecutive steps had a non-finite loss; stopped at step "
                            f"{step}. The last good checkpoint is {checkpoint.latest_checkpoint(str(self.output_dir))}")
                    continue
                self.counters.bad_steps = 0
                self.counters.step = step = step + 1
                window += 1
                if step % recipe.logging.log_every == 0 or step == cfg.max_steps:
                    elapsed = time.time() - tic
                    logged["steps_per_s"] = window / max(elapsed, 1e-9)
                    log.scalars(step, logged)
                    log.progress(window, {"loss": logged["loss/total"], "lr": logged["lr"]})
                    tic, window = time.time(), 0
                if self.val_batches and (step % recipe.logging.eval_every == 0 or step == cfg.max_steps):
                    self._evaluate(step, log)
                if step % recipe.logging.save_every == 0 or step == cfg.max_steps:
                    checkpoint.save(acc, str(self.output_dir), step, recipe.logging.keep_last)
            return self.export()
        finally:
            log.close()

    def _evaluate(self, step: int, log: RunLogger) -> None:
        if not self.accelerator.is_main_process:
            return
        model = self.ema.shadow if self.ema is not None else self.accelerator.unwrap_model(self.model)
        results, grid = evaluate_reconstruction(model, self.val_batches, self.accelerator.device,
                                                self.accelerator.autocast)
        log.scalars(step, results)
        if grid.numel():
            log.image(step, "val/reconstructions", grid, self.output_dir / "samples" / f"step-{step:08d}.png")
