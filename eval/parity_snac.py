"""Parity with the OFFICIAL SNAC implementation (the ``snac`` package on PyPI, 1.2.1).

What it proves: for each released configuration (24 kHz: encoder strides 2-4-8-8, 3 levels at
strides 4-2-1, no attention; 32 and 44.1 kHz: strides 2-3-8-8, 4 levels at strides 8-4-2-1,
windowed attention of 32 steps; all depthwise with noise blocks and 4096-entry codebooks of
dimension 8), the official ``snac.SNAC`` is built at full size with seeded random weights and
saved in the layout of the Hugging Face releases: ``pytorch_model.bin`` (``torch.save`` of its
state dict) beside ``config.json`` (its keyword arguments). The official ``SNAC.from_pretrained``
reads that directory back; tokzoo reads it with :func:`vistok.models.state_dict.read_state_dict`
(``torch.load(weights_only=True)``), resolves the config from ``config.json`` against the zoo
card (:func:`audiotok.models.snac.convert.resolve_card_config`), converts with
:func:`audiotok.models.snac.convert.convert_snac_state_dict` and loads *strictly*.

Checked per case, fp32, eval mode, on real audio (a speech and a music clip from the corpus val
split and a bundled sample, resampled from 24 kHz with :func:`audiotok.dsp.resample`), at several
input lengths (an exact multiple of the padding multiple, lengths that need padding, one shorter
than a single multiple):

- the encoder latent on the official ``preprocess`` (right zero-padding);
- ids at every level, exact: the official ``encode``'s list vs ours (converted with
  ``ids_to_levels``, and back with ``levels_to_ids``), and ours with ``num_quantizers=k`` for every
  ``k`` against the official first ``k`` levels;
- decoded audio: the official ``decode(codes)`` vs ours from our ids, under the same global seed
  (the noise blocks draw at inference); the first ``k`` levels against the official modules'
  sum of the first ``k`` levels (``from_codes`` restricted to them) decoded by the official
  decoder; ``forward`` vs the official ``forward``;
- batched vs single: our batch of unequal lengths (``lengths``) vs the official model on each clip
  alone: ids exact, audio with one seeded generator per item against the official decode of that
  item alone under the same seed;
- the encoder and decoder in float64 (noise blocks drawn under one seed), showing that fp32
  differences are rounding.

Audio passes when ``max |ours - official| <= 1e-4 * max |official|`` in fp32 (``1e-9`` in fp64).
The exit code is non-zero when any check fails. Results go to ``eval/results/parity_snac.{txt,json}``
(``--out`` to change).

Weights: the official modules keep their own init under ``torch.manual_seed`` (standard normal
codebooks), then (seeded) every weight-norm gain, Snake ``alpha``, bias and LayerNorm is perturbed
so that none is an identity or zero. The number of distinct ids on the least used level and the
smallest top-1/top-2 score gap of the search over all levels are reported.

Running it (the official package is imported, never copied into this repository)::

    python -m venv --system-site-packages /tmp/parity_snac
    /tmp/parity_snac/bin/pip install snac==1.2.1 einops
    /tmp/parity_snac/bin/python eval/parity_snac.py [--quick]

``--quick`` runs only the 24 kHz model.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audiotok.dsp import resample  # noqa: E402
from audiotok.models.snac import SNAC, SNACConfig  # noqa: E402
from audiotok.models.snac.convert import convert_snac_state_dict, resolve_card_config  # noqa: E402
from vistok.models.state_dict import load_strict, read_state_dict  # noqa: E402
from parity_report import Report, write as write_report  # noqa: E402  (eval/ is on sys.path)

CORPUS = REPO.parent / "shared/corpus/audio"
SAMPLES = REPO / "audiotok/assets/samples"
TOL32, TOL64 = 1e-4, 1e-9
OFFICIAL_KWARGS = {  # config.json of hubertsiuzdak/snac_<rate> (see audiotok/models/snac/config.py for the sources)
    "24khz": dict(sampling_rate=24000, encoder_dim=48, encoder_rates=[2, 4, 8, 8], decoder_dim=1024,
                  decoder_rates=[8, 8, 4, 2], attn_window_size=None, codebook_size=4096, codebook_dim=8,
                  vq_strides=[4, 2, 1], noise=True, depthwise=True),
    "32khz": dict(sampling_rate=32000, encoder_dim=64, encoder_rates=[2, 3, 8, 8], decoder_dim=1536,
                  decoder_rates=[8, 8, 3, 2], attn_window_size=32, codebook_size=4096, codebook_dim=8,
                  vq_strides=[8, 4, 2, 1], noise=True, depthwise=True),
    "44khz": dict(sampling_rate=44100, encoder_dim=64, encoder_rates=[2, 3, 8, 8], decoder_dim=1536,
                  decoder_rates=[8, 8, 3, 2], attn_window_size=32, codebook_size=4096, codebook_dim=8,
                  vq_strides=[8, 4, 2, 1], noise=True, depthwise=True),
}


def _version(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _read(path: Path, samples: int) -> Optional[torch.Tensor]:
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if rate != 24000 or data.shape[0] < samples:
        return None
    return torch.from_numpy(data.mean(1)[:samples].copy())


def clips(samples24: int) -> List[torch.Tensor]:
    """A speech clip, a music clip (corpus val split) and a bundled sample, 24 kHz mono, cut to ``samples24``."""
    out = []
    for source in (sorted((CORPUS / "speech" / "val").glob("*.flac")), sorted((CORPUS / "music" / "val").glob("*.flac")),
                   sorted(SAMPLES.glob("*.flac"))):
        clip = next((c for c in (_read(p, samples24) for p in source) if c is not None), None)
        if clip is None:
            raise SystemExit(f"need clips of >= {samples24} samples at 24 kHz under {CORPUS} and {SAMPLES}")
        out.append(clip)
    return out


def batch(rate: int, samples: int) -> torch.Tensor:
    """(3, 1, samples) at ``rate``: the clips of :func:`clips`, resampled from 24 kHz."""
    need = -(-samples * 24000 // rate) + 64
    wav = torch.stack(clips(need))
    if rate != 24000:
        wav = resample(wav, 24000, rate)
    return wav[:, None, :samples].contiguous()


# ----- the official model -----

@torch.no_grad()
def randomise(official, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)

    def noise(t, scale):
        return torch.randn(t.shape, generator=gen) * scale

    for name, p in official.named_parameters():
        if name.endswith("original0"):  # weight-norm gains
            p.mul_(1 + noise(p, 0.1))
        elif name.endswith("alpha"):
            p.mul_(torch.exp(noise(p, 0.3)))
        elif name.endswith(".bias"):
            p.add_(noise(p, 0.02))
        elif name.endswith("norm.weight"):
            p.mul_(1 + noise(p, 0.1))


def official_partial_decode(official, codes, k: int) -> torch.Tensor:
    """The official modules on the first ``k`` levels: ``from_codes`` restricted to them, then the decoder."""
    z_q = 0.0
    for i in range(k):
        q = official.quantizer.quantizers[i]
        z_q = z_q + q.out_proj(q.decode_code(codes[i])).repeat_interleave(q.stride, dim=-1)
    return official.decoder(z_q)


def search_stats(official, wav: torch.Tensor) -> Dict[str, float]:
    """Distinct ids on the least used level, and the smallest top-1/top-2 gap of the official
    search scores (fp64) over all positions and levels."""
    import torch.nn.functional as F

    residual = official.encoder(official.preprocess(wav)).double()
    gap, unique = float("inf"), None
    for q in official.quantizer.quantizers:
        q = q.double()
        pooled = F.avg_pool1d(residual, q.stride, q.stride) if q.stride > 1 else residual
        z_e = q.in_proj(pooled)
        rows = F.normalize(z_e.permute(0, 2, 1).reshape(-1, z_e.shape[1]))
        scores = rows @ F.normalize(q.codebook.weight).t()
        top = scores.topk(2, dim=1)
        gap = min(gap, float((top.values[:, 0] - top.values[:, 1]).min()))
        idx = top.indices[:, 0]
        unique = idx.unique().numel() if unique is None else min(unique, idx.unique().numel())
        code = q.codebook(idx.reshape(z_e.shape[0], -1)).transpose(1, 2)
        residual = residual - q.out_proj(code).repeat_interleave(q.stride, dim=-1)
        q.float()
    return dict(unique_ids=int(unique), min_top2_gap=gap)


# ----- reporting -----


def card_config(name: str) -> Dict[str, Any]:
    """The zoo card's config for release ``name`` (``zoo/snac-<name>.yaml``)."""
    import yaml

    return dict(yaml.safe_load((REPO / "zoo" / f"snac-{name}.yaml").read_text())["config"])


