"""Each audio family's tokzoo codec beside its official implementation, with the same weights.

Used by ``eval/bench_codec.py``. The official model is built and randomised exactly as the family's
parity script does (its ``build_official`` / ``randomise`` are imported from ``eval/parity_<family>.py``,
not repeated here), saved in the official file layout and loaded into ours through our converter,
so both sides compute the same thing (the parity scripts prove ids equal and audio within 1e-4).
Without the official package the codec is built alone from its preset (random weights; speed does
not depend on their values) and the pair has no official side.

A :class:`Pair` hides each side's calling convention behind one: ``encode(wav) -> codes`` and
``decode(codes) -> audio`` with ``wav`` ``(B, C, T)`` at the model's rate, and ``ids(codes)`` giving
ids in our layout so the two sides' ids can be compared.

Adding a family is one entry in :data:`FAMILIES` (its configs, the official distribution, the scratch
venv that has it, a builder ``(config, wav, seed) -> Pair`` composed from its parity script's
``build_official`` / ``randomise``, and its rate and channels).
"""
from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "eval"))

from vistok.models.state_dict import load_strict, read_state_dict  # noqa: E402


def version(dist: str) -> Optional[str]:
    """The installed version of distribution ``dist``, or None."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@dataclass
class Side:
    """One implementation's calls: ``encode(wav (B, C, T)) -> codes``, ``decode(codes) -> audio``,
    ``ids(codes) -> ids`` in tokzoo's layout (for comparing the two sides)."""

    model: torch.nn.Module
    encode: Callable[[torch.Tensor], Any]
    decode: Callable[[Any], torch.Tensor]
    ids: Callable[[Any], torch.Tensor]


@dataclass
class Pair:
    """tokzoo's codec and (when its package is installed) the official one, same weights."""

    ours: Side
    official: Optional[Side]
    peer: str  # "<distribution> <version>[ <class>]", or why there is none
    sample_rate: int
    channels: int
    noisy_decode: bool = False  # decode draws random noise (SNAC): seed both sides alike to compare audio


@dataclass
class Family:
    """A family's benchmark entry: its display name, the configs it benchmarks, the official
    distribution, the scratch venv that has it (``eval/parity_<family>.py`` says how it was made), the
    builder ``(config, wav, seed) -> Pair`` (``wav``: the input, to draw codebooks around) and
    ``shape(config) -> (sample_rate, channels)`` (to make that input before building)."""

    label: str
    configs: List[str]
    dist: str
    venv: str
    build: Callable[[str, torch.Tensor, int], Pair]
    shape: Callable[[str], Tuple[int, int]]

    @property
    def installed(self) -> bool:
        return version(self.dist) is not None


def _mono(wav: torch.Tensor) -> torch.Tensor:
    return wav[:, 0]


# ----- EnCodec: the encodec package (eval/parity_encodec.py) -----

def encodec_pair(name: str, wav: torch.Tensor, seed: int) -> Pair:
    import parity_encodec as parity

    from audiotok.models.encodec import EnCodec, EnCodecConfig
    from audiotok.models.encodec.convert import convert_encodec_state_dict

    ours_model = EnCodec(EnCodecConfig.preset(name)).eval()
    mono = ours_model.config.channels == 1
    ours = Side(ours_model, lambda x: ours_model.encode_with_scales(_mono(x) if mono else x),
                lambda codes: ours_model.decode(*codes), lambda codes: codes.ids)
    if version("encodec") is None:
        return Pair(ours, None, "encodec not installed", ours_model.sample_rate, ours_model.config.channels)
    torch.manual_seed(seed)
    official = parity.build_official(name)
    parity.randomise(official, wav, seed + 1)
    official.set_target_bandwidth(official.target_bandwidths[-1])  # all levels, as ours encodes by default
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"encodec_{name}-random.th"
        torch.save(official.state_dict(), path)
        load_strict(ours_model, convert_encodec_state_dict(read_state_dict(path), ours_model.config), str(path))
    theirs = Side(official, official.encode, official.decode, lambda frames: torch.cat([c for c, _ in frames], -1))
    return Pair(ours, theirs, f"encodec {version('encodec')}", ours_model.sample_rate, ours_model.config.channels)


# ----- DAC: descript-audio-codec (eval/parity_dac.py) -----

