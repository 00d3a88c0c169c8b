"""Parity with the OFFICIAL WavTokenizer inference modules (jishengpeng/WavTokenizer).

What it proves: for each case, the official ``decoder.pretrained.WavTokenizer`` (feature extractor
= EnCodec SEANet encoder + quantizer, Vocos backbone, iSTFT head), imported at run time from the
source tree given on the command line, is built with seeded random weights; its ``state_dict()``
is written as a Lightning-style ``.ckpt`` (``{"state_dict": ..., "epoch": ..}``, plus dummy
discriminator / mel-loss keys the converter must drop), read back with
:func:`vistok.models.state_dict.read_state_dict` (``torch.load(weights_only=True)``), converted by
:func:`audiotok.models.wavtokenizer.convert.convert_wavtokenizer_state_dict` and loaded *strictly* into
:class:`audiotok.models.wavtokenizer.WavTokenizer`. The same weights renamed into the transformers
layout (``swiss-ai/*``: the renaming rules of transformers' conversion script) must convert to the
identical state dict, and :func:`~audiotok.models.wavtokenizer.convert.infer_config` /
:func:`~audiotok.models.wavtokenizer.convert.config_from_official_yaml` must recover the config.

Checked per case, fp32, eval mode, on real speech from the corpus (a batch of two clips whose
length is not a multiple of the hop, so the encoder's extra right padding is exercised):

- encoder latents (``max |ours - official|``),
- token ids, exact (official ``encode_infer`` codes ``(1, B, L)`` vs ours ``(B, L)``),
- decoded audio from the official ids (official ``codes_to_features`` + ``decode`` with
  ``bandwidth_id=0`` vs ours ``decode``), which tests backbone + iSTFT head alone,
- the same in float64 (encoder latent and decoder), showing fp32 differences are rounding.

With a real torchaudio importable, :mod:`audiotok.dsp` is also compared with it (mel spectrogram,
filterbank, resampling). Tensors pass when ``max |diff| <= 1e-4`` in fp32 (relative to ``max |official|``
is reported) and
``<= 1e-9`` in fp64. The exit code is non-zero when any check fails. Results go to
``eval/results/parity_wavtokenizer.{txt,json}`` (``--out`` to change).

Weights: the official modules keep their own init under ``torch.manual_seed``, then (seeded)
every norm weight/bias, AdaLN row, layer scale and weight-norm gain is perturbed so that none is
an identity, and the codebook (all zeros and "not initialised" in a fresh official model, which
would make it run k-means on the first call) is drawn around the official encoder's output frames
on the clips, so many different codes are used (the count and the smallest top-1/top-2 distance
gap over all frames are reported; with thousands of frames some gaps are small, which is why the
latent rows matter: equal latents make equal ids meaningful rather than lucky).

Getting the official tree (its code is never copied into this repository; it is imported from the
directory given, at run time)::

    git clone https://github.com/jishengpeng/WavTokenizer /tmp/official/wavtokenizer
    # or from a bare mirror: git --git-dir=MIRROR archive HEAD | tar -x -C /tmp/official/wavtokenizer
    python eval/parity_wavtokenizer.py /tmp/official/wavtokenizer [--git-dir MIRROR] [--quick]

The official code imports torchaudio at module level (for ``_hz_to_mel`` in an unused head and a
resampler in an unused helper); when torchaudio cannot be imported, a stub module providing just
those names is installed in ``sys.modules`` (recorded in the output). It also needs einops,
pyyaml, numpy, scipy and huggingface_hub. ``--quick`` runs only the small config.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import math
import platform
import subprocess
import sys
import tempfile
import types
import warnings
from pathlib import Path
from typing import Any, Dict, List

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audiotok.models.wavtokenizer import WavTokenizer, WavTokenizerConfig  # noqa: E402
from vistok.models.state_dict import read_state_dict  # noqa: E402
from vistok.models.state_dict import load_strict  # noqa: E402
from audiotok.models.wavtokenizer.convert import (  # noqa: E402
    config_from_official_yaml, convert_wavtokenizer_state_dict, infer_config,
)
from parity_report import Report, write as write_report  # noqa: E402  (eval/ is on sys.path)

SPEECH = sorted((REPO.parent / "shared/corpus/audio/speech/val").glob("*.flac"))
TOL32, TOL64 = 1e-4, 1e-9


def install_torchaudio_stub() -> str:
    """Use the real torchaudio when it imports; otherwise a stub with the names the official
    inference path touches at import time (none of them is called on that path)."""
    try:
        import torchaudio  # noqa: F401

        return f"torchaudio {torchaudio.__version__}"
    except Exception:  # noqa: BLE001 - any import failure (missing, or an ABI mismatch)
        pass
    ta = types.ModuleType("torchaudio")
    functional = types.ModuleType("torchaudio.functional")
    inner = types.ModuleType("torchaudio.functional.functional")
    inner._hz_to_mel = lambda f, mel_scale="htk": 2595.0 * math.log10(1.0 + f / 700.0)
    inner._mel_to_hz = lambda m, mel_scale="htk": 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    transforms = types.ModuleType("torchaudio.transforms")

    class _Unused(torch.nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()

        def forward(self, *args, **kwargs):
            raise RuntimeError("torchaudio stub: not available in the parity run")

    transforms.MelSpectrogram = transforms.Resample = transforms.Spectrogram = _Unused
    functional.functional = inner
    ta.functional, ta.transforms = functional, transforms
    ta.load = ta.save = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("torchaudio stub"))
    for name, module in [("torchaudio", ta), ("torchaudio.functional", functional),
                         ("torchaudio.functional.functional", inner), ("torchaudio.transforms", transforms)]:
        sys.modules[name] = module
    return "torchaudio stub (real torchaudio not importable)"


def official_commit(tree: Path, git_dir: str | None) -> str:
    for cmd in (["git", "-C", str(tree), "rev-parse", "HEAD"],
                ["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"] if git_dir else None):
        if cmd is None:
            continue
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
    return "unknown"


def tree_hash(tree: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(list((tree / "decoder").glob("*.py")) + list((tree / "encoder").rglob("*.py"))):
        h.update(str(path.relative_to(tree)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def speech_batch(samples: int) -> torch.Tensor:
    """Two real speech clips (24 kHz mono FLAC from the corpus), cut to ``samples``."""
    import soundfile as sf

    clips = []
    for path in SPEECH:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        if rate == 24000 and data.shape[0] >= samples:
            clips.append(torch.from_numpy(data.mean(1)[:samples].copy()))
        if len(clips) == 2:
            return torch.stack(clips)
    raise SystemExit(f"need two speech clips of >= {samples} samples under {SPEECH[0].parent if SPEECH else '?'}")


# ----- the official model -----

def build_official(case: Dict[str, Any]):
    from decoder.feature_extractors import EncodecFeatures
    from decoder.heads import ISTFTHead
    from decoder.models import VocosBackbone
    from decoder.pretrained import WavTokenizer as Official

    fe = EncodecFeatures(encodec_model="encodec_24khz", bandwidths=[6.6] * 4, train_codebooks=True,
                         num_quantizers=1, dowmsamples=case["dowmsamples"], vq_bins=case["bins"], vq_kmeans=200)
    backbone = VocosBackbone(input_channels=512, dim=case["dim"], intermediate_dim=case["intermediate"],
                             num_layers=case["layers"], adanorm_num_embeddings=4)
    head = ISTFTHead(dim=case["dim"], n_fft=case["n_fft"], hop_length=case["hop"], padding="same")
    return Official(feature_extractor=fe, backbone=backbone, head=head).eval()


@torch.no_grad()
def randomise(model, wav: torch.Tensor, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)

    def noise(t, scale):
        return torch.randn(t.shape, generator=gen) * scale

    for name, p in model.named_parameters():
        if name.endswith("weight_g"):
            p.mul_(1 + noise(p, 0.1))
        elif ".norm" in name or "final_layer_norm" in name or "pos_net.5" in name or name.endswith("gamma"):
            p.add_(noise(p, 0.1))
    codebook = model.feature_extractor.encodec.quantizer.vq.layers[0]._codebook
    frames = model.feature_extractor.encodec.encoder(wav[:, None]).transpose(1, 2).reshape(-1, 512)
    k = codebook.embed.shape[0]
    pick = torch.randint(0, frames.shape[0], (k,), generator=gen)
    embed = frames[pick] + noise(frames[pick], 1.0) * frames.std(0, keepdim=True)
    sizes = torch.rand(k, generator=gen) * 10 + 0.5
    codebook.embed.copy_(embed)
    codebook.embed_avg.copy_(embed * sizes[:, None])
    codebook.cluster_size.copy_(sizes)
    codebook.inited.fill_(1.0)


def official_ckpt_dict(model) -> Dict[str, Any]:
    """The official module's weights as a Lightning checkpoint holds them, with training-only extras."""
    state = dict(model.state_dict())
    state["multiperioddisc.discriminators.0.convs.0.weight_v"] = torch.randn(32, 1, 5, 1)
    state["multiresddisc.discriminators.0.convs.0.bias"] = torch.randn(32)
    state["dac.discriminators.0.convs.1.0.weight_g"] = torch.randn(128, 1, 1, 1)
    state["dacdiscriminator.discriminator.discriminators.0.convs.1.0.weight_g"] = torch.randn(128, 1, 1, 1)
    state["melspec_loss.mel_spec.mel_scale.fb"] = torch.randn(513, 100)
    return {"state_dict": state, "epoch": 3, "global_step": 1000}


