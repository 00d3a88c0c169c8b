"""Parity with the OFFICIAL EnCodec implementation (the ``encodec`` package on PyPI).

What it proves: for each released configuration (``encodec_24khz``: causal mono, weight norm;
``encodec_48khz``: non-causal stereo, time group norm, 1 s segments with 1% overlap, per-segment
loudness normalisation), the official ``EncodecModel`` is built with seeded random weights; its
``state_dict()`` is written to a ``.th`` file as the package's checkpoints are, read back with
:func:`vistok.models.state_dict.read_state_dict` (``torch.load(weights_only=True)``), converted by
:func:`audiotok.models.encodec.convert.convert_encodec_state_dict` and loaded *strictly* into
:class:`audiotok.models.encodec.EnCodec`. With transformers importable, the same weights renamed as
transformers' ``EncodecModel`` names its modules must load strictly into that model, give the
official encoder / decoder outputs there, and convert to the identical state dict.

Checked per case, fp32, eval mode, on real audio from the corpus (speech and music, 24 kHz mono;
for 48 kHz, music resampled with torchaudio and paired into stereo), a batch of two clips whose
length is not a multiple of the hop (the 48 kHz clips span three segments):

- token ids at every target bandwidth, exact (official frames concatenated along time vs our
  ``encode_with_scales``), and the per-segment scales (48 kHz);
- decoded audio at every bandwidth (official ``decode(frames)`` vs our ``decode(*codes)``), also
  from the official ids and scales, and ``forward`` vs the official ``forward``;
- batched vs single: our batch of unequal lengths (``lengths``) vs the official model on each clip
  alone, ids exact and audio;
- 48 kHz: an input just past the first segment stride (a short last-but-one segment);
- the encoder latent and the decoder in float64, showing that fp32 differences are rounding.

Audio passes when ``max |ours - official| <= 1e-4 * max |official|`` in fp32 (``1e-9`` in fp64).
The exit code is non-zero when any check fails. Results go to
``eval/results/parity_encodec.{txt,json}`` (``--out`` to change).

Weights: the official modules keep their own init under ``torch.manual_seed``, then (seeded) every
weight-norm gain, group-norm weight and bias and convolution bias is perturbed so that none is an
identity, and each level's codebook (all zeros and "not initialised" in a fresh official model) is
drawn around what the previous levels leave of the official encoder's output on the clips, so many
codes are used on every level (the count and the smallest top-1/top-2 distance gap over all
levels are reported: equal latents make equal ids meaningful rather than lucky).

Running it (the official package is imported, never copied into this repository)::

    python -m venv --system-site-packages /tmp/parity_venv
    /tmp/parity_venv/bin/pip install encodec torchaudio   # and optionally: --no-deps transformers
    /tmp/parity_venv/bin/python eval/parity_encodec.py [--quick]

``--quick`` runs only the 24 kHz model.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import re
import sys
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audiotok.models.encodec import EnCodec, EnCodecConfig  # noqa: E402
from audiotok.models.encodec.convert import convert_encodec_state_dict  # noqa: E402
from vistok.models.state_dict import load_strict, read_state_dict  # noqa: E402
from parity_report import Report, write as write_report  # noqa: E402  (eval/ is on sys.path)

CORPUS = REPO.parent / "shared/corpus/audio"
TOL32, TOL64 = 1e-4, 1e-9


def _version(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def clips(kind: str, count: int, samples: int) -> List[torch.Tensor]:
    """``count`` real clips (24 kHz mono FLAC from the corpus val split), cut to ``samples``."""
    import soundfile as sf

    out = []
    for path in sorted((CORPUS / kind / "val").glob("*.flac")):
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        if rate == 24000 and data.shape[0] >= samples:
            out.append(torch.from_numpy(data.mean(1)[:samples].copy()))
        if len(out) == count:
            return out
    raise SystemExit(f"need {count} {kind} clips of >= {samples} samples under {CORPUS / kind / 'val'}")


def batch_24khz(samples: int) -> torch.Tensor:
    """(2, 1, T): one speech clip and one music clip."""
    return torch.stack([clips("speech", 1, samples)[0], clips("music", 1, samples)[0]])[:, None]


def batch_48khz(samples: int) -> torch.Tensor:
    """(2, 2, T): music clips resampled to 48 kHz, paired as left / right channels."""
    import torchaudio

    need = -(-samples // 2) + 16
    music = [torchaudio.functional.resample(c, 24000, 48000)[:samples] for c in clips("music", 4, need)]
    return torch.stack([torch.stack(music[:2]), torch.stack(music[2:])])


# ----- the official model -----

def build_official(name: str):
    from encodec.model import EncodecModel

    builder = {"24khz": EncodecModel.encodec_model_24khz, "48khz": EncodecModel.encodec_model_48khz}[name]
    return builder(pretrained=False).eval()


def _official_latent_input(official, wav: torch.Tensor) -> torch.Tensor:
    """The first segment, normalised as the official model would normalise it."""
    x = wav[..., : official.segment_length] if official.segment_length else wav
    if official.normalize:
        x = x / (1e-8 + x.mean(1, keepdim=True).pow(2).mean(2, keepdim=True).sqrt())
    return x


def _official_latent(official, wav: torch.Tensor) -> torch.Tensor:
    """The official encoder's frames (B, D, L) on :func:`_official_latent_input`."""
    return official.encoder(_official_latent_input(official, wav))


