"""Training recipes: one YAML file, validated against the schema below, overridable from the
command line with ``key.sub=value``.

Every key has a default here, so a recipe only says what differs. A key the schema does not
know is an error naming it and the closest valid key (``training.lr`` -> ``optimizer.lr``);
``model.config`` is checked against the model family's own config class.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vistok.errors import TokzooError


class RecipeError(TokzooError, ValueError):
    """A recipe or an override is invalid; the message names the key and the file."""


@dataclass
class Experiment:
    name: str = "run"
    output_dir: str = "outputs/train/run"
    seed: int = 0
    deterministic: bool = False  # deterministic algorithms (CPU: bit-exact resume)
    resume: str = "auto"  # auto (latest checkpoint in output_dir, if any) | never | a checkpoint directory


@dataclass
class Model:
    family: str = "titok"
    config: Dict[str, Any] = field(default_factory=dict)
    init: Optional[str] = None  # fine-tune from a zoo name / save_pretrained dir; config entries override
    # Parts copied from other tokenizers: {"our.prefix": "NAME_OR_DIR:their.prefix"}, e.g. the
    # MaskGIT-VQGAN decoder into TiTok's pixel decoder for stage 2.
    init_parts: Dict[str, str] = field(default_factory=dict)
    freeze: List[str] = field(default_factory=list)  # submodules kept frozen (and in eval mode)


@dataclass
class Data:
    kind: str = "images"  # images | shards | tokens (tokzoo tokenize) | pairs (RobusTok post-training) | a family's
    train: str = ""
    val: Optional[str] = None
    real: Optional[str] = None  # kind=pairs: the real images paired with the generated PNGs in data.train
    image_size: int = 256
    random_crop: bool = True
    random_flip: bool = True
    sample_rate: int = 24000
    segment_seconds: float = 1.0
    batch_size: int = 8  # per process, per micro-step
    num_workers: Optional[int] = None  # None: fit the machine
    val_batches: int = 2


@dataclass
class Adversarial:
    weight: float = 0.0  # 0 disables the discriminator
    start_step: int = 0
    loss: str = "hinge"
    lecam_weight: float = 0.0
    adaptive: bool = False  # VQGAN's gradient-norm balancing on the decoder's last layer
    arch: str = "patchgan"  # patchgan (taming) | titok (blur-pool, GroupNorm, max-pooled logits)
    channels: int = 64
    num_layers: int = 3
    norm: str = "batch"  # patchgan only
    lr: Optional[float] = None  # None: optimizer.lr
    init: Optional[str] = None  # a zoo name whose released checkpoint ships the discriminators to start from
    max_grad_norm: Optional[float] = None  # the discriminator's clipping (0: none); None: training.max_grad_norm


@dataclass
class Loss:
    kind: str = "auto"  # auto (the family's own) | image | proxy_codes | flow | ar_tokens | posttrain | vae | a family's
    reconstruction: str = "l2"  # l1 | l2
    reconstruction_weight: float = 1.0
    perceptual_weight: float = 0.0
    perceptual_net: str = "vgg"  # vgg | alex (LPIPS) | convnext_s | lpips-convnext_s-A-B (weighted mix)
    perceptual_allow_random: bool = False  # train on a random network when its weights are missing (else refuse)
    proxy_teacher: str = "maskgit-vqgan-f16"  # loss.kind=proxy_codes: whose codes stage 1 predicts
    quantizer_weight: float = 1.0
    kl_weight: float = 1e-6  # loss.kind=vae: LDM's weight (its reconstruction is summed over pixels)
    adversarial: Adversarial = field(default_factory=Adversarial)
    # families add their own sections here (e.g. loss.audio for codecs): see recipe_class()


@dataclass
class Optimizer:
    name: str = "adamw"
    lr: float = 1e-4
    betas: List[float] = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 1e-4
    eps: float = 1e-8
    # true: vectors, norms, biases, embeddings and codebooks get no weight decay (the TiTok convention);
    # false: every parameter decays, as torch's optimizer over model.parameters() (DAC)
    exempt_from_decay: bool = True


@dataclass
class Schedule:
    name: str = "cosine"  # cosine | constant | exponential (lr x gamma ** steps after warm-up)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1  # cosine only
    gamma: float = 1.0  # exponential only: the factor per optimizer step (torch ExponentialLR)


@dataclass
class Perturbation:
    alpha: float = 0.0  # 0 disables RobusTok latent perturbation
    beta: float = 0.0
    delta: int = 1
    schedule: str = "constant"  # constant | robustok
    progress: str = "epoch"  # what the schedule counts: epoch | step


@dataclass
class Training:
    max_steps: int = 1000
    grad_accum: int = 1
    max_grad_norm: float = 1.0  # 0 disables clipping
    precision: str = "no"  # no | bf16 | fp16
    tf32: bool = True
    ema_decay: float = 0.0  # 0 disables the EMA copy; with EMA the export uses it
    strategy: str = "ddp"  # ddp | fsdp
    max_bad_steps: int = 20  # consecutive non-finite losses before training stops
    steps_per_epoch: Optional[int] = None  # None: dataset length / global batch


@dataclass
class Logging:
    log_every: int = 10
    eval_every: int = 500
    save_every: int = 500
    keep_last: int = 3
    rfid_images: int = 0  # > 0: val/rfid on the first N images of data.val at each evaluation (image tokenizers)
    tensorboard: bool = True
    wandb: bool = False
    progress: bool = True


@dataclass
class Recipe:
    """The whole training configuration."""

    experiment: Experiment = field(default_factory=Experiment)
    model: Model = field(default_factory=Model)
    data: Data = field(default_factory=Data)
    loss: Loss = field(default_factory=Loss)
    optimizer: Optimizer = field(default_factory=Optimizer)
    schedule: Schedule = field(default_factory=Schedule)
    perturbation: Perturbation = field(default_factory=Perturbation)
    training: Training = field(default_factory=Training)
    logging: Logging = field(default_factory=Logging)


CORE_DATA_KINDS = ("images", "shards", "tokens", "pairs")
CHOICES = {
    "loss.adversarial.arch": ("patchgan", "titok"), "loss.reconstruction": ("l1", "l2"),
    "loss.adversarial.loss": ("hinge", "non_saturating"), "loss.adversarial.norm": ("batch", "group", "none"),
    "optimizer.name": ("adamw", "adam"), "schedule.name": ("cosine", "constant", "exponential"),
    "perturbation.schedule": ("constant", "robustok"), "perturbation.progress": ("epoch", "step"),
    "training.precision": ("no", "bf16", "fp16"), "training.strategy": ("ddp", "fsdp"),
}
FREE_FORM = {"model.config", "model.init_parts"}  # checked against the family's config class instead


@lru_cache(maxsize=1)
def recipe_class() -> type:
    """:class:`Recipe` with the sections the registered families add (``recipe_sections``, e.g.
    ``loss.audio``): a subclass whose ``loss`` carries one more dataclass field per section."""
    from vistok.registry import contributions, resolve

    sections = contributions("recipe_sections")
    extra = []
    for path, (target, family) in sorted(sections.items()):
        parent, _, name = path.partition(".")
        if parent != "loss" or not name or "." in name or hasattr(Loss, name):
            raise RecipeError(f"family {family!r}: recipe section {path!r} must be a new loss.<name>")
        cls = resolve(target)
        extra.append((name, cls, field(default_factory=cls)))
    if not extra:
        return Recipe
    loss_cls = dataclasses.make_dataclass("Loss", extra, bases=(Loss,))
    return dataclasses.make_dataclass("Recipe", [("loss", loss_cls, field(default_factory=loss_cls))], bases=(Recipe,))


def choices() -> Dict[str, Sequence[str]]:
    """Every closed-set key and its values: the core's, the data kinds and objectives the families
    add, and the ``CHOICES`` a family's recipe section declares for its own keys."""
    from vistok.engine.objectives import available_objectives
    from vistok.registry import contributions, resolve

    out: Dict[str, Sequence[str]] = dict(CHOICES)
    out["data.kind"] = CORE_DATA_KINDS + tuple(sorted(contributions("data_kinds")))
    out["loss.kind"] = ("auto", *available_objectives())
    for path, (target, _) in contributions("recipe_sections").items():
        for key, values in getattr(resolve(target), "CHOICES", {}).items():
            out[f"{path}.{key}"] = tuple(values)
    return out