def dac_pair(name: str, wav: torch.Tensor, seed: int) -> Pair:
    import parity_dac as parity

    from audiotok.models.dac import DAC, DACConfig
    from audiotok.models.dac.convert import convert_dac_state_dict, resolve_card_config

    def side(model):
        return Side(model, lambda x: model.encode(_mono(x)), model.decode, lambda ids: ids)

    if version("descript-audio-codec") is None:
        model = DAC(DACConfig.preset(name)).eval()
        return Pair(side(model), None, "descript-audio-codec not installed", model.sample_rate, 1)
    torch.manual_seed(seed)
    official = parity.build_official(name)
    parity.randomise(official, seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"weights_{name}-random.pth"
        official.save(str(path), package=False)
        model = DAC(resolve_card_config(parity.card_config(name), path, "dac")).eval()
        load_strict(model, convert_dac_state_dict(read_state_dict(path), model.config), str(path))
    theirs = Side(official, lambda x: parity.official_codes(official, x, None)[1],
                  lambda codes: parity.official_decode(official, codes), lambda codes: codes)
    return Pair(side(model), theirs, f"descript-audio-codec {version('descript-audio-codec')}", model.sample_rate, 1)


# ----- SNAC: the snac package (eval/parity_snac.py) -----

def snac_pair(name: str, wav: torch.Tensor, seed: int) -> Pair:
    import parity_snac as parity

    from audiotok.models.snac import SNAC, SNACConfig
    from audiotok.models.snac.convert import convert_snac_state_dict, resolve_card_config

    def side(model):
        return Side(model, lambda x: model.encode(_mono(x)), model.decode, lambda ids: ids)

    if version("snac") is None:
        model = SNAC(SNACConfig.preset(name)).eval()
        return Pair(side(model), None, "snac not installed", model.sample_rate, 1, noisy_decode=True)
    from snac import SNAC as Official

    torch.manual_seed(seed)
    official = Official(**parity.OFFICIAL_KWARGS[name]).eval()
    parity.randomise(official, seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(parity.OFFICIAL_KWARGS[name]))
        path = Path(tmp) / "pytorch_model.bin"
        torch.save(official.state_dict(), path)
        model = SNAC(resolve_card_config(parity.card_config(name), path, "snac")).eval()
        load_strict(model, convert_snac_state_dict(read_state_dict(path), model.config), str(path))
    theirs = Side(official, official.encode, official.decode, model.levels_to_ids)
    return Pair(side(model), theirs, f"snac {version('snac')}", model.sample_rate, 1, noisy_decode=True)


# ----- Mimi: moshi (eval/parity_mimi.py) -----

def mimi_pair(name: str, wav: torch.Tensor, seed: int) -> Pair:
    import parity_mimi as parity

    from audiotok.models.mimi import Mimi, MimiConfig
    from audiotok.models.mimi.convert import convert_mimi_state_dict

    cfg = MimiConfig()
    model = Mimi(cfg).eval()
    ours = Side(model, lambda x: model.encode(_mono(x)), model.decode, lambda ids: ids)
    if version("moshi") is None:
        return Pair(ours, None, "moshi not installed", model.sample_rate, 1)
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    official = parity.build_official(cfg)
    parity.randomise(official, _mono(wav), seed + 1)
    official.set_num_codebooks(cfg.num_quantizers)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tokenizer-checkpoint.safetensors"
        save_file({k: v.contiguous() for k, v in official.state_dict().items()}, str(path))
        load_strict(model, convert_mimi_state_dict(read_state_dict(path), cfg), str(path))
    theirs = Side(official, official.encode, official.decode, lambda codes: codes)
    return Pair(ours, theirs, f"moshi {version('moshi')}", model.sample_rate, 1)


# ----- WavTokenizer: transformers' WavTokenizerModel (eval/parity_wavtokenizer_hf.py) -----

def _has_transformers_wavtokenizer() -> bool:
    if version("transformers") is None:
        return False
    try:
        from transformers import WavTokenizerModel  # noqa: F401
    except ImportError:
        return False
    return True


@torch.no_grad()
def _wavtokenizer_alone(cfg, seed: int):
    """Our model alone, its codebook drawn around the encoder's output so every code is reachable."""
    from audiotok.models.wavtokenizer import WavTokenizer

    torch.manual_seed(seed)
    model = WavTokenizer(cfg).eval()
    z, _ = model.encoder(0.1 * torch.randn(2, 1, 48000))
    frames = z.transpose(1, 2).reshape(-1, z.shape[1])
    pick = torch.randint(0, frames.shape[0], (model.quantizer.codebook_size,))
    model.quantizer.embed.copy_(frames[pick] + 0.05 * torch.randn_like(frames[pick]))
    model.quantizer.initted.fill_(True)
    return model


def wavtokenizer_pair(name: str, wav: torch.Tensor, seed: int) -> Pair:
    from audiotok.models.wavtokenizer import WavTokenizer, WavTokenizerConfig
    from audiotok.models.wavtokenizer.convert import convert_wavtokenizer_state_dict

    cfg = WavTokenizerConfig.for_token_rate(int(name))  # the config of every wavtokenizer-*-<rate>-hf card

    def side(model):
        return Side(model, lambda x: model.encode(_mono(x)), model.decode, lambda ids: ids)

    if not _has_transformers_wavtokenizer():
        model = _wavtokenizer_alone(cfg, seed)
        return Pair(side(model), None, "transformers (WavTokenizerModel) not installed", model.sample_rate, 1)
    import parity_wavtokenizer_hf as parity
    from transformers import WavTokenizerModel

    torch.manual_seed(seed)
    official = WavTokenizerModel(parity.transformers_config(cfg)).eval()
    with torch.no_grad():
        parity.randomise(official, _mono(wav), seed + 1)
    _, _, state = parity.save_and_read(official)
    model = WavTokenizer(cfg).eval()
    load_strict(model, convert_wavtokenizer_state_dict(state, cfg), f"WavTokenizer {name} (save_pretrained)")
    theirs = Side(official, lambda x: official.encode(x).audio_codes, lambda codes: official.decode(codes).audio_values,
                  lambda codes: codes[:, 0])
    return Pair(side(model), theirs, f"transformers {version('transformers')} WavTokenizerModel", model.sample_rate, 1)


# ----- X-Codec 2: the xcodec2 package (eval/parity_xcodec2.py) -----

def xcodec2_pair(name: str, wav: torch.Tensor, seed: int) -> Pair:
    from audiotok.models.xcodec2 import XCodec2, XCodec2Config
    from audiotok.models.xcodec2.convert import convert_xcodec2_state_dict

    model = XCodec2(XCodec2Config()).eval()
    ours = Side(model, lambda x: model.encode(_mono(x)), model.decode, lambda ids: ids)
    if version("xcodec2") is None:
        return Pair(ours, None, "xcodec2 not installed", model.sample_rate, 1)
    if wav.shape[0] != 1:
        raise ValueError(f"xcodec2: the official encode_code takes one item; run with --batch 1, got {wav.shape[0]}")
    import parity_xcodec2 as parity
    from safetensors.torch import save_file

    parity._stub_imports()
    torch.manual_seed(seed)
    # the parity script builds the official w2v-BERT with 17 of the release's 24 layers (memory); the release
    # runs all 24 though it reads layer 16 only, so the official encode timed here is cheaper than the release's
    official = parity.build_official("full")
    parity.randomise(official, seed + 1, _mono(wav)[:1])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        save_file({k: v.contiguous() for k, v in official.state_dict().items()}, str(path))
        load_strict(model, convert_xcodec2_state_dict(read_state_dict(path), model.config), str(path))
    # the official encode_code takes one item: (1, T) in, ids (1, 1, L) out; decode_code gives (1, 1, T)
    theirs = Side(official, lambda x: official.encode_code(_mono(x)), official.decode_code, lambda ids: ids)
    return Pair(ours, theirs, f"xcodec2 {version('xcodec2')}", model.sample_rate, 1)


def _encodec_shape(name: str) -> Tuple[int, int]:
    from audiotok.models.encodec import EnCodecConfig

    cfg = EnCodecConfig.preset(name)
    return cfg.sample_rate, cfg.channels


def _dac_shape(name: str) -> Tuple[int, int]:
    from audiotok.models.dac import DACConfig

    return DACConfig.preset(name).sample_rate, 1


def _snac_shape(name: str) -> Tuple[int, int]:
    from audiotok.models.snac import SNACConfig

    return SNACConfig.preset(name).sample_rate, 1


def _mimi_shape(name: str) -> Tuple[int, int]:
    from audiotok.models.mimi import MimiConfig

    return MimiConfig().sample_rate, 1


def _wavtokenizer_shape(name: str) -> Tuple[int, int]:
    from audiotok.models.wavtokenizer import WavTokenizerConfig

    return WavTokenizerConfig.for_token_rate(int(name)).sample_rate, 1


FAMILIES: Dict[str, Family] = {
    "encodec": Family("EnCodec", ["24khz", "48khz"], "encodec", "/tmp/parity_venv", encodec_pair, _encodec_shape),
    "dac": Family("DAC", ["16khz", "24khz", "44khz"], "descript-audio-codec", "/tmp/parity_dac", dac_pair, _dac_shape),
    "snac": Family("SNAC", ["24khz", "32khz", "44khz"], "snac", "/tmp/parity_snac", snac_pair, _snac_shape),
    "mimi": Family("Mimi", ["full"], "moshi", "/tmp/parity_mimi", mimi_pair, _mimi_shape),
    "wavtokenizer": Family("WavTokenizer", ["40", "75"], "transformers", "/tmp/parity_venv", wavtokenizer_pair,
                           _wavtokenizer_shape),
    "xcodec2": Family("X-Codec 2", ["full"], "xcodec2", "/tmp/parity_xc2", xcodec2_pair, lambda name: (16000, 1)),
}
