"""A family from another distribution plugs in through its entry point alone: a toy tokenizer in
a temporary distribution (its own dist-info and ``tokzoo.families`` entry point, found by
importlib.metadata) is listed by ``tokzoo zoo list``, loads from a card whose weights ship in its
package, trains a step through ``tokzoo train`` and is scored by ``tokzoo eval rfid``; no tokzoo
file is edited."""
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from tests.metrics.conftest import inception_weights, photo_folder  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[2]

MODEL = '''
"""A toy image tokenizer: one strided convolution per 8x8 patch, a VQ codebook, one transposed convolution."""
from dataclasses import asdict, dataclass
from typing import Any, Dict, Union

import torch
from torch import nn

from vistok.models.base import ReconOut, Tokenizer
from vistok.quant import VectorQuantizer


@dataclass
class ToyConfig:
    image_size: int = 32
    patch: int = 8
    dim: int = 8
    codebook_size: int = 16

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class ToyTokenizer(Tokenizer):
    """Patch VQ: ids are a row-major grid of (image_size / patch)^2 codes."""

    family = "toy"
    config_class = ToyConfig

    def __init__(self, config: Union[ToyConfig, Dict[str, Any]]):
        super().__init__()
        self.config = config if isinstance(config, ToyConfig) else ToyConfig(**config)
        c = self.config
        self.encoder = nn.Conv2d(3, c.dim, c.patch, stride=c.patch)
        self.quantize = VectorQuantizer(c.codebook_size, c.dim)
        self.decoder = nn.ConvTranspose2d(c.dim, 3, c.patch, stride=c.patch)

    @property
    def num_tokens(self) -> int:
        return (self.config.image_size // self.config.patch) ** 2

    @property
    def last_layer_weight(self) -> torch.Tensor:
        return self.decoder.weight

    def token_quantizer(self):
        return self.quantize

    def quantizer_input(self, x, generator=None):
        return self.encoder(x).permute(0, 2, 3, 1)

    def ids_from_quantizer(self, indices):
        return indices.flatten(1)

    def encode(self, x):
        return self.ids_from_quantizer(self.quantize(self.quantizer_input(x)).indices)

    def decode(self, ids):
        side = self.config.image_size // self.config.patch
        z = self.quantize.decode_indices(ids.long().view(len(ids), side, side)).permute(0, 3, 1, 2)
        return self.decoder(z)

    def forward(self, x):
        q = self.quantize(self.quantizer_input(x))
        z = q.z_q.permute(0, 3, 1, 2)
        return ReconOut(recon=self.decoder(z), indices=q.indices.flatten(1), loss=q.loss, latent=z, stats=q.stats)
'''

FAMILY = '''
from vistok.registry import Family

FAMILY = Family("toy", "toyfam.model:ToyTokenizer", "image")
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """``site/``: the toyfam package (with its weights) and its dist-info; ``cards/``: its zoo card."""
    root = tmp_path_factory.mktemp("plugin")
    site, package = root / "site", root / "site" / "toyfam"
    (package / "weights").mkdir(parents=True)
    (package / "__init__.py").write_text('"""A tokzoo family plugin used by the tests."""\n')
    (package / "model.py").write_text(MODEL)
    (package / "family.py").write_text(FAMILY)
    info = site / "toyfam-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyfam\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[tokzoo.families]\ntoy = toyfam.family:FAMILY\n")

    sys.path.insert(0, str(site))
    try:
        from toyfam.model import ToyTokenizer

        torch.manual_seed(0)
        model = ToyTokenizer({"image_size": 32})
        from safetensors.torch import save_model

        save_model(model, str(package / "weights" / "toy.safetensors"))
    finally:
        sys.path.remove(str(site))
        for name in [m for m in sys.modules if m == "toyfam" or m.startswith("toyfam.")]:
            del sys.modules[name]
    digest = hashlib.sha256((package / "weights" / "toy.safetensors").read_bytes()).hexdigest()
    cards = root / "cards"
    cards.mkdir()
    card = dict(name="toy-tiny", family="toy", description="a toy tokenizer from a plugin distribution",
                source={"package": "toyfam:weights/toy.safetensors", "sha256": digest}, license="mit",
                converter="tokzoo", config={"image_size": 32})
    (cards / "toy-tiny.yaml").write_text(yaml.safe_dump(card))
    return root


def _tokzoo(plugin, *args, env=None):
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin / "site"), str(REPO)]),
               "TOKZOO_ZOO_PATH": str(plugin / "cards"), "TOKZOO_CACHE": str(plugin / "cache"),
               "OMP_NUM_THREADS": "1", **(env or {})}
    result = subprocess.run([sys.executable, "-m", "vistok.cli", *map(str, args)], capture_output=True, text=True,
                            env=environ, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_plugin_family_is_listed_loaded_trained_and_evaluated(plugin, photo_folder, inception_weights, tmp_path):  # noqa: F811
    listing = _tokzoo(plugin, "zoo", "list")
    assert any(line.split()[:2] == ["toy-tiny", "toy"] for line in listing.splitlines()), listing

    recipe = tmp_path / "toy.yaml"
    recipe.write_text(textwrap.dedent(f"""\
        experiment: {{name: toy, output_dir: {tmp_path / "run"}, seed: 0}}
        model: {{family: toy, init: toy-tiny}}
        data: {{train: {photo_folder}, val: {photo_folder}, image_size: 32, batch_size: 4, num_workers: 0, val_batches: 1}}
        loss: {{perceptual_weight: 0.0, adversarial: {{weight: 0.0}}}}
        training: {{max_steps: 1}}
        logging: {{progress: false, log_every: 1, eval_every: 1, save_every: 1}}
        """))
    _tokzoo(plugin, "train", recipe)
    export = tmp_path / "run" / "export"
    record = json.loads((export / "config.json").read_text())
    assert record["family"] == "toy" and record["config"]["image_size"] == 32
    steps = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(s.get("step") == 1 and "loss/total" in s for s in steps)

    weights = {"TOKZOO_INCEPTION_WEIGHTS": str(inception_weights.path)}
    for model in ("toy-tiny", export):
        out = tmp_path / f"rfid-{Path(str(model)).name}"
        _tokzoo(plugin, "eval", "rfid", "--model", model, "--data", photo_folder, "--image-size", 32,
                "--workers", 0, "--batch-size", 8, "--out", out, env=weights)
        result = json.loads((out / "result.json").read_text())
        assert result["protocol"]["tokenizer"]["family"] == "toy" and result["metrics"]["rfid"] > 0
