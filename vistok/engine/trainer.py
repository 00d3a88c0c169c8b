"""The training loop shared by every tokenizer family, on HF accelerate.

Read it as: for each step, accumulate the generator loss over micro-batches, step; then the
discriminator (when it is on), step; EMA; log; maybe evaluate; maybe save. Everything the loop
needs to continue exactly where it stopped is in the checkpoint.
"""
from __future__ import annotations

import contextlib
import copy
import time
from pathlib import Path
from typing import Dict, Optional

import torch
from torch import nn

from vistok.engine import builders, checkpoint
from vistok.engine.data import build_train_batches, build_val_batches
from vistok.engine.ema import EMA
from vistok.engine.errors import TrainingStopped
from vistok.engine.logger import RunLogger
from vistok.engine.objectives import build_objective
from vistok.engine.periodic_rfid import PeriodicRFID
from vistok.engine.recipe import Recipe, recipe_to_dict, recipe_to_yaml


EXPORT_BATCHES = 8  # training batches a model's prepare_export hook may measure
D_SKIPPED = "discriminator_skipped"  # train_step's flag: the generator stepped, the discriminator did not


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


def _scalar(value) -> float:
    return float(value.detach()) if torch.is_tensor(value) else float(value)


def _to_device(batch, device):
    """A tensor, or a tuple of tensors (``(ids, labels)``, ``(generated, real)``), on ``device``."""
    if isinstance(batch, tuple):
        return tuple(t.to(device) for t in batch)
    return batch.to(device)


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
        self.notes = []
        if cfg.strategy == "fsdp" and acc.num_processes > 1 and acc.distributed_type.name != "FSDP":
            # accelerate falls back to DDP where FSDP is unavailable (e.g. CPU processes).
            self.notes.append(f"training.strategy=fsdp asked for, but accelerate runs {acc.distributed_type.name} "
                              "here (FSDP needs GPUs); every process holds the full model")
        if cfg.precision == "fp16" and acc.scaler is None:
            # accelerate accepts fp16 on CPU but runs it in fp32: no fp16 autocast, no loss scaling.
            self.notes.append(f"training.precision=fp16 on {acc.device.type}: accelerate runs fp32 here "
                              "(no fp16 autocast or loss scaling)")
        set_seed(recipe.experiment.seed, device_specific=False, deterministic=recipe.experiment.deterministic)
        if torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
            torch.backends.cudnn.allow_tf32 = cfg.tf32
        self.output_dir = Path(recipe.experiment.output_dir)
        self._first_batch = None  # fit() reads the first training batch before it writes anything

        model = builders.build_model(recipe)
        self.perturbation = builders.build_perturbation(recipe)
        if self.perturbation is not None:
            if not model.accepts_perturbation:
                raise ValueError(f"perturbation is set but {type(model).__name__} has no perturbation hook")
            model.perturbation = self.perturbation
        model.prepare_training()
        # Under FSDP each process holds a shard of the prepared model: evaluation and export load
        # the full state dict into this unwrapped copy instead (the recipe check refuses EMA,
        # the adaptive GAN weight and periodic rFID, which would read the shards).
        self._full_copy = copy.deepcopy(model) if cfg.strategy == "fsdp" else None
        self.ema = EMA(model, cfg.ema_decay).to(acc.device) if cfg.ema_decay > 0 else None
        optimizer = builders.build_optimizer(model, recipe)
        scheduler = builders.build_scheduler(optimizer, recipe)
        # Schedulers are not passed to accelerate: its wrapper steps them once per process per
        # optimizer step (it assumes a dataloader it split), which would run the schedule
        # num_processes times too fast. They are checkpointed as registered objects instead.
        self.model, self.optimizer = acc.prepare(model, optimizer)
        self.scheduler = scheduler

        self.objective = build_objective(recipe, model, acc.device)
        self.d_optimizer = None
        disc = self.objective.discriminator
        if disc is not None:
            if acc.num_processes > 1 and acc.device.type == "cuda" and self.objective.sync_batchnorm:
                disc = nn.SyncBatchNorm.convert_sync_batchnorm(disc)  # (SyncBN is CUDA-only)
            d_opt = builders.build_optimizer(disc, recipe, lr=self.objective.discriminator_lr)
            d_sched = builders.build_scheduler(d_opt, recipe)
            disc, self.d_optimizer = acc.prepare(disc, d_opt)
            self.d_scheduler = d_sched
            self.objective.set_discriminator(disc)
        self.train_batches = build_train_batches(recipe, acc.process_index, acc.num_processes)
        self.val_batches = build_val_batches(recipe)
        self.rfid = PeriodicRFID.from_recipe(recipe, model, acc.device)
        self.counters = Counters()
        for obj in (self.counters, self.train_batches) + ((self.ema,) if self.ema is not None else ()):
            acc.register_for_checkpointing(obj)
        for obj in [self.scheduler] + ([self.d_scheduler] if disc is not None else []) + self.objective.checkpoint_objects():
            acc.register_for_checkpointing(obj)

    # ----- one step -----

    def _all_finite(self, value: torch.Tensor) -> bool:
        bad = (~torch.isfinite(value.detach())).float().reshape(1)
        return self.accelerator.reduce(bad, reduction="sum").item() == 0

    def _optimizer_step(self, model, optimizer, scheduler, max_norm: float) -> float:
        norm = float("nan")
        if max_norm > 0:
            norm = float(self.accelerator.clip_grad_norm_(model.parameters(), max_norm))
        optimizer.step()
        if not getattr(optimizer, "step_was_skipped", False):  # fp16 loss scaling skipped the update
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return norm

    def _discriminator_step(self, micro, recons, step: int, logged: Dict[str, float]) -> bool:
        """Accumulate the discriminator loss over the micro-batches and step; False (grads zeroed,
        no update) when a loss is non-finite on any process."""
        acc, accum, objective = self.accelerator, self.recipe.training.grad_accum, self.objective
        stats: Dict[str, float] = {}
        for i, (x, recon) in enumerate(zip(micro, recons)):
            sync = contextlib.nullcontext() if i == accum - 1 else acc.no_sync(objective.discriminator)
            with sync:
                with acc.autocast():
                    d_loss, d_stats = objective.discriminator_loss(x, recon, step)
                if not self._all_finite(d_loss):
                    self.d_optimizer.zero_grad(set_to_none=True)
                    return False
                acc.backward(d_loss / accum)
            for k, v in d_stats.items():
                stats[k] = stats.get(k, 0.0) + _scalar(v) / accum
        clip = self.recipe.loss.adversarial.max_grad_norm
        clip = self.recipe.training.max_grad_norm if clip is None else clip
        norm = self._optimizer_step(objective.discriminator, self.d_optimizer, self.d_scheduler, clip)
        if clip > 0:
            logged["grad_norm_discriminator"] = norm
        logged.update(stats)
        return True

    def train_step(self, step: int) -> Optional[Dict[str, float]]:
        """One optimizer step (generator, then discriminator); None when the generator step was
        skipped; ``logged[D_SKIPPED]`` is set when only the discriminator step was."""
        acc, accum = self.accelerator, self.recipe.training.grad_accum
        micro = [_to_device(self._next_batch(), acc.device) for _ in range(accum)]
        logged: Dict[str, float] = {}
        recons = []
        finite = True
        objective = self.objective
        last_layer = acc.unwrap_model(self.model).last_layer_weight if objective.needs_last_layer() else None
        for i, x in enumerate(micro):
            sync = contextlib.nullcontext() if i == accum - 1 else acc.no_sync(self.model)
            with sync:
                out = objective.generator_step(self.model, x, step, acc.autocast, last_layer)
                if not self._all_finite(out.total):
                    finite = False
                    break
                acc.backward(out.total / accum)
            recons.append(out.recon.detach() if out.recon is not None else None)
            for k, v in {**out.terms, **out.stats}.items():
                logged[k] = logged.get(k, 0.0) + _scalar(v) / accum
        if not finite:
            self.optimizer.zero_grad(set_to_none=True)
            return None
        logged["grad_norm"] = self._optimizer_step(self.model, self.optimizer, self.scheduler,
                                                   self.recipe.training.max_grad_norm)
        logged["lr"] = self.scheduler.get_last_lr()[0]
        if objective.discriminator_active(step):
            if not self._discriminator_step(micro, recons, step, logged):
                logged[D_SKIPPED] = 1.0
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
        checkpoint.load(self.accelerator, path)

    def _perturbation_progress(self, step: int) -> None:
        if self.perturbation is None:
            return
        per_epoch = self.train_batches.steps_per_epoch(self.recipe.training.grad_accum)
        progress = step if self.recipe.perturbation.progress == "step" else step // max(1, per_epoch)
        self.perturbation.set_progress(progress)

    def _full_model(self) -> Optional[nn.Module]:
        """The model to evaluate and export, with all its weights: the EMA copy, the unwrapped
        model, or under FSDP an unwrapped copy loaded from the gathered full state dict (then only
        the main process gets it, others None). Every process must call this."""
        if self.ema is not None:
            return self.ema.shadow
        if self._full_copy is None:
            return self.accelerator.unwrap_model(self.model)
        state = self.accelerator.get_state_dict(self.model)  # a collective under FSDP
        if not self.accelerator.is_main_process:
            return None
        self._full_copy.load_state_dict(state)
        return self._full_copy.to(self.accelerator.device)

    def export(self) -> Path:
        model = self._full_model()
        target = self.output_dir / "export"
        if self.accelerator.is_main_process:
            perturbation = model.perturbation if model.accepts_perturbation else None
            if perturbation is not None:
                model.perturbation = None  # a training-time hook, not part of the tokenizer
            device = self.accelerator.device
            model.prepare_export(next(self.train_batches).to(device) for _ in range(EXPORT_BATCHES))
            model.save_pretrained(target)
            if perturbation is not None:
                model.perturbation = perturbation
        self.accelerator.wait_for_everyone()
        return target

    def _next_batch(self):
        if self._first_batch is not None:
            batch, self._first_batch = self._first_batch, None
            return batch
        return next(self.train_batches)

    def fit(self) -> Path:
        recipe, acc, cfg = self.recipe, self.accelerator, self.recipe.training
        self._resume(None)
        start = self.counters.step
        # read before anything is written: unreadable data is refused with the output directory untouched
        self._first_batch = next(self.train_batches) if start < cfg.max_steps else None
        log = RunLogger(str(self.output_dir), acc.is_main_process, cfg.max_steps, start,
                        tensorboard=recipe.logging.tensorboard, wandb=recipe.logging.wandb,
                        progress=recipe.logging.progress, run_name=recipe.experiment.name,
                        config=recipe_to_dict(recipe))
        if acc.is_main_process:
            (self.output_dir / "recipe.yaml").write_text(recipe_to_yaml(recipe))
            if start:
                log.message(f"resumed at step {start}")
            for note in self.notes + self.objective.notes():
                log.message(note)
        tic, window = time.time(), 0
        try:
            while self.counters.step < cfg.max_steps:
                step = self.counters.step
                self._perturbation_progress(step)
                logged = self.train_step(step)
                if logged is None:
                    self._count_bad_step(step, "non-finite loss, step skipped", log)
                    continue
                if logged.pop(D_SKIPPED, 0.0):
                    self._count_bad_step(step, "non-finite discriminator loss, discriminator step skipped", log)
                else:
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
                    # Evaluation may draw random numbers (a sampling decoder): not from the training stream.
                    with torch.random.fork_rng(devices=[acc.device] if acc.device.type == "cuda" else []):
                        self._evaluate(step, log)
                if step % recipe.logging.save_every == 0 or step == cfg.max_steps:
                    checkpoint.save(acc, str(self.output_dir), step, recipe.logging.keep_last)
            return self.export()
        finally:
            log.close()

    def _count_bad_step(self, step: int, what: str, log: RunLogger) -> None:
        """Count a skipped (generator or discriminator) step; stop after too many in a row."""
        self.counters.bad_steps += 1
        self.counters.skipped_total += 1
        log.message(f"step {step + 1}: {what} ({self.counters.bad_steps} in a row)")
        if self.counters.bad_steps >= self.recipe.training.max_bad_steps:
            raise TrainingStopped(
                f"{self.counters.bad_steps} consecutive steps had a non-finite loss; stopped at step "
                f"{step}. The last good checkpoint is {checkpoint.latest_checkpoint(str(self.output_dir))}")

    def _evaluate(self, step: int, log: RunLogger) -> None:
        model = self._full_model()
        rfid = self.rfid.measure(model, log.message) if self.rfid is not None else {}  # all processes: gathered
        if not self.accelerator.is_main_process:
            return
        results, grid = self.objective.evaluate(model, self.val_batches, self.accelerator.device,
                                                self.accelerator.autocast)
        log.scalars(step, {**results, **rfid})
        if grid.numel():
            log.image(step, "val/reconstructions", grid, self.output_dir / "samples" / f"step-{step:08d}.png")
