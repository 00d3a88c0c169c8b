"""The published-setting recipes under train/ load, the tokenizer each trains has exactly the
architecture of the released weights it reproduces (so the export loads where they load), and the
parameter count each header states is the one its model has."""
import dataclasses
import functools
import re
from pathlib import Path

import pytest
import torch

from vistok.engine.recipe import load_recipe
from vistok.engine import builders
from vistok.hub.catalogue import get_card

REPO = Path(__file__).resolve().parents[2]
# from-scratch published recipes (the fine-tuning ones are checked in tests/engine/test_finetune.py)
PUBLISHED = sorted(p for p in (REPO / "train").rglob("*.yaml") if not {"demo", "finetune"} & set(p.parts))
SAME_ARCHITECTURE = {
    **{f"titok/titok_{k}_stage{s}.yaml": f"titok-{k}" for k in ("s128", "b64", "l32") for s in (1, 2)},
    "titok/titok_bl64_vq8k_single_stage.yaml": "titok-bl64-vq8k",
    "wavtokenizer/wavtokenizer_medium_speech_75.yaml": "wavtokenizer-medium-speech-75",
    "wavtokenizer/wavtokenizer_small_40.yaml": "wavtokenizer-small-40",
    **{f"dac/dac_{k}.yaml": f"dac-{k}" for k in ("16khz", "24khz", "44khz")},
    **{f"snac/snac_{k}.yaml": f"snac-{k}" for k in ("24khz", "32khz", "44khz")},
}


def test_there_are_published_recipes():
    assert {str(p.relative_to(REPO / "train")) for p in PUBLISHED} >= set(SAME_ARCHITECTURE)


@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: str(p.relative_to(REPO / "train")))
def test_recipe_loads(path):
    recipe = load_recipe(path)
    shortest = 10_000 if recipe.loss.kind == "posttrain" else 100_000  # RobusTok post-training: 100 short epochs
    assert recipe.training.max_steps >= shortest
    if recipe.data.kind == "audio":  # the published crops: WavTokenizer 3 s, EnCodec (AudioCraft) 1 s, DAC 0.38 s
        crop = {"encodec": 1.0, "dac": 0.38, "snac": 0.38}.get(recipe.model.family, 3.0)  # SNAC: DAC's (none published)
        rate = recipe.model.config["sample_rate"] if recipe.model.family in ("dac", "snac") else 24000
        assert recipe.data.sample_rate == rate and recipe.data.segment_seconds == crop
    else:
        assert recipe.data.image_size == 256


@pytest.mark.parametrize("name,card", sorted(SAME_ARCHITECTURE.items()))
def test_recipe_trains_the_released_architecture(name, card):
    recipe = load_recipe(REPO / "train" / name)
    released = get_card(card).config
    training = {"commitment_cost", "quantizer_dropout", "commitment_weight", "codebook_weight"}  # not shapes
    ours = {k: v for k, v in recipe.model.config.items() if k not in training}
    assert ours == {k: v for k, v in released.items() if k in ours} and set(released) <= set(ours) | training


def test_stage2_starts_from_stage1_and_maskgit():
    recipe = load_recipe(REPO / "train/titok/titok_s128_stage2.yaml")
    assert recipe.model.init.endswith("titok-s128-stage1/export")
    assert recipe.model.freeze == ["encoder", "quantize"]
    assert set(recipe.model.init_parts.values()) == {"maskgit-vqgan-f16:decoder.", "maskgit-vqgan-f16:quantize.embed"}
    stage1 = load_recipe(REPO / "train/titok/titok_s128_stage1.yaml")
    assert stage1.loss.kind == "proxy_codes" and stage1.loss.proxy_teacher == "maskgit-vqgan-f16"


@pytest.mark.parametrize("name,params", [("wavtokenizer_medium_speech_75.yaml", 71_750_146),
                                         ("wavtokenizer_small_40.yaml", 72_111_714)])
def test_wavtokenizer_recipe_builds_at_full_size(name, params):
    """Generator and discriminators at the published sizes (parameter counts of the official
    modules); with dac_mode=published the discriminator optimiser holds MPD and MRD only, as the
    original's does, and the learning rate decays to 0 at the last step."""
    import torch

    from vistok.engine import builders
    from vistok.engine.objectives import build_objective

    recipe = load_recipe(REPO / "train/wavtokenizer" / name)
    audio = recipe.loss.audio
    assert (audio.dac_mode, audio.mel_weight, recipe.loss.quantizer_weight) == ("published", 45, 1000)
    model = builders.build_model(recipe)
    assert sum(p.numel() for p in model.parameters()) == params
    objective = build_objective(recipe, model, torch.device("cpu"))
    count = {n: sum(p.numel() for p in d.parameters()) for n, d in objective.discriminator.items()}
    assert count == {"mpd": 41_126_250, "mrd": 600_966, "dac": 42_519_760}
    d_opt = builders.build_optimizer(objective.discriminator, recipe)
    assert sum(p.numel() for g in d_opt.param_groups for p in g["params"]) == 41_126_250 + 600_966
    g_opt = builders.build_optimizer(model, recipe)
    assert g_opt.defaults["lr"] == 2e-4 and g_opt.defaults["betas"] == (0.9, 0.999)
    factor = builders.build_scheduler(g_opt, recipe).lr_lambdas[0]
    assert factor(0) == 1.0 and factor(recipe.training.max_steps) == pytest.approx(0.0, abs=1e-12)