def transformers_layout(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename the inference keys the way transformers' WavTokenizer conversion does (saved under
    the ``encoder_model.`` base-model prefix of ``WavTokenizerModel``)."""
    import re

    out = {}
    for key, value in state.items():
        if key.startswith(("feature_extractor.encodec.decoder.",)) or key == "head.istft.window":
            continue
        key = key.replace("feature_extractor.encodec.encoder.model.", "encoder_model.encoder.layers.")
        key = key.replace("feature_extractor.encodec.quantizer.vq.layers.0._codebook.",
                          "encoder_model.quantizer.codebook.")
        key = key.replace("head.out.", "head.linear.")
        key = re.sub(r"\.conv\.conv\.weight_g$", ".conv.parametrizations.weight.original0", key)
        key = re.sub(r"\.conv\.conv\.weight_v$", ".conv.parametrizations.weight.original1", key)
        key = re.sub(r"\.conv\.conv\.bias$", ".conv.bias", key)
        out[key] = value
    return out


def min_gap(frames: torch.Tensor, embed: torch.Tensor) -> float:
    d = torch.cdist(frames.double(), embed.double())
    top = d.topk(2, largest=False).values
    return float((top[:, 1] - top[:, 0]).min())


# ----- one case -----


def run_case(case: Dict[str, Any], report: Report, seed: int) -> Dict[str, Any]:
    name = case["name"]
    torch.manual_seed(seed)
    hop = case["hop"]
    wav = speech_batch(case["samples"])
    official = build_official(case)
    randomise(official, wav, seed + 1)
    bandwidth = torch.tensor([0])

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "official.ckpt"
        torch.save(official_ckpt_dict(official), path)
        raw = read_state_dict(path)
    expected_cfg = case["config"]
    inferred = infer_config(raw)
    report.exact(name, "infer_config(.ckpt) == expected config", inferred.to_dict() == expected_cfg.to_dict(),
                 f"strides {inferred.strides}, n_fft {inferred.n_fft}")
    if case.get("yaml"):
        import yaml

        from_yaml = config_from_official_yaml(yaml.safe_load(Path(case["yaml"]).read_text()))
        report.exact(name, f"config_from_official_yaml(configs/*frame{case['rate']}*.yaml)",
                     from_yaml.to_dict() == expected_cfg.to_dict())
    ours = WavTokenizer(expected_cfg).eval()
    converted = convert_wavtokenizer_state_dict(raw, ours.config)
    load_strict(ours, converted, f"{name} (official .ckpt layout)")
    report.exact(name, f"strict load from .ckpt ({len(raw)} keys -> {len(converted)})", True)
    hf = convert_wavtokenizer_state_dict(transformers_layout(official.state_dict()), ours.config)
    same = set(hf) == set(converted) and all(torch.equal(hf[k].float(), converted[k].float()) for k in hf)
    report.exact(name, "transformers layout converts to the same tensors", same)

    with torch.inference_mode():
        ref_latent = official.feature_extractor.encodec.encoder(wav[:, None])
        ref_feats, ref_codes = official.encode_infer(wav, bandwidth_id=bandwidth)
        ref_ids = ref_codes[0]
        ref_audio = official.decode(official.codes_to_features(ref_codes), bandwidth_id=bandwidth)
        latent, _ = ours.encoder(wav[:, None])
        ids = ours.encode(wav)
        audio = ours.decode(ref_ids)
        audio_e2e = ours.decode(ids)
    expected_len = math.ceil(wav.shape[-1] / hop)
    report.tensor(name, f"encoder latent {tuple(latent.shape)}", latent, ref_latent, TOL32)
    equal = ids.shape == ref_ids.shape and torch.equal(ids, ref_ids)
    mismatch = int((ids != ref_ids).sum()) if ids.shape == ref_ids.shape else -1
    report.exact(name, f"token ids {tuple(ref_ids.shape)} (L = ceil(T/hop) = {expected_len})",
                 equal and ids.shape[-1] == expected_len, "equal" if equal else f"{mismatch} differ")
    report.tensor(name, f"decoded audio from official ids {tuple(ref_audio.shape)}", audio, ref_audio, TOL32)
    report.tensor(name, "end to end (each side its own ids)", audio_e2e, ref_audio, TOL32)
    report.exact(name, "output length == L * hop", audio.shape[-1] == ref_ids.shape[-1] * hop)

    official64, ours64 = official.double(), ours.double()
    with torch.inference_mode():
        ref64 = official64.feature_extractor.encodec.encoder(wav[:1, None].double())
        lat64, _ = ours64.encoder(wav[:1, None].double())
        feats64 = ref_feats[:1].double()
        dec_ref64 = official64.decode(feats64, bandwidth_id=bandwidth)
        dec64 = ours64.decode_latent(feats64)
    report.tensor(name, "fp64: encoder latent (1 clip)", lat64, ref64, TOL64)
    report.tensor(name, "fp64: decoder, same code vectors", dec64, dec_ref64, TOL64)
    codebook = official.feature_extractor.encodec.quantizer.vq.layers[0]._codebook.embed
    frames = ref_latent.transpose(1, 2).reshape(-1, ref_latent.shape[1])
    return dict(case=name, samples=wav.shape[-1], batch=wav.shape[0], hop=hop,
                params=sum(p.numel() for p in ours.parameters()),
                unique_ids=int(ref_ids.unique().numel()), min_top2_gap=min_gap(frames, codebook))


def dsp_checks(report: Report) -> None:
    """audiotok.dsp against the real torchaudio (the mel loss / features of the original use
    ``torchaudio.transforms.MelSpectrogram``); skipped when only the stub is present."""
    import torchaudio

    if not hasattr(torchaudio, "__version__"):
        return
    from audiotok.dsp import MelSpectrogram, mel_filterbank, resample

    torch.manual_seed(0)
    x = torch.randn(2, 72000)
    ref = torchaudio.transforms.MelSpectrogram(sample_rate=24000, n_fft=1024, hop_length=256, n_mels=100,
                                               center=True, power=1)(x)
    report.tensor("dsp", "MelSpectrogram (24 kHz, 1024/256, 100 mels, power 1)", MelSpectrogram()(x), ref, 1e-2)
    fb_ref = torchaudio.functional.melscale_fbanks(513, 0.0, 12000.0, 100, 24000, None, "htk")
    report.tensor("dsp", "mel filterbank (htk, no norm)", mel_filterbank(24000, 1024, 100), fb_ref, 1e-5)
    for orig in (16000, 44100, 48000):
        report.tensor("dsp", f"resample {orig} -> 24000 (white noise)", resample(x[:, :orig], orig, 24000),
                      torchaudio.functional.resample(x[:, :orig], orig, 24000), 1e-4)


def discriminator_checks(report: Report, seed: int) -> None:
    """The release's discriminators (``loss.adversarial.init``): the official MPD / MRD / DAC classes with
    seeded random weights (a different draw per instance, embedding tables included), saved under the
    Lightning .ckpt prefixes, converted by ``convert_wavtokenizer_discriminators`` and loaded strictly
    into ``AudioAdversarial``; the same audio gives the same logits."""
    from decoder.discriminator_dac import DACDiscriminator as OfficialDAC
    from decoder.discriminators import MultiPeriodDiscriminator, MultiResolutionDiscriminator

    from audiotok.losses import AudioAdversarial
    from vistok.models.state_dict import load_strict
    from audiotok.models.wavtokenizer.convert import convert_wavtokenizer_discriminators

    torch.manual_seed(seed)
    official = {"multiperioddisc": MultiPeriodDiscriminator(num_embeddings=4),
                "multiresddisc": MultiResolutionDiscriminator(num_embeddings=4),
                "dac": OfficialDAC(), "dacdiscriminator.discriminator": OfficialDAC()}
    state = {}
    for prefix, module in official.items():
        with torch.no_grad():
            for p in module.parameters():
                p.add_(0.01 * torch.randn_like(p))
        state.update({f"{prefix}.{k}": v for k, v in module.state_dict().items()})
    ours = AudioAdversarial()
    load_strict(ours, convert_wavtokenizer_discriminators(state), "official discriminators")
    wav = speech_batch(12000)[:2]
    fake = wav.flip(-1)
    cond = torch.tensor([2])
    with torch.no_grad():
        real_mpd, fake_mpd, _, _ = official["multiperioddisc"](y=wav, y_hat=fake, bandwidth_id=cond)
        real_mrd, fake_mrd, _, _ = official["multiresddisc"](y=wav, y_hat=fake, bandwidth_id=cond)
        for name, real, fake_ref in (("mpd", real_mpd, fake_mpd), ("mrd", real_mrd, fake_mrd)):
            logits, _ = ours.discriminators[name](torch.cat([wav, fake]), cond)
            for i, (r, f, o) in enumerate(zip(real, fake_ref, logits)):
                report.tensor("discriminator", f"{name}[{i}] logits, real + fake", o, torch.cat([r, f]), 0.0)
        for theirs, mine, label in ((official["dac"], ours.discriminators["dac"], "dac (optimised instance)"),
                                    (official["dacdiscriminator.discriminator"], ours.published_dac,
                                     "dac (fixed copy the losses use)")):
            logits, _ = mine(wav)
            for i, (ref, o) in enumerate(zip(theirs(wav[:, None]), logits)):
                report.tensor("discriminator", f"{label}[{i}] logits", o, ref[-1].flatten(1), 0.0)


def cases(tree: Path, quick: bool) -> List[Dict[str, Any]]:
    small = dict(name="small_cfg", dowmsamples=[4, 3], bins=64, dim=64, intermediate=96, layers=2, hop=12,
                 n_fft=48, samples=24000 * 2 + 7,
                 config=WavTokenizerConfig(strides=[3, 4], codebook_size=64, decoder_dim=64,
                                           decoder_intermediate_dim=96, decoder_layers=2))
    out = [small]
    if quick:
        return out
    for rate, ratios, yaml_glob in [(40, [6, 5, 5, 4], "*frame40*.yaml"), (75, [8, 5, 4, 2], "*frame75*.yaml")]:
        hop = math.prod(ratios)
        yamls = sorted((tree / "configs").glob(yaml_glob))
        out.append(dict(name=f"published_{rate}", rate=rate, dowmsamples=ratios, bins=4096, dim=768, intermediate=2304,
                        layers=12, hop=hop, n_fft=4 * hop, samples=24000 * 3 + 1,
                        yaml=str(yamls[0]) if yamls else None, config=WavTokenizerConfig.for_token_rate(rate)))
    return out


def write(report: Report, extra: Dict[str, Any], out: Path) -> bool:
    header = [
        "Parity: tokzoo WavTokenizer vs the official WavTokenizer inference modules (seeded random weights)",
        f"date {extra['date']}  torch {extra['torch']}  device cpu  {platform.machine()} threads "
        f"{torch.get_num_threads()}  inputs: 2 real speech clips (corpus speech/val), 24 kHz, fp32",
        f"command: {extra['command']}",
        f"WavTokenizer commit {extra['commit']}  decoder+encoder sha256 {extra['tree_sha256']}  "
        f"({extra['torchaudio']})",
    ]
    notes = []
    for info in extra["cases"]:
        notes.append(f"{info['case']}: {info['batch']} x {info['samples']} samples, hop {info['hop']}, "
                     f"{info['params']:,} parameters, {info['unique_ids']} distinct ids, "
                     f"smallest top-1/top-2 code distance gap {info['min_top2_gap']:.3e}")
    return write_report(report, extra, out, header, notes, case_width=14, check_width=58)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("official_tree", help="checkout / export of jishengpeng/WavTokenizer")
    parser.add_argument("--git-dir", help="bare mirror the tree was exported from (to record the commit)")
    parser.add_argument("--quick", action="store_true", help="only the small config")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "eval/results/parity_wavtokenizer"))
    args = parser.parse_args(argv)
    tree = Path(args.official_tree).resolve()
    if not (tree / "decoder" / "pretrained.py").is_file():
        raise SystemExit(f"{tree}: not a WavTokenizer source tree (decoder/pretrained.py missing)")
    torchaudio_note = install_torchaudio_stub()
    sys.path.insert(0, str(tree))
    warnings.filterwarnings("ignore")  # the official code uses the deprecated torch weight_norm
    report = Report(relative=False)  # absolute tolerances: TOL32 / TOL64 bound max|diff|
    dsp_checks(report)
    discriminator_checks(report, args.seed)
    infos = [run_case(case, report, args.seed) for case in cases(tree, args.quick)]
    extra = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 torch=torch.__version__,
                 command="python eval/parity_wavtokenizer.py " + " ".join(argv or sys.argv[1:]),
                 commit=official_commit(tree, args.git_dir), tree_sha256=tree_hash(tree), torchaudio=torchaudio_note,
                 cases=infos)
    return 0 if write(report, extra, Path(args.out)) else 1


if __name__ == "__main__":
    sys.exit(main())