def _schema_paths(cls=None, prefix: str = "") -> Dict[str, Any]:
    cls = cls or recipe_class()
    paths = {}
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        paths[path] = default
        if dataclasses.is_dataclass(default) and path not in FREE_FORM:
            paths.update(_schema_paths(type(default), path + "."))
    return paths


# Names other trainers (the official TiTok configs, HF accelerate) use for our keys.
ALIASES = {
    "learning_rate": "optimizer.lr", "max_train_steps": "training.max_steps", "mixed_precision": "training.precision",
    "gradient_accumulation_steps": "training.grad_accum", "per_gpu_batch_size": "data.batch_size",
    "use_ema": "training.ema_decay", "discriminator_start": "loss.adversarial.start_step",
    "discriminator_learning_rate": "loss.adversarial.lr", "warmup_steps": "schedule.warmup_steps",
    "enable_tf32": "training.tf32", "lecam_regularization_weight": "loss.adversarial.lecam_weight",
}


def _suggest(path: str, valid: Sequence[str]) -> str:
    parent, _, leaf = path.rpartition(".")
    same_leaf = sorted((p for p in valid if p.rsplit(".", 1)[-1] == leaf), key=lambda p: p.count("."))
    siblings = [p for p in valid if p.rpartition(".")[0] == parent]
    near = (([ALIASES[leaf]] if leaf in ALIASES else []) or same_leaf
            or [f"{parent}.{m}" if parent else m
                for m in difflib.get_close_matches(leaf, [p.rpartition(".")[2] for p in siblings], n=1, cutoff=0.6)]
            or difflib.get_close_matches(path, valid, n=1, cutoff=0.5))
    return f"; did you mean {near[0]!r}?" if near else ""