# "# Parameters: 83.7M total, 52.9M trained (what is counted...": every parameter of the model the
# recipe builds (frozen parts included; buffers, discriminators, teachers and loss networks not),
# and those left trainable by model.freeze; the parenthesis may go on over the next comment lines.
PARAMETERS = re.compile(r"# Parameters: (\d+\.\d)M total, (\d+\.\d)M trained \((\S.*)$")


def _header(path):
    lines = path.read_text().splitlines()
    return lines[:next(i for i, line in enumerate(lines) if not line.startswith("#"))]


def _stated(path):
    found = [m for m in map(PARAMETERS.match, _header(path)) if m]
    assert len(found) == 1, f"{path}: the header needs one line '# Parameters: X.XM total, Y.YM trained (...)'"
    assert not [line for line in path.read_text().splitlines()[len(_header(path)):] if "# Parameters:" in line]
    return found[0].group(1), found[0].group(2)


@pytest.fixture
def defaults_only(monkeypatch):
    """Recipes read ${oc.env:NAME,default}: count what the defaults name, whatever this shell sets."""
    for name in {n for p in PUBLISHED for n in re.findall(r"oc\.env:(\w+)", p.read_text())}:
        monkeypatch.delenv(name, raising=False)


@functools.lru_cache(maxsize=None)
def _exports():
    return {f"{load_recipe(p).experiment.output_dir}/export": p for p in PUBLISHED}


def _config(path):
    """model.config as builders.build_model resolves it: over the config of the tokenizer that
    model.init names, when that is another published recipe's export (its config is theirs)."""
    recipe = load_recipe(path)
    config = dict(recipe.model.config)
    if recipe.model.init is not None:
        base = _exports().get(recipe.model.init.rstrip("/"))
        assert base is not None, f"{path}: model.init {recipe.model.init!r} is no published recipe's export"
        assert load_recipe(base).model.family == recipe.model.family
        config = {**_config(base), **config}
    return config


@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: str(p.relative_to(REPO / "train")))
def test_header_states_the_parameter_count(path, defaults_only):
    """Built on the meta device (no memory, no weights read: model.init / init_parts only copy
    weights of the same shapes); fails when a recipe's model changes size and its header does not."""
    total, trained = _stated(path)
    recipe = load_recipe(path)
    recipe.model = dataclasses.replace(recipe.model, config=_config(path), init=None, init_parts={})
    with torch.device("meta"):
        model = builders.build_model(recipe)  # the family's model from model.config, then model.freeze
    built = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert (f"{built / 1e6:.1f}", f"{trainable / 1e6:.1f}") == (total, trained), \
        f"{path.name}: builds {built:,} parameters, {trainable:,} trained; the header says {total}M, {trained}M"


def test_parameter_line_is_checked():
    assert PARAMETERS.match("# Parameters: 172.6M total, 86.1M trained (the tokenizer").groups()[:2] == ("172.6", "86.1")
    assert not PARAMETERS.match("# Parameters: 172.6M (the tokenizer)")
    assert not PARAMETERS.match("# Parameters: 172M total, 86M trained (the tokenizer)")


def test_robustok_recipes_use_the_official_optimisation():
    """qiuk2/RobusTok @c4c6760: main training scales lr 3e-5 and disc_lr 1e-4 by batch 1024 / 128,
    min 5e-5, 1 warm-up epoch; post-training does not scale (5e-5, min 1e-5); both have no weight
    decay, no clipping (the max_grad_norm default 0.0 wins) and EMA 0.9999 (update_ema's default)."""
    main = load_recipe(REPO / "train/robustok/robustok_main_titok_b256.yaml")
    post = load_recipe(REPO / "train/robustok/robustok_posttrain_titok_b256.yaml")
    for recipe in (main, post):
        assert (recipe.optimizer.weight_decay, recipe.training.max_grad_norm, recipe.training.ema_decay) == (0, 0, 0.9999)
        assert recipe.optimizer.betas == [0.9, 0.95] and recipe.schedule.warmup_steps == recipe.training.steps_per_epoch
    assert (main.optimizer.lr, main.loss.adversarial.lr) == (pytest.approx(3e-5 * 8), pytest.approx(1e-4 * 8))
    assert main.optimizer.lr * main.schedule.min_lr_ratio == pytest.approx(5e-5, rel=1e-5)
    assert main.loss.adversarial.start_step + 1 == 56 * main.training.steps_per_epoch
    assert post.optimizer.lr * post.schedule.min_lr_ratio == pytest.approx(1e-5) and not post.data.random_flip


@pytest.mark.parametrize("name,millions", [("snac/snac_24khz.yaml", 19.8), ("snac/snac_32khz.yaml", 54.5),
                                           ("snac/snac_44khz.yaml", 54.5), ("dac/dac_16khz.yaml", 74.2),
                                           ("dac/dac_24khz.yaml", 74.7), ("dac/dac_44khz.yaml", 76.7)])
def test_dac_and_snac_recipes_build_the_published_sizes(name, millions):
    """The generator at the size the release states (SNAC's README: 19.8 M, 54.5 M; DAC: its released
    weights), and DAC's discriminator at its published width (42,519,760 parameters), not a demo's."""
    from audiotok.discriminators import catalog

    recipe = load_recipe(REPO / "train" / name)
    with torch.device("meta"):
        model = builders.build_model(recipe)
        built = {n: getattr(catalog, n)(recipe.loss.audio)[0] for n in recipe.loss.audio.discriminators}
    assert f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}" == f"{millions:.1f}"
    assert {n: sum(p.numel() for p in d.parameters()) for n, d in built.items()} == {"dac_hann": 42_519_760}