@torch.no_grad()
def randomise(official, wav: torch.Tensor, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)

    def noise(t, scale):
        return torch.randn(t.shape, generator=gen) * scale

    for name, p in official.named_parameters():
        if name.endswith("weight_g"):
            p.mul_(1 + noise(p, 0.1))
        elif ".norm." in name:
            p.add_(noise(p, 0.1))
        elif name.endswith(".bias") and "lstm" not in name:
            p.add_(noise(p, 0.02))
    residual = _official_latent(official, wav).transpose(1, 2).reshape(-1, official.quantizer.dimension)
    for layer in official.quantizer.vq.layers:
        book = layer._codebook
        k = book.embed.shape[0]
        pick = torch.randint(0, residual.shape[0], (k,), generator=gen)
        embed = residual[pick] + noise(residual[pick], 0.5) * residual.std(0, keepdim=True)
        sizes = torch.rand(k, generator=gen) * 10 + 0.5
        book.embed.copy_(embed)
        book.embed_avg.copy_(embed * sizes[:, None])
        book.cluster_size.copy_(sizes)
        book.inited.fill_(1.0)
        residual = residual - book.embed[torch.cdist(residual, book.embed).argmin(-1)]


def transformers_layout(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The official keys renamed as transformers' EncodecModel modules are named (its encoder and decoder
    mirror the official Sequentials; each conv wrapper is one ``conv`` with a ``norm`` beside it)."""
    out = {}
    for key, value in state.items():
        key = re.sub(r"^(encoder|decoder)\.model\.", r"\1.layers.", key)
        key = re.sub(r"\.(?:conv\.conv|convtr\.convtr)\.", ".conv.", key)
        key = re.sub(r"\.(?:conv|convtr)\.norm\.", ".norm.", key)
        key = key.replace(".weight_g", ".parametrizations.weight.original0")
        key = key.replace(".weight_v", ".parametrizations.weight.original1")
        key = re.sub(r"^quantizer\.vq\.layers\.(\d+)\._codebook\.", r"quantizer.layers.\1.codebook.", key)
        out[key] = value
    return out


def build_transformers(name: str, official):
    from transformers import EncodecConfig as HFConfig
    from transformers import EncodecModel as HFModel

    kwargs = dict(sampling_rate=official.sample_rate, audio_channels=official.channels,
                  target_bandwidths=[float(b) for b in official.target_bandwidths], codebook_size=1024,
                  use_causal_conv=name == "24khz", norm_type="weight_norm" if name == "24khz" else "time_group_norm",
                  normalize=official.normalize, chunk_length_s=official.segment, overlap=official.overlap if
                  official.segment else None)
    return HFModel(HFConfig(**kwargs)).eval()


def min_gap(official, wav: torch.Tensor) -> float:
    """Smallest top-1 / top-2 code distance gap over all frames and levels (float64), relative to the
    mean norm of that level's residual (residuals shrink level after level)."""
    residual = _official_latent(official, wav).transpose(1, 2).reshape(-1, official.quantizer.dimension).double()
    gap = float("inf")
    for layer in official.quantizer.vq.layers:
        embed = layer._codebook.embed.double()
        d = torch.cdist(residual, embed, compute_mode="donot_use_mm_for_euclid_dist")
        top = d.topk(2, largest=False)
        scale = float(residual.norm(dim=1).mean())
        gap = min(gap, float((top.values[:, 1] - top.values[:, 0]).min()) / scale)
        residual = residual - embed[top.indices[:, 0]]
    return gap


# ----- reporting -----


def _three_d(wav: torch.Tensor) -> torch.Tensor:
    return wav[:, None] if wav.dim() == 2 else wav


def _official_codes(frames) -> torch.Tensor:
    return torch.cat([codes for codes, _ in frames], dim=-1)


def _official_scales(frames) -> Optional[torch.Tensor]:
    if frames[0][1] is None:
        return None
    return torch.cat([scale.reshape(-1, 1) for _, scale in frames], dim=1)


# ----- one case -----

