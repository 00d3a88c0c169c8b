"""Fine-tuning zoo models: the CPU recipes under train/finetune/ start from the embedded defaults,
train only the decoder (the ids stay the released model's), lower the loss and export a model that
loads and reconstructs; the GAN can start from the discriminators a release ships, and a release
without any says so."""
import os
import subprocess
import sys

import pytest
import torch
import yaml

from tests.engine.conftest import REPO, metrics
from vistok import load_tokenizer
from vistok.engine.recipe import load_recipe

CORPUS = REPO.parent / "shared" / "corpus"
FAST = ["data.num_workers=0", "logging.progress=false", "logging.log_every=1", "logging.eval_every=1000",
        "logging.save_every=1000"]


def _train(recipe, out, *overrides, cache):
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONPATH=str(REPO), TOKZOO_CACHE=str(cache))
    args = [sys.executable, "-m", "vistok.engine.train", str(REPO / recipe), f"experiment.output_dir={out}",
            f"data.train={overrides[0]}", f"data.val={overrides[1]}", *FAST, *overrides[2:]]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, cwd=REPO)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _batch_loss(values):
    return sum(values) / len(values)


@pytest.mark.slow
@pytest.mark.skipif(not (CORPUS / "images/train").is_dir(), reason="needs the project corpus")
def test_image_finetune_recipe_trains_the_decoder_only(tmp_path):
    res = _train("train/finetune/tokzoo_demo_titok_64_cpu.yaml", tmp_path / "run", CORPUS / "images/train",
                 CORPUS / "images/val", "training.max_steps=40", "data.batch_size=8", cache=tmp_path / "cache")
    assert res.returncode == 0, res.stderr[-3000:]
    assert len([m for m in metrics(tmp_path / "run") if "loss/reconstruction" in m]) == 40
    base, tuned = load_tokenizer("tokzoo-demo-titok-64"), load_tokenizer(tmp_path / "run/export")
    # the loss falls: the recipe fine-tunes for the full token count (no tail drop), so on the same
    # training images the full-length reconstruction error is lower than the released model's
    from vistok.data.images import load_image

    fixed = torch.stack([load_image(p, 64) for p in sorted((CORPUS / "images/train").glob("*.jpg"))[:32]])
    with torch.no_grad():
        errors = [float((m.decode(m.encode(fixed)) - fixed).pow(2).mean()) for m in (base, tuned)]
    assert errors[1] < errors[0], errors
    assert _same(base.encoder, tuned.encoder) and _same(base.quantize, tuned.quantize)
    assert not _same(base.decoder, tuned.decoder)
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(base.encode(x), tuned.encode(x))  # the released ids, so a generator still fits
    assert tuned.decode(tuned.encode(x)).shape == x.shape


@pytest.mark.slow
@pytest.mark.skipif(not (CORPUS / "audio/music/train").is_dir(), reason="needs the project corpus")
def test_codec_finetune_recipe_adapts_the_decoder_to_music(tmp_path):
    res = _train("train/finetune/tokzoo_demo_wavtokenizer_speech_cpu.yaml", tmp_path / "run",
                 CORPUS / "audio/music/train", CORPUS / "audio/music/val", "training.max_steps=30",
                 "data.batch_size=4", cache=tmp_path / "cache")
    assert res.returncode == 0, res.stderr[-3000:]
    mel = [m["loss/mel"] for m in metrics(tmp_path / "run") if "loss/mel" in m]
    assert len(mel) == 30 and _batch_loss(mel[-8:]) < _batch_loss(mel[:8]), mel
    base, tuned = load_tokenizer("tokzoo-demo-wavtokenizer-speech"), load_tokenizer(tmp_path / "run/export")
    assert _same(base.encoder, tuned.encoder) and _same(base.quantizer, tuned.quantizer)
    assert not _same(base.backbone, tuned.backbone)
    wav = torch.randn(1, 24000) * 0.1
    assert torch.equal(base.encode(wav), tuned.encode(wav)) and tuned.decode(tuned.encode(wav)).shape == (1, 24000)


def test_published_finetune_recipes_are_valid_and_freeze_the_tokenizer_side():
    for name, frozen in (("titok_s128_finetune", {"encoder", "quantize"}),
                         ("wavtokenizer_small_75_finetune", {"encoder", "quantizer"})):
        recipe = load_recipe(REPO / "train/finetune" / f"{name}.yaml")
        assert recipe.model.init and set(recipe.model.freeze) == frozen
        text = (REPO / "train/finetune" / f"{name}.yaml").read_text()
        assert "What is trained" in text and "Frozen" in text
    codec = load_recipe(REPO / "train/finetune/wavtokenizer_small_75_finetune.yaml")
    assert codec.loss.adversarial.init == "wavtokenizer-small-75"


def _official_mrd_release(tmp_path, monkeypatch):
    """A card whose (packaged) Lightning-layout checkpoint holds an MRD under the official names."""
    from audiotok.discriminators import MultiResolutionDiscriminator
    from vistok.hub.download import sha256_of

    torch.manual_seed(3)
    mrd = MultiResolutionDiscriminator(num_embeddings=4)
    official = {}
    for key, value in mrd.state_dict().items():
        key = key.replace("projection.emb.", "emb.").replace("parametrizations.weight.original0", "weight_g")
        official["multiresddisc." + key.replace("parametrizations.weight.original1", "weight_v")] = value + 0.01
    site = tmp_path / "site" / "toyrelease"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("")
    torch.save({"state_dict": official}, site / "release.ckpt")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "toy.yaml").write_text(yaml.safe_dump(dict(
        name="toy-release", family="wavtokenizer", description="d", license="mit", converter="official", config={},
        source=dict(package="toyrelease:release.ckpt", sha256=sha256_of(site / "release.ckpt")))))
    monkeypatch.setenv("TOKZOO_ZOO_PATH", str(cards))
    return {k.replace("multiresddisc.", ""): v for k, v in official.items()}


def test_gan_starts_from_the_discriminators_the_release_ships(tmp_path, monkeypatch):
    from audiotok.objective import AudioObjective

    official = _official_mrd_release(tmp_path, monkeypatch)
    recipe = load_recipe(REPO / "train/demo/wavtokenizer_tiny.yaml", [
        "loss.adversarial.weight=1", "loss.audio.discriminators=[mrd]", "loss.adversarial.init=toy-release"])
    objective = AudioObjective(recipe, torch.device("cpu"))
    loaded = objective.adversarial.discriminators["mrd"].state_dict()
    assert torch.equal(loaded["discriminators.0.convs.0.bias"], official["discriminators.0.convs.0.bias"])
    assert torch.equal(loaded["discriminators.2.projection.emb.weight"], official["discriminators.2.emb.weight"])


def test_a_release_without_discriminators_says_so_by_name(tmp_path, monkeypatch):
    from vistok.engine.objectives.image import ImageObjective

    recipe = load_recipe(REPO / "train/demo/titok_tiny.yaml", ["loss.adversarial.weight=0.1",
                                                              "loss.adversarial.init=titok-s128"])
    with pytest.raises(ValueError, match=r"titok-s128 \(titok\) ships no discriminator"):
        ImageObjective(recipe, torch.device("cpu"))