def _seeded(seed: int, fn):
    torch.manual_seed(seed)
    return fn()


# ----- one case -----

def run_case(name: str, report: Report, seed: int, seconds: float) -> Dict[str, Any]:
    from snac import SNAC as Official

    torch.manual_seed(seed)
    official = Official(**OFFICIAL_KWARGS[name]).eval()
    randomise(official, seed + 1)
    rate = official.sampling_rate
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(OFFICIAL_KWARGS[name]))
        path = Path(tmp) / "pytorch_model.bin"
        torch.save(official.state_dict(), path)
        raw = read_state_dict(path)
        config = resolve_card_config(card_config(name), path, "snac")
        reloaded = Official.from_pretrained(tmp).eval()
    report.exact(name, "card config + release config.json == our preset",
                 SNACConfig(**config).to_dict() == SNACConfig.preset(name).to_dict(), f"{len(config)} fields")
    report.exact(name, "the official SNAC.from_pretrained reads the files back",
                 all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), official.state_dict().values())))
    ours = SNAC(config).eval()
    converted = convert_snac_state_dict(raw, ours.config)
    load_strict(ours, converted, f"{name} (official pytorch_model.bin layout)")
    report.exact(name, f"strict load from pytorch_model.bin ({len(raw)} keys -> {len(converted)})", True)
    params = sum(p.numel() for p in ours.parameters())
    report.exact(name, "parameter count equals the official model's",
                 params == sum(p.numel() for p in official.parameters()), f"{params:,}")
    pad = ours.pad_multiple
    report.exact(name, f"padding multiple {pad} = official hop x lcm(vq_strides[0], window)",
                 official.preprocess(torch.zeros(1, 1, 1)).shape[-1] == pad)
    info: Dict[str, Any] = dict(case=name, rate=rate, params=params, pad_multiple=pad,
                                level_rates=[round(r, 4) for r in ours.level_rates])

    longest = max(int(seconds * rate) + 7, 2 * pad)
    wav_all = batch(rate, longest)
    q = ours.num_levels
    for samples in (2 * pad, int(seconds * rate) + 7, pad // 3 + 1):
        wav = wav_all[..., :samples].contiguous()
        x = wav[:, 0]
        tag = f"T={samples}"
        with torch.inference_mode():
            ref_latent = official.encoder(official.preprocess(wav))
            latent = ours.encoder(ours._pad(wav))
            report.tensor(name, f"{tag}: encoder latent {tuple(ref_latent.shape)}", latent, ref_latent, TOL32)
            ref_codes = official.encode(wav)
            ids = ours.encode(x)
            report.ids(name, f"{tag}: ids, all {q} levels {[tuple(c.shape) for c in ref_codes]}",
                          ours.ids_to_levels(ids), ref_codes)
            report.exact(name, f"{tag}: levels_to_ids(official codes) == our ids {tuple(ids.shape)}",
                         torch.equal(ours.levels_to_ids(ref_codes), ids))
            for k in range(1, q):
                report.ids(name, f"{tag}: ids, first {k} of {q} levels (num_quantizers={k})",
                              ours.ids_to_levels(ours.encode(x, num_quantizers=k)), ref_codes[:k])
            ref_audio = _seeded(seed + 7, lambda: official.decode(ref_codes))[:, 0]
            audio = _seeded(seed + 7, lambda: ours.decode(ids))
            report.tensor(name, f"{tag}: decoded audio, same seed {tuple(ref_audio.shape)}", audio, ref_audio, TOL32)
            report.exact(name, f"{tag}: decode returns positions x hop_length = {ids.shape[-1] * ours.hop_length}",
                         audio.shape[-1] == ids.shape[-1] * ours.hop_length)
            for k in range(1, q):
                ref_k = _seeded(seed + 8, lambda: official_partial_decode(official, ref_codes, k))[:, 0]
                ours_k = _seeded(seed + 8, lambda: ours.decode(ids[:, : ours.quantizer.slots(k)]))
                report.tensor(name, f"{tag}: decoded audio, first {k} levels", ours_k, ref_k, TOL32)
            ref_forward, ref_fcodes = _seeded(seed + 9, lambda: official(wav))
            forward = _seeded(seed + 9, lambda: ours(x))
            report.tensor(name, f"{tag}: forward (eval) {tuple(ref_forward.shape)}", forward.recon,
                          ref_forward[:, 0], TOL32)
            report.ids(name, f"{tag}: forward ids", ours.ids_to_levels(forward.indices), ref_fcodes)

    # batched vs single: our batch of unequal lengths vs the official model on each clip alone
    lengths = [longest, longest // 2 + 5, pad // 4]
    padded = wav_all.clone()
    for i, n in enumerate(lengths):
        padded[i, :, n:] = 0
    seeds = [seed + 100 + i for i in range(len(lengths))]
    with torch.inference_mode():
        batch_ids = ours.encode(padded[:, 0], lengths=torch.tensor(lengths))
        batch_audio = ours.decode(batch_ids, generator=[torch.Generator().manual_seed(s) for s in seeds])
        for i, n in enumerate(lengths):
            ref_codes = official.encode(wav_all[i: i + 1, :, :n])
            frames = ref_codes[0].shape[-1]
            report.ids(name, f"batched unequal lengths: item {i} ({n} samples) ids",
                          ours.ids_to_levels(batch_ids[i: i + 1, :, :frames]), ref_codes)
            report.exact(name, f"batched unequal lengths: item {i} padding",
                         bool((batch_ids[i, :, frames:] == -1).all()))
            ref_audio = _seeded(seeds[i], lambda: official.decode(ref_codes))[:, 0]
            report.tensor(name, f"batched unequal lengths: item {i} audio (per-item generator == official alone)",
                          batch_audio[i: i + 1, : ref_audio.shape[-1]], ref_audio, TOL32)
            report.exact(name, f"batched unequal lengths: item {i} zeros past its positions",
                         not batch_audio[i, ref_audio.shape[-1]:].any())

    official64, ours64 = official.double(), ours.double()
    one = official64.preprocess(wav_all[:1, :, :pad].double())
    with torch.inference_mode():
        ref64 = official64.encoder(one)
        lat64 = ours64.encoder(one)
        dec_ref64 = _seeded(seed + 11, lambda: official64.decoder(ref64))
        dec64 = _seeded(seed + 11, lambda: ours64.decoder(ref64))
    report.tensor(name, f"fp64: encoder latent (1 clip, {pad} samples)", lat64, ref64, TOL64)
    report.tensor(name, "fp64: decoder, same latent, same seed", dec64, dec_ref64, TOL64)
    official.float()
    ours.float()
    with torch.inference_mode():
        info.update(search_stats(official, wav_all))
    info.update(batch=int(wav_all.shape[0]), samples=longest)
    return info


def write(report: Report, extra: Dict[str, Any], out: Path) -> bool:
    header = [
        "Parity: tokzoo SNAC vs the official snac package (seeded random weights, full-size release configs)",
        f"date {extra['date']}  torch {extra['torch']}  device cpu  {platform.machine()} threads "
        f"{torch.get_num_threads()}  fp32 unless noted",
        f"command: {extra['command']}",
        f"snac {extra['snac']}  einops {extra['einops']}",
        "inputs: a speech and a music clip (corpus */val) and a bundled sample (audiotok/assets/samples), 24 kHz mono, "
        "resampled to 32 / 44.1 kHz with audiotok.dsp.resample; T = samples per clip",
    ]
    notes = []
    for info in extra["cases"]:
        notes.append(f"{info['case']}: {info['batch']} clips up to {info['samples']} samples at {info['rate']} Hz, "
                     f"{info['params']:,} parameters, padding multiple {info['pad_multiple']}, level rates "
                     f"{info['level_rates']} tokens/s, at least {info['unique_ids']} distinct ids on every level, "
                     f"smallest top-1/top-2 cosine score gap {info['min_top2_gap']:.3e}")
    return write_report(report, extra, out, header, notes, case_width=6, check_width=82)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the 24 kHz model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=1.0, help="clip length")
    parser.add_argument("--out", default=str(REPO / "eval/results/parity_snac"))
    args = parser.parse_args(argv)
    if not _version("snac"):
        raise SystemExit("the official snac package is not installed (see this script's docstring)")
    warnings.filterwarnings("ignore")  # torch.jit.script in the official code is deprecated
    report = Report()
    names = ["24khz"] + ([] if args.quick else ["32khz", "44khz"])
    infos = [run_case(name, report, args.seed, args.seconds) for name in names]
    extra = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "torch": torch.__version__, "snac": _version("snac"), "einops": _version("einops"),
             "command": "python eval/parity_snac.py " + " ".join(argv if argv is not None else sys.argv[1:]),
             "cases": infos}
    return 0 if write(report, extra, Path(args.out)) else 1


if __name__ == "__main__":
    sys.exit(main())