def _check_keys(data: Any, where: str, prefix: str = "") -> None:
    valid = _schema_paths()
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        path = f"{prefix}{key}"
        if path not in valid:
            raise RecipeError(f"{where}: unknown key {path!r}{_suggest(path, list(valid))}")
        if isinstance(value, dict) and path not in FREE_FORM:
            _check_keys(value, where, path + ".")


def _check_model_config(recipe: Recipe, where: str) -> None:
    from vistok.registry import get_family

    try:
        family = get_family(recipe.model.family)
    except KeyError as err:
        raise RecipeError(f"{where}: model.family: {err.args[0]}") from None
    from vistok.models.config_check import config_class

    config_cls = config_class(family.model_class())
    if config_cls is None:
        return
    known = [f.name for f in dataclasses.fields(config_cls)]
    for key in recipe.model.config:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean 'model.config.{near[0]}'?" if near else f"; known: {', '.join(known)}"
            raise RecipeError(f"{where}: unknown key 'model.config.{key}' for family {recipe.model.family!r}{hint}")


def _check_choices(recipe: Recipe, where: str) -> None:
    for path, options in choices().items():
        value = OmegaConf.select(OmegaConf.structured(recipe), path)
        if value not in options:
            raise RecipeError(f"{where}: {path} must be one of {', '.join(options)}; got {value!r}")


#: (path, lowest, highest, whether the lowest is allowed): numbers outside make no sense for any run.
RANGES = (("data.batch_size", 1, None, True), ("data.val_batches", 0, None, True), ("data.image_size", 1, None, True),
          ("data.segment_seconds", 0, None, False), ("data.sample_rate", 1, None, True),
          ("training.max_steps", 1, None, True), ("training.grad_accum", 1, None, True),
          ("training.max_grad_norm", 0, None, True), ("training.ema_decay", 0, 1, True),
          ("training.max_bad_steps", 1, None, True), ("optimizer.lr", 0, None, False),
          ("optimizer.weight_decay", 0, None, True), ("perturbation.alpha", 0, 1, True),
          ("perturbation.beta", 0, 1, True), ("perturbation.delta", 1, None, True),
          ("loss.adversarial.weight", 0, None, True), ("loss.adversarial.start_step", 0, None, True),
          ("schedule.gamma", 0, 1, False),
          ("logging.log_every", 1, None, True), ("logging.eval_every", 1, None, True),
          ("logging.save_every", 1, None, True), ("logging.keep_last", 0, None, True),
          ("logging.rfid_images", 0, None, True))


def _check_ranges(recipe: Recipe, where: str) -> None:
    conf = OmegaConf.structured(recipe)
    for path, low, high, low_ok in RANGES:
        value = OmegaConf.select(conf, path)
        too_low = value < low if low_ok else value <= low
        if too_low or (high is not None and value > high):
            bound = f"{'>=' if low_ok else '>'} {low}" + (f" and <= {high}" if high is not None else "")
            raise RecipeError(f"{where}: {path} must be {bound}; got {value!r}")
    clip = recipe.loss.adversarial.max_grad_norm
    if clip is not None and not clip >= 0:
        raise RecipeError(f"{where}: loss.adversarial.max_grad_norm must be >= 0 (0: no clipping) or null "
                          f"(training.max_grad_norm); got {clip!r}")
    p = recipe.perturbation
    if p.alpha > 0 and p.beta == 0:
        raise RecipeError(f"{where}: perturbation.alpha={p.alpha} perturbs nothing with perturbation.beta=0.0 (the "
                          "fraction of each batch that is perturbed; train/robustok/ uses 0.1); set beta, or alpha=0")
    if p.beta > 0 and p.alpha == 0:
        raise RecipeError(f"{where}: perturbation.beta={p.beta} perturbs nothing with perturbation.alpha=0.0; "
                          "set alpha (the per-token probability), or beta=0")


