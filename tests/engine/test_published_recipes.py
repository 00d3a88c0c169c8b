"""The published-setting recipes under train/ load, and the tokenizer each trains has exactly the
architecture of the released weights it reproduces (so the export loads where they load)."""
from pathlib import Path

import pytest

from vistok.engine.recipe import load_recipe
from vistok.hub.catalogue import get_card

REPO = Path(__file__).resolve().parents[2]
# from-scratch published recipes (the fine-tuning ones are checked in tests/engine/test_finetune.py)
PUBLISHED = sorted(p for p in (REPO / "train").rglob("*.yaml") if not {"demo", "finetune"} & set(p.parts))
SAME_ARCHITECTURE = {
    **{f"titok/titok_{k}_stage{s}.yaml": f"titok-{k}" for k in ("s128", "b64", "l32") for s in (1, 2)},
    "titok/titok_bl64_vq8k_single_stage.yaml": "titok-bl64-vq8k",
    "wavtokenizer/wavtokenizer_medium_speech_75.yaml": "wavtokenizer-medium-speech-75",
    "wavtokenizer/wavtokenizer_small_40.yaml": "wavtokenizer-small-40",
}


def test_there_are_published_recipes():
    assert {str(p.relative_to(REPO / "train")) for p in PUBLISHED} >= set(SAME_ARCHITECTURE)


@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: str(p.relative_to(REPO / "train")))
def test_recipe_loads(path):
    recipe = load_recipe(path)
    shortest = 10_000 if recipe.loss.kind == "posttrain" else 100_000  # RobusTok post-training: 100 short epochs
    assert recipe.training.max_steps >= shortest
    if recipe.data.kind == "audio":
        assert recipe.data.sample_rate == 24000 and recipe.data.segment_seconds == 3.0
    else:
        assert recipe.data.image_size == 256


@pytest.mark.parametrize("name,card", sorted(SAME_ARCHITECTURE.items()))
def test_recipe_trains_the_released_architecture(name, card):
    recipe = load_recipe(REPO / "train" / name)
    released = get_card(card).config
    ours = {k: v for k, v in recipe.model.config.items() if k != "commitment_cost"}  # a loss weight, not shape
    assert ours == {k: v for k, v in released.items() if k in ours} and set(released) <= set(ours) | {"commitment_cost"}


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
