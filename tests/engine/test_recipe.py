"""Recipes: defaults, YAML, command-line overrides, and helpful errors."""
import pytest

from vistok.engine.recipe import RecipeError, load_recipe, recipe_to_yaml

REPO_RECIPES = ["train/demo/titok_tiny.yaml"]


def _write(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_yaml_then_overrides(tmp_path):
    path = _write(tmp_path, "training:\n  max_steps: 7\nmodel:\n  config:\n    num_latent_tokens: 8\n")
    recipe = load_recipe(path, ["optimizer.lr=0.01", "loss.adversarial.weight=0.1", "model.config.codebook_size=64"])
    assert recipe.training.max_steps == 7 and recipe.optimizer.lr == 0.01
    assert recipe.loss.adversarial.weight == 0.1
    assert recipe.model.config == {"num_latent_tokens": 8, "codebook_size": 64}
    assert recipe.training.grad_accum == 1  # untouched defaults
    assert "max_steps: 7" in recipe_to_yaml(recipe)


@pytest.mark.parametrize("override, message", [
    ("training.lr=1", "unknown key 'training.lr'; did you mean 'optimizer.lr'"),
    ("optimizer.learning_rate=1", "unknown key 'optimizer.learning_rate'; did you mean 'optimizer.lr'"),
    ("trainig.max_steps=1", "unknown key 'trainig'; did you mean 'training'"),
    ("model.config.num_tokens=3", "unknown key 'model.config.num_tokens' for family 'titok'; "
                                  "did you mean 'model.config.num_latent_tokens'"),
    ("training.precision=fp8", "training.precision must be one of no, bf16, fp16"),
    ("training.max_steps=many", "training.max_steps"),
    ("model.family=nope", "unknown model family 'nope'"),
    ("max_steps", "not of the form key.sub=value"),
])
def test_bad_keys_and_values_are_named(override, message):
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_recipe(None, [override])


def test_bad_key_in_a_file_names_the_file(tmp_path):
    path = _write(tmp_path, "loss:\n  perceptual_wieght: 1.0\n")
    with pytest.raises(RecipeError, match=r"r\.yaml: unknown key 'loss.perceptual_wieght'; did you mean "
                                          r"'loss.perceptual_weight'"):
        load_recipe(path)
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "missing.yaml")


@pytest.mark.parametrize("path", REPO_RECIPES)
def test_shipped_recipes_resolve(path, monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("TOKZOO_DATA", "/data")
    recipe = load_recipe(Path(__file__).resolve().parents[2] / path)
    assert recipe.data.train == "/data/images/train"


@pytest.mark.parametrize("overrides, key", [
    (["training.ema_decay=0.999"], "training.ema_decay=0.999"),
    (["loss.adversarial.weight=0.1", "loss.adversarial.adaptive=false"], "loss.adversarial.weight=0.1"),
    (["logging.rfid_images=16"], "logging.rfid_images=16"),
])
def test_fsdp_refuses_what_reads_full_parameters(overrides, key):
    with pytest.raises(RecipeError, match=f"training.strategy=fsdp does not support {key}"):
        load_recipe(None, ["training.strategy=fsdp", *overrides])
    load_recipe(None, ["training.strategy=ddp", *overrides])  # fine with DDP


def test_fsdp_allows_a_plain_recipe():
    recipe = load_recipe(None, ["training.strategy=fsdp", "loss.adversarial.weight=0"])
    assert recipe.training.strategy == "fsdp"


def test_every_loss_kind_names_an_objective_class():
    import importlib

    from vistok.engine.objectives import OBJECTIVES, Objective, available_objectives
    from vistok.engine.recipe import choices

    known = available_objectives()
    assert set(choices()["loss.kind"]) - {"auto"} == set(known) and set(OBJECTIVES) < set(known)
    assert known["audio"] == "audiotok.objective:AudioObjective"  # added by the audio family's declaration
    for kind, target in known.items():
        module, name = target.split(":")
        assert issubclass(getattr(importlib.import_module(module), name), Objective), kind