def _check_finite(data: Any, where: str, prefix: str = "") -> None:
    """Refuse NaN and infinite numbers anywhere (a NaN learning rate passes every range check)."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        path = f"{prefix}{key}" if isinstance(data, dict) else f"{prefix.rstrip('.')}[{key}]"
        if isinstance(value, float) and not math.isfinite(value):
            raise RecipeError(f"{where}: {path} must be a finite number; got {value!r}")
        _check_finite(value, where, path + ".")


def _check_strategy(recipe: Recipe, where: str) -> None:
    """Refuse what cannot work with ``training.strategy=fsdp``, where each process holds only a
    shard of the parameters: the EMA copy, VQGAN's adaptive GAN weight (a gradient on the
    decoder's last weight) and periodic rFID all read the full parameters on every process, and
    the GAN losses freeze and address discriminator submodules by name, which a sharded wrapper
    does not keep (never run on GPUs here, so refused rather than left to fail mid-run)."""
    if recipe.training.strategy != "fsdp":
        return
    adv = recipe.loss.adversarial
    refused = [(recipe.training.ema_decay > 0, f"training.ema_decay={recipe.training.ema_decay} (set it to 0)"),
               (adv.weight > 0, f"loss.adversarial.weight={adv.weight} (a discriminator; set it to 0)"),
               (recipe.logging.rfid_images > 0, f"logging.rfid_images={recipe.logging.rfid_images} (set it to 0)")]
    for bad, what in refused:
        if bad:
            raise RecipeError(f"{where}: training.strategy=fsdp does not support {what}: it reads the full "
                              "parameters, which FSDP shards across processes; use training.strategy=ddp")


def parse_overrides(overrides: Sequence[str]) -> Dict[str, Any]:
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise RecipeError(f"override {item!r} is not of the form key.sub=value")
    for item in overrides:  # each alone first, so an error names the override at fault
        try:
            OmegaConf.from_dotlist([item])
        except (OmegaConfBaseException, yaml.YAMLError) as err:
            raise RecipeError(f"bad override {item!r}: {' '.join(str(err).split())}") from None
    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as err:
        raise RecipeError(f"bad override: {err}") from None


def load_recipe(path: Optional[Union[str, Path]] = None, overrides: Sequence[str] = ()) -> Recipe:
    """Defaults <- the YAML file <- the overrides, validated; returns a typed :class:`Recipe`."""
    layers = [OmegaConf.structured(recipe_class())]
    where = str(path) if path else "recipe"
    if path is not None:
        try:
            data = OmegaConf.to_container(OmegaConf.load(str(path)))
        except FileNotFoundError:
            raise RecipeError(f"{path}: recipe file not found") from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or type(err).__name__
            raise RecipeError(f"{path}: not valid YAML{at}: {problem}") from None
        except (OmegaConfBaseException, OSError, ValueError) as err:
            raise RecipeError(f"{path}: cannot read recipe ({err})") from None
        except RecursionError:
            raise RecipeError(f"{path}: cannot read recipe (nested too deeply)") from None
        if not isinstance(data, dict):
            raise RecipeError(f"{path}: a recipe must be a YAML mapping")
        _check_keys(data, where)
        layers.append(OmegaConf.create(data))
    extra = parse_overrides(overrides)
    _check_keys(extra, "command line")
    layers.append(OmegaConf.create(extra))
    try:
        merged = OmegaConf.merge(*layers)
    except OmegaConfBaseException as err:
        at = f" (key {err.full_key})" if getattr(err, "full_key", None) else ""
        raise RecipeError(f"{where}: {(str(err).strip().splitlines() or [type(err).__name__])[0]}{at}") from None
    try:
        recipe: Recipe = OmegaConf.to_object(merged)  # resolves ${...} interpolations
    except OmegaConfBaseException as err:
        at = f" (key {err.full_key})" if getattr(err, "full_key", None) else ""
        raise RecipeError(f"{where}: {(str(err).strip().splitlines() or [type(err).__name__])[0]}{at}") from None
    _check_finite(OmegaConf.to_container(OmegaConf.structured(recipe)), where)
    _check_choices(recipe, where)
    _check_ranges(recipe, where)
    _check_strategy(recipe, where)
    _check_model_config(recipe, where)
    return recipe


def recipe_to_dict(recipe: Recipe) -> Dict[str, Any]:
    """The resolved recipe as plain nested dicts (e.g. wandb's run config)."""
    return OmegaConf.to_container(OmegaConf.structured(recipe))


def recipe_to_yaml(recipe: Recipe) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(recipe))
