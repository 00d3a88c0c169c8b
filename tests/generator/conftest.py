"""Tiny generators, a tiny pixel-decoder TiTok saved with save_pretrained, and a labelled folder
of real photo crops (two classes)."""
from pathlib import Path

import pytest
import torch
from PIL import Image

from vistok.models.generator import ARGenerator
from vistok.models.titok import TiTok

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "vistok/assets/samples").glob("*.jpg"))

TINY_TITOK = dict(image_size=32, patch_size=8, encoder_size=dict(width=32, depth=1, heads=2),
                  decoder_size=dict(width=32, depth=1, heads=2), num_latent_tokens=8, codebook_size=64,
                  token_size=8, decoder="pixels", legacy_reshape=False)


def tiny_generator(**overrides) -> ARGenerator:
    config = dict(codebook_size=32, num_tokens=8, num_classes=4, size=dict(width=32, depth=2, heads=2),
                  class_dropout=0.1)
    config.update(overrides)
    return ARGenerator(config).eval()


@pytest.fixture
def generator() -> ARGenerator:
    return tiny_generator()


@pytest.fixture(scope="session")
def titok_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return TiTok(TINY_TITOK).save_pretrained(tmp_path_factory.mktemp("titok") / "tiny")


@pytest.fixture(scope="session")
def labelled_root(tmp_path_factory) -> Path:
    """root/cat/*.png (3 images), root/dog/*.jpg (2 images, one in a subfolder)."""
    root = tmp_path_factory.mktemp("labelled")
    layout = [("cat", "a.png"), ("cat", "b.png"), ("cat", "c.png"), ("dog", "x.jpg"), ("dog", "deep/y.jpg")]
    for i, (cls, name) in enumerate(layout):
        path = root / cls / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(SAMPLES[i % len(SAMPLES)]) as img:
            img = img.convert("RGB")
            x, y = (i * 37) % (img.width - 48), (i * 53) % (img.height - 48)
            img.crop((x, y, x + 48, y + 40)).save(path)
    return root