def run_case(name: str, report: Report, seed: int, samples: int) -> Dict[str, Any]:
    torch.manual_seed(seed)
    wav = batch_24khz(samples) if name == "24khz" else batch_48khz(samples)
    official = build_official(name)
    randomise(official, wav, seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"encodec_{name}-random.th"
        torch.save(official.state_dict(), path)
        raw = read_state_dict(path)
    ours = EnCodec(EnCodecConfig.preset(name)).eval()
    converted = convert_encodec_state_dict(raw, ours.config)
    load_strict(ours, converted, f"{name} (official .th layout)")
    report.exact(name, f"strict load from .th ({len(raw)} keys -> {len(converted)})", True)
    params = sum(p.numel() for p in ours.parameters())
    report.exact(name, "parameter count equals the official model's",
                 params == sum(p.numel() for p in official.parameters()), f"{params:,}")
    info: Dict[str, Any] = dict(case=name, batch=int(wav.shape[0]), channels=int(wav.shape[1]),
                                samples=int(wav.shape[-1]), params=params)

    with torch.inference_mode():
        ref_latent = _official_latent(official, wav)
        latent, _ = ours.encoder(_official_latent_input(official, wav))
    report.tensor(name, f"encoder latent {tuple(ref_latent.shape)}", latent, ref_latent, TOL32)

    x = wav[:, 0] if ours.config.channels == 1 else wav
    for bandwidth in official.target_bandwidths:
        official.set_target_bandwidth(bandwidth)
        with torch.inference_mode():
            frames = official.encode(wav)
            ref_ids, ref_scales = _official_codes(frames), _official_scales(frames)
            ref_audio = official.decode(frames)
            codes = ours.encode_with_scales(x, bandwidth=bandwidth)
            audio = _three_d(ours.decode(*codes))
            from_ref = _three_d(ours.decode(ref_ids, ref_scales, codes.lengths))
        tag = f"{bandwidth:g} kbps"
        report.ids(name, f"ids {tag} {tuple(ref_ids.shape)} ({len(frames)} segment(s))", codes.ids, ref_ids)
        if ref_scales is not None:
            report.tensor(name, f"scales {tag} {tuple(ref_scales.shape)}", codes.scales, ref_scales, 1e-6)
        report.tensor(name, f"decoded audio {tag} {tuple(ref_audio.shape)}", audio, ref_audio, TOL32)
        report.tensor(name, f"decoded from the official ids {tag}", from_ref, ref_audio, TOL32)
        unique = min(int(ref_ids[:, q].unique().numel()) for q in range(ref_ids.shape[1]))  # the last: all levels
    official.set_target_bandwidth(official.target_bandwidths[-1])
    with torch.inference_mode():
        ref_forward = official(wav)
        forward = _three_d(ours(x).recon)
    report.tensor(name, f"forward (eval) {tuple(ref_forward.shape)}", forward, ref_forward, TOL32)

    # batched vs single: our batch of unequal lengths vs the official model on each clip alone
    short = wav.shape[-1] * 2 // 3 + 5
    padded = wav.clone()
    padded[1, :, short:] = 0
    official.set_target_bandwidth(6.0)
    with torch.inference_mode():
        batch_codes = ours.encode_with_scales(padded if ours.config.channels > 1 else padded[:, 0], bandwidth=6.0,
                                              lengths=torch.tensor([wav.shape[-1], short]))
        batch_audio = _three_d(ours.decode(*batch_codes))
        for i, n in enumerate([wav.shape[-1], short]):
            frames = official.encode(wav[i: i + 1, :, :n])
            ref_ids, ref_audio = _official_codes(frames), official.decode(frames)
            report.ids(name, f"batched unequal lengths: item {i} ({n} samples) ids", batch_codes.ids[i: i + 1, :, :
                       ref_ids.shape[-1]], ref_ids)
            report.tensor(name, f"batched unequal lengths: item {i} audio", batch_audio[i: i + 1, :, :ref_audio.shape[-1]],
                          ref_audio, TOL32)

    if ours.config.segment is not None:
        n = ours.config.segment_stride + 80  # the last-but-one segment is 47600 samples: 149 tokens, not 150
        with torch.inference_mode():
            frames = official.encode(wav[:1, :, :n])
            ref_ids, ref_audio = _official_codes(frames), official.decode(frames)
            codes = ours.encode_with_scales(wav[:1, :, :n], bandwidth=6.0)
            audio = ours.decode(*codes)
        seg_tokens = [int(f[0].shape[-1]) for f in frames]
        report.ids(name, f"short last-but-one segment: {n} samples, tokens {seg_tokens}", codes.ids, ref_ids)
        report.tensor(name, "short last-but-one segment: decode(*codes)", audio, ref_audio, TOL32)

    official64, ours64 = official.double(), ours.double()
    one = wav[:1].double()
    with torch.inference_mode():
        ref64 = _official_latent(official64, one)
        lat64, _ = ours64.encoder(_official_latent_input(official64, one))
        dec_ref64 = official64.decoder(ref64)
        dec64 = ours64.decoder(ref64)
    report.tensor(name, "fp64: encoder latent (1 clip)", lat64, ref64, TOL64)
    report.tensor(name, "fp64: decoder, same latent", dec64, dec_ref64, TOL64)
    official.float()
    ours.float()

    if _version("transformers"):
        transformers_checks(name, official, ours, converted, wav, report)
    info.update(unique_ids=unique, min_top2_gap=min_gap(official, wav), segments=len(official.encode(wav)))
    return info


def transformers_checks(name, official, ours, converted, wav, report: Report) -> None:
    """transformers' EncodecModel with the official weights renamed into its layout."""
    hf = build_transformers(name, official)
    renamed = transformers_layout(official.state_dict())
    missing, unexpected = hf.load_state_dict(renamed, strict=False)
    report.exact(name, f"transformers {_version('transformers')}: strict load of the renamed weights",
                 not missing and not unexpected, f"{len(missing)} missing, {len(unexpected)} unexpected")
    again = convert_encodec_state_dict(renamed, ours.config)
    report.exact(name, "transformers layout converts to the same tensors",
                 set(again) == set(converted) and all(torch.equal(again[k].float(), converted[k].float())
                                                      for k in converted))
    legacy = {k.replace("parametrizations.weight.original0", "weight_g")
              .replace("parametrizations.weight.original1", "weight_v"): v for k, v in renamed.items()}
    again = convert_encodec_state_dict(legacy, ours.config)
    report.exact(name, "... and so does its legacy weight_g / weight_v form",
                 set(again) == set(converted) and all(torch.equal(again[k].float(), converted[k].float())
                                                      for k in converted))
    x = _official_latent_input(official, wav)
    with torch.inference_mode():
        ref_latent = official.encoder(x)
        report.tensor(name, "transformers encoder == official encoder", hf.encoder(x), ref_latent, TOL32)
        codes = official.quantizer.encode(ref_latent, official.frame_rate, 6.0)
        report.ids(name, "transformers quantizer codes (6 kbps) == official",
                   hf.quantizer.encode(ref_latent, bandwidth=6.0), codes)
        emb = official.quantizer.decode(codes)
        report.tensor(name, "transformers decoder == official decoder", hf.decoder(emb), official.decoder(emb), TOL32)


def write(report: Report, extra: Dict[str, Any], out: Path) -> bool:
    header = [
        "Parity: tokzoo EnCodec vs the official encodec package (seeded random weights)",
        f"date {extra['date']}  torch {extra['torch']}  device cpu  {platform.machine()} threads "
        f"{torch.get_num_threads()}  fp32 unless noted",
        f"command: {extra['command']}",
        f"encodec {extra['encodec']}  torchaudio {extra['torchaudio']}  transformers {extra['transformers']}",
        "inputs: 24khz: a speech and a music clip (corpus */val, 24 kHz mono); 48khz: four music clips resampled to "
        "48 kHz (torchaudio), paired into two stereo clips",
    ]
    notes = []
    for info in extra["cases"]:
        notes.append(f"{info['case']}: {info['batch']} x {info['channels']} x {info['samples']} samples, "
                     f"{info['segments']} segment(s), {info['params']:,} parameters, at least {info['unique_ids']} "
                     f"distinct ids on every level, smallest top-1/top-2 code distance gap {info['min_top2_gap']:.3e} "
                     "(relative to the level's mean residual norm)")
    return write_report(report, extra, out, header, notes, case_width=6, check_width=66)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the 24 kHz model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "eval/results/parity_encodec"))
    args = parser.parse_args(argv)
    if not _version("encodec"):
        raise SystemExit("the official encodec package is not installed (pip install encodec torchaudio)")
    warnings.filterwarnings("ignore")  # the official code uses the deprecated torch weight_norm
    report = Report()
    cases = [("24khz", 24000 * 3 + 7)] + ([] if args.quick else [("48khz", 48000 * 2 + 24013)])
    infos = [run_case(name, report, args.seed, samples) for name, samples in cases]
    extra = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 torch=torch.__version__, encodec=_version("encodec"), torchaudio=_version("torchaudio"),
                 transformers=_version("transformers") or "not installed (its layout unchecked)",
                 command="python eval/parity_encodec.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                 cases=infos)
    return 0 if write(report, extra, Path(args.out)) else 1


if __name__ == "__main__":
    sys.exit(main())
