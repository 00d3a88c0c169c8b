"""The generator and RobusTok post-training through the training engine: token shards in,
a generator out that `tokzoo generate` loads; (generated, real) pairs in, a tokenizer whose
decoder alone has changed."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.generator.conftest import tiny_generator
from vistok.data.posttrain_pairs import write_posttrain_pairs
from vistok.data.tokens import TokenShardWriter
from vistok.engine.data import build_train_batches, build_val_batches
from vistok.engine.objectives import build_objective
from vistok.engine.recipe import load_recipe
from vistok.hub.loading import load_tokenizer
from vistok.models.generator import ARGenerator

REPO = Path(__file__).resolve().parents[2]
GENERATOR_RECIPE = REPO / "train/demo/generator_tiny.yaml"
POSTTRAIN_RECIPE = REPO / "train/robustok/robustok_posttrain_titok_b256.yaml"
TINY_GENERATOR = ["model.config.codebook_size=32", "model.config.num_tokens=8", "model.config.num_classes=2",
                  "model.config.size={width: 32, depth: 2, heads: 2}", "data.batch_size=16", "data.val_batches=2",
                  "optimizer.lr=3e-3", "schedule.warmup_steps=5", "training.max_steps=60", "logging.log_every=1",
                  "logging.eval_every=30", "logging.save_every=30", "logging.progress=false",
                  "experiment.deterministic=true"]


def rule_ids(labels, first, length=8, codebook=32):
    """Token sequences a model can learn: each id follows from the previous one and the label."""
    ids = [first]
    for _ in range(length - 1):
        ids.append((ids[-1] * 5 + 3 * labels + 1) % codebook)
    return torch.stack(ids, dim=1)


@pytest.fixture(scope="module")
def token_root(tmp_path_factory):
    """train/ (256 rows) and val/ (64 rows) token shards of two classes following ``rule_ids``."""
    root = tmp_path_factory.mktemp("tokens")
    gen = torch.Generator().manual_seed(0)
    for split, n, shard in (("train", 256, 100), ("val", 64, 64)):
        labels = torch.randint(0, 2, (n,), generator=gen)
        first = torch.randint(0, 32, (n,), generator=gen)
        with TokenShardWriter(root / split, 8, 32, {"num_classes": 2}, shard_size=shard) as writer:
            writer.add(rule_ids(labels, first), labels)
    return root


def run(recipe, out_dir, *overrides):
    args = [sys.executable, "-m", "vistok.engine.train", str(recipe), f"experiment.output_dir={out_dir}", *overrides]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    lines = (Path(out_dir) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _recipe(token_root, *overrides):
    return load_recipe(GENERATOR_RECIPE, [*TINY_GENERATOR, f"data.train={token_root}/train",
                                          f"data.val={token_root}/val", *overrides])


def test_token_batches_are_ids_and_labels(token_root):
    recipe = _recipe(token_root)
    ids, labels = next(iter(build_train_batches(recipe, rank=0, world_size=1)))
    assert ids.shape == (16, 8) and labels.shape == (16,) and ids.dtype == labels.dtype == torch.long
    assert torch.equal(ids, rule_ids(labels, ids[:, 0]))
    val = build_val_batches(recipe)
    assert len(val) == 2 and all(b[0].shape == (16, 8) and b[1].shape == (16,) for b in val)


def test_mismatches_are_named(token_root):
    recipe = _recipe(token_root, "model.config.codebook_size=64")
    with pytest.raises(ValueError, match=r"data.train .*codebook of 32.*codebook_size is 64"):
        build_objective(recipe, ARGenerator(recipe.model.config), "cpu")
    image_loss = _recipe(token_root, "loss.kind=image")
    with pytest.raises(ValueError, match="data.kind images, shards or audio, not 'tokens'"):
        build_objective(image_loss, ARGenerator(image_loss.model.config), "cpu")


@pytest.mark.slow
def test_generator_learns_from_token_shards_and_exports(token_root, tmp_path):
    out = tmp_path / "run"
    logged = run(GENERATOR_RECIPE, out, *TINY_GENERATOR, f"data.train={token_root}/train",
                 f"data.val={token_root}/val")
    losses = {m["step"]: m["loss/total"] for m in logged if "loss/total" in m}
    assert len(losses) == 60 and all(0.0 <= m["stats/token_accuracy"] <= 1.0 for m in logged if "loss/ce" in m)
    first, last = sum(losses[s] for s in range(1, 6)) / 5, sum(losses[s] for s in range(56, 61)) / 5
    assert first > 3.0 and last < 0.65 * first, (first, last)  # ln(32) = 3.47 at the start
    evals = [m for m in logged if "val/loss" in m]
    assert [m["step"] for m in evals] == [30, 60]
    assert all(math.isclose(m["val/perplexity"], math.exp(m["val/loss"]), rel_tol=1e-6) for m in evals)
    assert evals[1]["val/loss"] < evals[0]["val/loss"] and evals[1]["val/token_accuracy"] > 0.3
    # the export is a generator for `tokzoo generate` and for load_tokenizer alike
    model = ARGenerator.from_pretrained(out / "export")
    assert isinstance(load_tokenizer(out / "export"), ARGenerator)
    assert model.config.num_tokens == 8 and model.config.class_dropout == 0.1
    ids = model.generate(torch.tensor([0, 1]), temperature=0)
    follows = (ids[:, 1:] == rule_ids(torch.tensor([0, 1]), ids[:, 0])[:, 1:]).float().mean()
    assert follows > 0.5, ids  # chance: 1/32


@pytest.mark.slow
def test_posttrain_changes_only_the_decoder(labelled_root, titok_dir, tmp_path):
    tokenizer = load_tokenizer(titok_dir)
    pairs = tmp_path / "pairs"
    write_posttrain_pairs(tokenizer, tiny_generator(codebook_size=64, num_tokens=8, num_classes=2), labelled_root,
                          pairs, sigma=0.5, batch_size=5)
    out = tmp_path / "post"
    logged = run(POSTTRAIN_RECIPE, out, f"model.init={titok_dir}", f"data.train={pairs}",
                 f"data.real={labelled_root}", f"data.val={labelled_root}", "data.image_size=32",
                 "data.batch_size=4", "data.num_workers=0", "data.val_batches=1", "loss.perceptual_weight=0",
                 "loss.adversarial.channels=32", "loss.adversarial.num_layers=2", "optimizer.lr=2e-3",
                 "loss.adversarial.lr=2e-3", "schedule.warmup_steps=0", "training.precision='no'",
                 "training.ema_decay=0", "training.max_steps=12", "training.steps_per_epoch=null",
                 "logging.log_every=1", "logging.eval_every=12", "logging.save_every=12", "logging.progress=false",
                 "logging.tensorboard=false")
    rec = [m["loss/reconstruction"] for m in logged if "loss/reconstruction" in m]
    assert len(rec) == 12 and sum(rec[-3:]) < sum(rec[:3]), rec
    assert all("loss/discriminator" in m for m in logged if "loss/total" in m)  # the GAN is on from step 0
    assert any("val/psnr" in m for m in logged)
    assert "post-training updates: decoder" in (out / "events.log").read_text()
    before, after = load_file(str(titok_dir / "model.safetensors")), load_file(str(out / "export/model.safetensors"))
    assert before.keys() == after.keys()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"decoder"}, changed
    assert load_tokenizer(out / "export").config == tokenizer.config


def test_published_generator_and_posttrain_recipes():
    rar = load_recipe(REPO / "train/generator/rar_b_maskgit_vqgan.yaml")
    size = rar.model.config["size"]
    assert (size["width"], size["depth"], size["heads"]) == (768, 24, 16) and rar.model.config["num_tokens"] == 256
    assert (rar.optimizer.lr, rar.optimizer.weight_decay, rar.schedule.warmup_steps) == (4e-4, 0.03, 62_500)
    assert rar.data.kind == "tokens" and rar.data.batch_size * 32 == 2048
    post = load_recipe(POSTTRAIN_RECIPE)
    assert (post.data.kind, post.loss.kind, post.model.freeze) == ("pairs", "posttrain", ["encoder", "quantize"])
    assert post.optimizer.lr == post.loss.adversarial.lr == 5e-5 and post.loss.adversarial.start_step == 0
    assert post.perturbation.alpha == 0 and post.training.max_steps == 100 * post.training.steps_per_epoch
