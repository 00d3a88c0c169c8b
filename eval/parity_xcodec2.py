"""Parity with the OFFICIAL X-Codec 2 implementation (the ``xcodec2`` 0.1.5 package on PyPI) and with
transformers' ``Xcodec2Model``.

What it proves: the official ``XCodec2Model`` is built with seeded random weights (its w2v-BERT
``from_pretrained`` calls replaced by a randomly initialised ``Wav2Vec2BertModel`` of the same
config, its ``AutoFeatureExtractor`` by ``SeamlessM4TFeatureExtractor``, which is what
facebook/w2v-bert-2.0 names; nothing is downloaded), its state dict is saved as safetensors, read
back with :func:`vistok.models.state_dict.read_state_dict`, converted by
:func:`audiotok.models.xcodec2.convert.convert_xcodec2_state_dict` and loaded *strictly* into
:class:`audiotok.models.xcodec2.XCodec2`. Cases: ``tiny`` (widths 32/64, 2 decoder layers, 16
semantic layers of width 32) and ``full`` (the release's sizes; the official w2v-BERT is built with
17 of its 24 layers, enough to check that the unused ones are dropped, to fit in memory).

Checked per case, fp32, eval mode, on real audio (a speech and a music clip from the corpus val
split and a bundled sample, 24 kHz resampled to 16 kHz; lengths 1.0 s + 37 samples, 0.8 s exactly
(a multiple of 320: the release's padding adds a whole frame) and 0.61 s):

- the log-mel features of the official feature extractor call in ``encode_code`` vs ours;
- the semantic hidden state (official ``hidden_states[16]``) vs our truncated encoder;
- ids, exact: official ``encode_code(wav)`` per clip (it only supports one item: its features come
  from ``wav[0]``) vs ours, alone and in one batch of unequal lengths (``lengths``);
- audio: official ``decode_code(ids)`` vs our ``decode``, from the same ids;
- with transformers 5.25: ``Xcodec2Model`` given our weights in its layout
  (:func:`~audiotok.models.xcodec2.convert.to_official_state_dict`, loaded strictly), fed each clip
  padded as its extractor pads (one sample, then to a multiple of 320: the official padding) and
  the SeamlessM4T features the official model uses: ids vs ours, decoded audio vs ours; and its
  layout converted back to ours loads strictly and reproduces our ids. Its own
  ``Xcodec2FeatureExtractor`` is not run: it needs ``torchaudio.compliance.kaldi``, and no torchaudio
  matching torch 2.14 is installable here.

Audio passes when ``max |ours - reference| <= 1e-4 * max |reference|``. The exit code is non-zero
when any check fails. Results go to ``eval/results/parity_xcodec2.{txt,json}`` (``--out``).

Weights: the official init, then (seeded) SnakeBeta parameters, weight-norm gains, biases and norm
weights perturbed so none is an identity, and the FSQ input projection scaled so the bounded latent
spans the 4 levels (random codecs otherwise put every frame on one code). The number of distinct
ids and the smallest distance of a bounded latent to a rounding boundary are reported.

Running it (the official package is imported, never copied into this repository)::

    python -m venv --system-site-packages /tmp/parity_xc2
    /tmp/parity_xc2/bin/pip install transformers==5.25.0 einops==0.8.0
    /tmp/parity_xc2/bin/pip install --no-deps vector-quantize-pytorch==1.17.8 torchtune einx xcodec2==0.1.5
    /tmp/parity_xc2/bin/python eval/parity_xcodec2.py [--quick]

``--quick`` runs only the tiny case. torchtune and torchaudio are not importable there (torchtune
needs torchao, torchaudio a matching torch): the script loads torchtune's
``modules/position_embeddings.py`` file alone and stubs ``torchaudio``, which the official code
imports without using.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import gc
import glob
import importlib.machinery
import importlib.util
import platform
import site
import sys
import tempfile
import types
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audiotok.dsp import resample  # noqa: E402
from audiotok.models.xcodec2 import XCodec2, XCodec2Config  # noqa: E402
from audiotok.models.xcodec2.convert import convert_xcodec2_state_dict, to_official_state_dict  # noqa: E402
from audiotok.nn.kaldi_fbank import w2v_bert_features  # noqa: E402
from vistok.models.state_dict import load_strict, read_state_dict  # noqa: E402
from parity_report import Report, write as write_report  # noqa: E402

CORPUS = REPO.parent / "shared/corpus/audio"
SAMPLES = REPO / "audiotok/assets/samples"
TOL = 1e-4
LENGTHS = [16037, 12800, 9760]
TINY = dict(encoder_dim=4, hidden_dim=64, semantic_dim=32, semantic_layers=16, semantic_heads=2, semantic_ffn_dim=64,
            decoder_layers=2, decoder_heads=4, decoder_ffn_dim=256)


def _version(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _stub_imports() -> None:
    """torchaudio: imported by the official code, unused; torchtune: only its RoPE module file."""
    import transformers  # noqa: F401  (before the torchaudio stub: transformers probes for it)

    stub = types.ModuleType("torchaudio")
    stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
    sys.modules.setdefault("torchaudio", stub)
    path = glob.glob(site.getsitepackages()[0] + "/torchtune/modules/position_embeddings.py")[0]
    spec = importlib.util.spec_from_file_location("torchtune.modules.position_embeddings", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("torchtune", "torchtune.modules"):
        pkg = types.ModuleType(name)
        pkg.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules[name] = pkg
    sys.modules["torchtune"].modules = sys.modules["torchtune.modules"]
    sys.modules["torchtune.modules"].RotaryPositionalEmbeddings = module.RotaryPositionalEmbeddings


def clips() -> List[torch.Tensor]:
    """Three 16 kHz mono clips of LENGTHS samples (speech, music, a bundled sample)."""
    import soundfile as sf

    out = []
    need = -(-max(LENGTHS) * 24000 // 16000) + 64
    for source, n in zip((sorted((CORPUS / "speech" / "val").glob("*.flac")),
                          sorted((CORPUS / "music" / "val").glob("*.flac")), sorted(SAMPLES.glob("*.flac"))), LENGTHS):
        for path in source:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
            if rate == 24000 and data.shape[0] >= need:
                wav = resample(torch.from_numpy(data.mean(1)[:need].copy())[None], 24000, 16000)[0]
                out.append(wav[:n].contiguous())
                break
        else:
            raise SystemExit(f"need a 24 kHz clip of >= {need} samples in each of {CORPUS}/*/val and {SAMPLES}")
    return out


# ----- the official model -----

def build_official(case: str):
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel
    import xcodec2.modeling_xcodec2 as mx
    from xcodec2.configuration_bigcodec import BigCodecConfig

    tiny = case == "tiny"
    w2v = Wav2Vec2BertConfig(hidden_size=32, num_hidden_layers=17, num_attention_heads=2, intermediate_size=64) \
        if tiny else Wav2Vec2BertConfig(num_hidden_layers=17)
    w2v.output_hidden_states = True

    class RandomW2vBert:
        @staticmethod
        def from_pretrained(name, **kwargs):
            return Wav2Vec2BertModel(w2v)

    class Extractor:
        @staticmethod
        def from_pretrained(name, **kwargs):
            return SeamlessM4TFeatureExtractor(padding_value=1.0)  # facebook/w2v-bert-2.0's preprocessor

    originals = (mx.Wav2Vec2BertModel, mx.AutoFeatureExtractor, mx.CodecEncoder_Transformer, mx.CodecDecoderVocos)
    mx.Wav2Vec2BertModel, mx.AutoFeatureExtractor = RandomW2vBert, Extractor
    try:
        if tiny:
            mx.CodecEncoder_Transformer = functools.partial(originals[2], ngf=4, hidden_dim=64)
            mx.CodecDecoderVocos = functools.partial(originals[3], hidden_dim=64, depth=2, heads=4, pos_meb_dim=16,
                                                     vq_dim=96)
            model = mx.XCodec2Model(BigCodecConfig(semantic_hidden_size=32))
            model.fc_prior = torch.nn.Linear(96, 96)  # hard-coded 2048 in the release
            model.fc_post_a = torch.nn.Linear(96, 64)
        else:
            model = mx.XCodec2Model(BigCodecConfig())
    finally:
        mx.Wav2Vec2BertModel, mx.AutoFeatureExtractor, mx.CodecEncoder_Transformer, mx.CodecDecoderVocos = originals
    return model.eval()


@torch.no_grad()
def randomise(official, seed: int, wav: torch.Tensor) -> None:
    gen = torch.Generator().manual_seed(seed)
    for name, p in official.named_parameters():
        if name.endswith(("act.alpha", "act.bias")):
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
        elif name.endswith("original0"):
            p.mul_(1 + 0.2 * torch.randn(p.shape, generator=gen))
        elif name.endswith("bias") or "norm" in name:
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    # spread the FSQ input over the 4 levels: scale project_in to a latent std of 1.5
    latent = fsq_input(official, wav)
    official.generator.quantizer.project_in.weight.mul_(1.5 / float(latent.std()))
    official.generator.quantizer.project_in.bias.mul_(1.5 / float(latent.std()))


def official_features(official, wav: torch.Tensor) -> torch.Tensor:
    """What ``encode_code`` feeds its semantic model for a (1, T) waveform."""
    import torch.nn.functional as F

    pad = 320 - wav.shape[1] % 320
    padded = F.pad(wav, (0, pad))
    return official.feature_extractor(F.pad(padded[0, :].cpu(), (160, 160)), sampling_rate=16000,
                                      return_tensors="pt").input_features


@torch.no_grad()
def fsq_input(official, wav: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    padded = F.pad(wav, (0, 320 - wav.shape[1] % 320))
    hidden = official.semantic_model(official_features(official, wav)).hidden_states[16].transpose(1, 2)
    semantic = official.SemanticEncoder_module(hidden)
    acoustic = official.CodecEnc(padded[:, None]).transpose(1, 2)
    fused = official.fc_prior(torch.cat([semantic, acoustic], dim=1).transpose(1, 2))
    return official.generator.quantizer.project_in(fused)


def boundary_gap(official, wav: torch.Tensor) -> float:
    """Smallest distance of the (twice) bounded FSQ latent to a rounding boundary (x.5)."""
    fsq = official.generator.quantizer.layers[0]
    z = fsq.bound(fsq.bound(fsq_input(official, wav)))
    return float((z - z.floor() - 0.5).abs().min())


# ----- checks -----

def run_case(case: str, report: Report, seed: int, wavs: List[torch.Tensor]) -> Dict[str, Any]:
    torch.manual_seed(seed)
    official = build_official(case)
    randomise(official, seed + 1, wavs[0][None])
    with tempfile.TemporaryDirectory() as tmp:
        from safetensors.torch import save_file

        path = Path(tmp) / "model.safetensors"
        save_file({k: v.contiguous() for k, v in official.state_dict().items()}, str(path))
        state = read_state_dict(path)
    config = XCodec2Config(**(TINY if case == "tiny" else {}))
    ours = XCodec2(config).eval()
    converted = convert_xcodec2_state_dict(state, config)
    load_strict(ours, converted, "official safetensors")
    report.exact(case, f"strict load of the official layout ({len(state)} keys -> {len(converted)})", True)
    n_ours = sum(p.numel() for p in ours.parameters())
    info: Dict[str, Any] = dict(case=case, params=n_ours, lengths=LENGTHS, unique_ids=0, min_gap=1.0)
    batch = torch.zeros(len(wavs), max(LENGTHS))
    for i, w in enumerate(wavs):
        batch[i, : w.shape[0]] = w
    with torch.no_grad():
        singles = []
        for i, w in enumerate(wavs):
            x = w[None]
            padded = torch.nn.functional.pad(x[0], (0, ours.padded_length(x.shape[1]) - x.shape[1]))
            report.tensor(case, f"clip {i} ({x.shape[1]} samples): log-mel features vs SeamlessM4TFeatureExtractor",
                          w2v_bert_features(torch.nn.functional.pad(padded, (160, 160)))[None],
                          official_features(official, x), TOL)
            feats = official_features(official, x)
            report.tensor(case, f"clip {i}: semantic hidden state (w2v-BERT layer 16)", ours.semantic(feats),
                          official.semantic_model(feats).hidden_states[16], TOL)
            ref_ids = official.encode_code(x)
            ids = ours.encode(x)
            singles.append(ids)
            report.ids(case, f"clip {i}: ids {tuple(ref_ids.shape)} vs official encode_code", ids, ref_ids)
            ref_audio = official.decode_code(ref_ids)[:, 0]
            report.tensor(case, f"clip {i}: decode(ids) {tuple(ref_audio.shape)} vs official decode_code",
                          ours.decode(ref_ids), ref_audio, TOL)
            info["unique_ids"] += int(ids.unique().numel())
            info["min_gap"] = min(info["min_gap"], boundary_gap(official, x))
        lengths = torch.tensor(LENGTHS)
        batched = ours.encode(batch, lengths=lengths)
        ok = all(torch.equal(batched[i, :, : s.shape[-1]], s[0]) and bool((batched[i, :, s.shape[-1]:] == -1).all())
                 for i, s in enumerate(singles))
        report.exact(case, f"batch of unequal lengths {tuple(batched.shape)} == each clip alone (official ids)", ok)
        audio = ours.decode(batched)
        ok_audio = all(report.tensor(case, f"batched decode, clip {i} vs official decode_code alone",
                                     audio[i:i + 1, : s.shape[-1] * 320], official.decode_code(s)[:, 0], TOL)
                       for i, s in enumerate(singles))
        del ok_audio
    del official, state, converted
    gc.collect()
    if _version("transformers"):
        transformers_checks(case, ours, wavs, singles, report)
    return info


def transformers_checks(case: str, ours: XCodec2, wavs: List[torch.Tensor], singles, report: Report) -> None:
    from transformers import Xcodec2Config, Xcodec2Model

    cfg = ours.config
    hf_config = Xcodec2Config(
        hidden_size=cfg.hidden_dim, intermediate_size=cfg.decoder_ffn_dim, num_hidden_layers=cfg.decoder_layers,
        num_attention_heads=cfg.decoder_heads, num_key_value_heads=cfg.decoder_heads,
        head_dim=cfg.hidden_dim // cfg.decoder_heads, encoder_hidden_size=cfg.encoder_dim,
        downsampling_ratios=list(cfg.strides), quantization_dim=cfg.fused_dim, quantization_levels=list(cfg.fsq_levels),
        semantic_model_config=dict(model_type="wav2vec2-bert", hidden_size=cfg.semantic_dim,
                                   num_hidden_layers=cfg.semantic_layers, num_attention_heads=cfg.semantic_heads,
                                   intermediate_size=cfg.semantic_ffn_dim))
    hf = Xcodec2Model(hf_config).eval()
    theirs = to_official_state_dict(ours.state_dict(), cfg, "transformers")
    result = hf.load_state_dict(theirs, strict=False)
    # masked_spec_embed: SpecAugment's training-time mask vector, unused at inference and not ours
    missing = [k for k in result.missing_keys if not k.endswith("masked_spec_embed")]
    report.exact(case, f"transformers Xcodec2Model loads our weights in its layout ({len(theirs)} keys; "
                       "only its unused masked_spec_embed left)", not missing and not result.unexpected_keys,
                 f"missing {result.missing_keys[:3]} unexpected {result.unexpected_keys[:3]}")
    back = XCodec2(cfg).eval()
    load_strict(back, convert_xcodec2_state_dict(hf.state_dict(), cfg), "transformers state dict")
    report.exact(case, "transformers layout converts back and loads strictly", True)
    from transformers import SeamlessM4TFeatureExtractor

    extractor = SeamlessM4TFeatureExtractor(padding_value=1.0)
    with torch.no_grad():
        for i, s in enumerate(singles):
            x = wavs[i][None]
            padded = torch.nn.functional.pad(x, (0, ours.padded_length(x.shape[1]) - x.shape[1]))
            feats = extractor(torch.nn.functional.pad(padded[0], (160, 160)), sampling_rate=16000,
                              return_tensors="pt").input_features
            codes = hf.encode(padded[:, None], input_features=feats).audio_codes
            report.ids(case, f"clip {i}: transformers encode vs ours", codes, s)
            ref_audio = hf.decode(audio_codes=s).audio_values[:, 0]
            report.tensor(case, f"clip {i}: transformers decode vs ours (same ids)", ours.decode(s), ref_audio, TOL)
            report.ids(case, f"clip {i}: weights back from transformers' layout give the same ids",
                       back.encode(x), s)


def write(report: Report, extra: Dict[str, Any], out: Path) -> bool:
    header = [
        "Parity: tokzoo X-Codec 2 vs the official xcodec2 package and transformers' Xcodec2Model (seeded random weights)",
        f"date {extra['date']}  torch {extra['torch']}  device cpu  {platform.machine()} threads "
        f"{torch.get_num_threads()}  fp32",
        f"command: {extra['command']}",
        f"xcodec2 {extra['xcodec2']}  vector-quantize-pytorch {extra['vector-quantize-pytorch']}  "
        f"torchtune {extra['torchtune']} (position_embeddings.py only)  transformers {extra['transformers']}",
        "inputs: a speech and a music clip (corpus */val) and a bundled sample (audiotok/assets/samples), 24 kHz "
        f"mono resampled to 16 kHz with audiotok.dsp.resample, {LENGTHS} samples",
    ]
    notes = [f"{i['case']}: {i['params']:,} parameters (ours), {i['unique_ids']} distinct ids over the clips, "
             f"smallest distance of a bounded FSQ latent to a rounding boundary {i['min_gap']:.3e}"
             for i in extra["cases"]]
    return write_report(report, extra, out, header, notes, case_width=5, check_width=86)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the tiny case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "eval/results/parity_xcodec2"))
    args = parser.parse_args(argv)
    if not _version("xcodec2"):
        raise SystemExit("the official xcodec2 package is not installed (see this script's docstring)")
    warnings.filterwarnings("ignore")
    _stub_imports()
    report = Report()
    wavs = clips()
    infos = [run_case(case, report, args.seed, wavs) for case in (["tiny"] + ([] if args.quick else ["full"]))]
    extra = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "torch": torch.__version__, "xcodec2": _version("xcodec2"),
             "vector-quantize-pytorch": _version("vector-quantize-pytorch"), "torchtune": _version("torchtune"),
             "transformers": _version("transformers") or "not installed (its layout unchecked)",
             "command": "python eval/parity_xcodec2.py " + " ".join(argv if argv is not None else sys.argv[1:]),
             "cases": infos}
    return 0 if write(report, extra, Path(args.out)) else 1


if __name__ == "__main__":
    sys.exit(main())
