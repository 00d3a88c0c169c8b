"""The published-setting recipes under train/ load, and the tokenizer each trains has exactly the
architecture of the released weights it reproduces (so the export loads where they load)."""
from pathlib import Path

import pytest

from vistok.engine.recipe import load_recipe
from vistok.hub.catalogue import get_card

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = sorted(p for p in (REPO / "train").rglob("*.yaml") if "demo" not in p.parts)
SAME_ARCHITECTURE = {
    **{f"titok/titok_{k}_stage{s}.yaml": f"titok-{k}" for k in ("s128", "b64", "l32") for s in (1, 2)},
    "titok/titok_bl64_vq8k_single_stage.yaml": "titok-bl64-vq8k",
}


def test_there_are_published_recipes():
    assert {str(p.relative_to(REPO / "train")) for p in PUBLISHED} >= set(SAME_ARCHITECTURE)


@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: str(p.relative_to(REPO / "train")))
def test_recipe_loads(path):
    recipe = load_recipe(path)
    assert recipe.training.max_steps >= 100_000 and recipe.data.image_size == 256


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
