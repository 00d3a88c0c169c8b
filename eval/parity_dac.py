"""Parity with the OFFICIAL DAC implementation (the ``descript-audio-codec`` package on PyPI).

What it proves: for each released configuration (16 kHz: strides 2-4-5-8, 12 levels; 24 kHz: the
same strides, 32 levels; 44.1 kHz: strides 2-4-8-8, 9 levels; all with 1024-entry codebooks of
dimension 8), the official ``dac.DAC`` is built with seeded random weights and saved with its own
``save(path, package=False)``: the ``{"state_dict", "metadata": {"kwargs"}}`` ``.pth`` layout that
``dac.utils.download`` fetches. That file is read back with
:func:`vistok.models.state_dict.read_state_dict` (``torch.load(weights_only=True)``), its config
resolved from the metadata by :func:`audiotok.models.dac.convert.resolve_card_config` (from the zoo
card's config), converted by :func:`audiotok.models.dac.convert.convert_dac_state_dict` and loaded
*strictly* into :class:`audiotok.models.dac.DAC`.

Checked per case, fp32, eval mode, on real audio (a speech and a music clip from the corpus val
split and a bundled sample, resampled from 24 kHz with :func:`audiotok.dsp.resample` for 16 and
44.1 kHz), a batch whose length is not a multiple of the hop:

- the encoder latent on the official ``preprocess`` (right zero-padding to the hop);
- token ids at several level counts, exact (official ``encode(preprocess(x), n_quantizers)``);
- decoded audio (official ``decoder(quantizer.from_codes(codes))``) from our ids and from the
  official ones, and ``forward`` vs the official ``forward``;
- the official ``compress`` in its unchunked mode (window covering the input, no loudness
  normalisation): the same ids;
- batched vs single: our batch of unequal lengths (``lengths``) vs the official model on each clip
  alone, ids exact and audio;
- the encoder and decoder in float64, showing that fp32 differences are rounding;
- with transformers importable: its ``DacModel`` (weight norm removed, as it keeps its weights)
  with the same weights; its layout converts and loads strictly, its encoder / decoder agree, and
  its ids agree with ours (its distance formula and the removed weight norm round differently, so
  the share of equal ids is reported and must be at least 99.9%).

Audio passes when ``max |ours - official| <= 1e-4 * max |official|`` in fp32 (``1e-9`` in fp64).
The exit code is non-zero when any check fails. Results go to ``eval/results/parity_dac.{txt,json}``
(``--out`` to change).

Weights: the official modules keep their own init under ``torch.manual_seed`` (standard normal
codebooks), then (seeded) every weight-norm gain, Snake ``alpha`` and convolution bias is perturbed
so that none is an identity. The number of distinct ids on the least used level and the smallest
top-1/top-2 score gap of the search over all levels are reported (equal latents make equal ids
meaningful rather than lucky).

Running it (the official package is imported, never copied into this repository)::

    python -m venv --system-site-packages /tmp/parity_dac
    /tmp/parity_dac/bin/pip install --no-deps descript-audio-codec descript-audiotools torchaudio julius \
        argbind flatten_dict rich ffmpy importlib-resources markdown-it-py mdurl randomname docstring_parser
    /tmp/parity_dac/bin/pip install --no-deps transformers   # optional: its DacModel layout
    /tmp/parity_dac/bin/python eval/parity_dac.py [--quick]

``--quick`` runs only the 16 kHz model.
"""
from __future__ import annotations

import argparse
import datetime
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
from audiotok.models.dac import DAC, DACConfig  # noqa: E402
from audiotok.models.dac.convert import convert_dac_state_dict, resolve_card_config  # noqa: E402
from vistok.models.state_dict import load_strict, read_state_dict  # noqa: E402
from parity_report import Report, write as write_report  # noqa: E402  (eval/ is on sys.path)

CORPUS = REPO.parent / "shared/corpus/audio"
SAMPLES = REPO / "audiotok/assets/samples"
TOL32, TOL64 = 1e-4, 1e-9
OFFICIAL_KWARGS = {  # conf/final/<rate>.yml of the official repository
    "16khz": dict(sample_rate=16000, encoder_rates=[2, 4, 5, 8], decoder_rates=[8, 5, 4, 2], n_codebooks=12),
    "24khz": dict(sample_rate=24000, encoder_rates=[2, 4, 5, 8], decoder_rates=[8, 5, 4, 2], n_codebooks=32),
    "44khz": dict(sample_rate=44100, encoder_rates=[2, 4, 8, 8], decoder_rates=[8, 8, 4, 2], n_codebooks=9),
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

def build_official(name: str):
    import dac

    return dac.DAC(**OFFICIAL_KWARGS[name]).eval()


@torch.no_grad()
def randomise(official, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)

    def noise(t, scale):
        return torch.randn(t.shape, generator=gen) * scale

    for name, p in official.named_parameters():
        if name.endswith("weight_g"):
            p.mul_(1 + noise(p, 0.1))
        elif name.endswith("alpha"):
            p.mul_(torch.exp(noise(p, 0.3)))
        elif name.endswith(".bias"):
            p.add_(noise(p, 0.02))


def official_codes(official, wav: torch.Tensor, n: Optional[int]):
    """(z, codes) of the official ``encode`` on ``preprocess(wav)``."""
    z, codes, *_ = official.encode(official.preprocess(wav, official.sample_rate), n)
    return z, codes


def official_decode(official, codes: torch.Tensor) -> torch.Tensor:
    return official.decode(official.quantizer.from_codes(codes)[0])


def search_stats(official, wav: torch.Tensor) -> Dict[str, float]:
    """Distinct ids on the least used level, and the smallest top-1/top-2 gap of the official
    search scores (fp64) over all frames and levels."""
    import torch.nn.functional as F

    residual = official.encoder(official.preprocess(wav, official.sample_rate)).double()
    gap, unique = float("inf"), None
    for q in official.quantizer.quantizers:
        q = q.double()
        z_e = q.in_proj(residual)
        rows = F.normalize(z_e.permute(0, 2, 1).reshape(-1, z_e.shape[1]))
        scores = rows @ F.normalize(q.codebook.weight).t()
        top = scores.topk(2, dim=1)
        gap = min(gap, float((top.values[:, 0] - top.values[:, 1]).min()))
        idx = top.indices[:, 0]
        unique = idx.unique().numel() if unique is None else min(unique, idx.unique().numel())
        code = q.codebook(idx.reshape(z_e.shape[0], -1)).transpose(1, 2)
        residual = residual - q.out_proj(code)
        q.float()
    return dict(unique_ids=int(unique), min_top2_gap=gap)


# ----- reporting -----


def card_config(name: str) -> Dict[str, Any]:
    """The zoo card's config for release ``name`` (``zoo/dac-<name>.yaml``)."""
    import yaml

    return dict(yaml.safe_load((REPO / "zoo" / f"dac-{name}.yaml").read_text())["config"])


# ----- one case -----

def run_case(name: str, report: Report, seed: int, seconds: float) -> Dict[str, Any]:
    torch.manual_seed(seed)
    official = build_official(name)
    randomise(official, seed + 1)
    rate, hop = official.sample_rate, int(official.hop_length)
    samples = int(seconds * rate) + 7
    wav = batch(rate, samples)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"weights_{name}-random.pth"
        official.save(str(path), package=False)
        raw = read_state_dict(path)
        config = resolve_card_config(card_config(name), path, "dac")
        import dac

        reloaded = dac.DAC.load(str(path)).eval()
    report.exact(name, "card config + release metadata == our preset",
                 DACConfig(**config).to_dict() == DACConfig.preset(name).to_dict(), f"{len(config)} fields")
    report.exact(name, "the official DAC.load reads the file back",
                 all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), official.state_dict().values())))
    ours = DAC(config).eval()
    converted = convert_dac_state_dict(raw, ours.config)
    load_strict(ours, converted, f"{name} (official .pth layout)")
    report.exact(name, f"strict load from .pth ({len(raw)} keys -> {len(converted)})", True)
    params = sum(p.numel() for p in ours.parameters())
    report.exact(name, "parameter count equals the official model's",
                 params == sum(p.numel() for p in official.parameters()), f"{params:,}")
    info: Dict[str, Any] = dict(case=name, batch=int(wav.shape[0]), samples=samples, rate=rate, params=params)

    x = wav[:, 0]
    with torch.inference_mode():
        ref_latent = official.encoder(official.preprocess(wav, rate))
        latent = ours.encoder(ours._pad_to_hop(wav))
    report.tensor(name, f"encoder latent {tuple(ref_latent.shape)}", latent, ref_latent, TOL32)

    q = ours.num_codebooks
    for n in sorted({1, 2, q // 2, q}):
        with torch.inference_mode():
            _, ref_ids = official_codes(official, wav, n)
            ref_audio = official_decode(official, ref_ids)[:, 0]
            ids = ours.encode(x, num_quantizers=n)
            audio = ours.decode(ids)
            from_ref = ours.decode(ref_ids)
        m = ref_audio.shape[-1]
        report.ids(name, f"ids, {n} of {q} levels {tuple(ref_ids.shape)}", ids, ref_ids)
        report.tensor(name, f"decoded audio, {n} levels {tuple(ref_audio.shape)}", audio[:, :m], ref_audio, TOL32)
        report.tensor(name, f"decoded from the official ids, {n} levels", from_ref[:, :m], ref_audio, TOL32)
        report.exact(name, f"decode: {audio.shape[-1]} samples = tokens x hop, official {m} then zeros",
                     audio.shape[-1] == ids.shape[-1] * hop and not audio[:, m:].any())
    with torch.inference_mode():
        ref_forward = official(wav)["audio"][:, 0]
        forward = ours(x).recon
    m = ref_forward.shape[-1]
    report.tensor(name, f"forward (eval) {tuple(ref_forward.shape)}", forward[:, :m], ref_forward, TOL32)
    report.exact(name, f"forward: recon has the input's {samples} samples", forward.shape == x.shape)

    compress_check(name, official, ours, wav, report)

    # batched vs single: our batch of unequal lengths vs the official model on each clip alone
    lengths = [samples, samples * 2 // 3 + 5, hop * 3]
    padded = wav.clone()
    for i, n in enumerate(lengths):
        padded[i, :, n:] = 0
    n_levels = max(1, q // 2)
    with torch.inference_mode():
        batch_ids = ours.encode(padded[:, 0], num_quantizers=n_levels, lengths=torch.tensor(lengths))
        batch_audio = ours.decode(batch_ids)
        for i, n in enumerate(lengths):
            _, ref_ids = official_codes(official, wav[i: i + 1, :, :n], n_levels)
            ref_audio = official_decode(official, ref_ids)[:, 0]
            report.ids(name, f"batched unequal lengths: item {i} ({n} samples) ids",
                       batch_ids[i: i + 1, :, : ref_ids.shape[-1]], ref_ids)
            report.exact(name, f"batched unequal lengths: item {i} padding",
                         bool((batch_ids[i, :, ref_ids.shape[-1]:] == -1).all()))
            report.tensor(name, f"batched unequal lengths: item {i} audio",
                          batch_audio[i: i + 1, : ref_audio.shape[-1]], ref_audio, TOL32)

    official64, ours64 = official.double(), ours.double()
    one = wav[:1, :, : hop * 40].double()
    with torch.inference_mode():
        ref64 = official64.encoder(one)
        lat64 = ours64.encoder(one)
        dec_ref64 = official64.decoder(ref64)
        dec64 = ours64.decoder(ref64)
    report.tensor(name, "fp64: encoder latent (1 clip, 40 frames)", lat64, ref64, TOL64)
    report.tensor(name, "fp64: decoder, same latent", dec64, dec_ref64, TOL64)
    official.float()
    ours.float()

    if _version("transformers"):
        transformers_checks(name, official, ours, wav, report)
    with torch.inference_mode():
        info.update(search_stats(official, wav))
    return info


def compress_check(name, official, ours, wav, report: Report) -> None:
    """The official ``compress`` in its unchunked mode (the window covers the input) without loudness
    normalisation, on the clips at half amplitude (its peak limiter then leaves them alone)."""
    from audiotools import AudioSignal

    quiet = wav * 0.5
    assert float(quiet.abs().max()) < 1
    with torch.inference_mode():
        packed = official.compress(AudioSignal(quiet.clone(), official.sample_rate), win_duration=None,
                                   normalize_db=None)
        ids = ours.encode(quiet[:, 0])
    report.ids(name, f"official compress (unchunked, no loudness normalisation) ids {tuple(packed.codes.shape)}",
               ids, packed.codes)


def _transformers_state(official) -> Dict[str, torch.Tensor]:
    """The official weights in transformers' DacModel layout, weight norm folded into ``weight``."""
    from audiotok.models.dac.convert import module_table

    cfg = DACConfig(**{"num_quantizers": official.n_codebooks, "sample_rate": official.sample_rate,
                       "encoder_rates": list(official.encoder_rates), "decoder_rates": list(official.decoder_rates)})
    to_hf = {theirs: ours for theirs, ours in module_table(cfg, "dac").items()}
    ours_to_hf = {ours: theirs for theirs, ours in module_table(cfg, "transformers").items()}
    state = official.state_dict()
    out = {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        target = ours_to_hf[to_hf[module]]
        if leaf == "weight_v":
            out[f"{target}.weight"] = torch._weight_norm(value, state[f"{module}.weight_g"], 0)
        elif leaf != "weight_g":
            out[f"{target}.{leaf}"] = value
    return out


def transformers_checks(name, official, ours, wav, report: Report) -> None:
    """transformers' DacModel with the official weights (weight norm removed, as DacModel keeps them)."""
    from transformers import DacConfig as HFConfig
    from transformers import DacModel as HFModel

    hf = HFModel(HFConfig(encoder_hidden_size=64, downsampling_ratios=list(official.encoder_rates),
                          decoder_hidden_size=1536, upsampling_ratios=list(official.decoder_rates),
                          n_codebooks=official.n_codebooks, codebook_size=1024, codebook_dim=8,
                          sampling_rate=official.sample_rate)).eval()
    state = _transformers_state(official)
    missing, unexpected = hf.load_state_dict(state, strict=False)
    report.exact(name, f"transformers {_version('transformers')}: strict load of the official weights",
                 not missing and not unexpected, f"{len(missing)} missing, {len(unexpected)} unexpected")
    mine = DAC(ours.config).eval()
    load_strict(mine, convert_dac_state_dict(state, mine.config), f"{name} (transformers layout)")
    report.exact(name, "transformers layout converts and loads strictly", True)
    x = official.preprocess(wav, official.sample_rate)
    with torch.inference_mode():
        ref_latent = official.encoder(x)
        report.tensor(name, "transformers encoder == official encoder", hf.encoder(x), ref_latent, TOL32)
        hf_ids = hf.encode(x).audio_codes
        ids = mine.encode(wav[:, 0])
        share = float((hf_ids == ids).float().mean())
        report.exact(name, f"transformers ids == ours from its layout ({share:.5%} equal)", share >= 0.999,
                     f"{int((hf_ids != ids).sum())} of {ids.numel()} differ")
        ref_audio = hf.decode(audio_codes=hf_ids).audio_values
        report.tensor(name, "transformers decode(ids) == ours (its layout, same ids)",
                      mine.decode(hf_ids)[:, : ref_audio.shape[-1]], ref_audio, TOL32)
        report.tensor(name, "transformers decode == official decode (same ids)", ref_audio,
                      official_decode(official, hf_ids)[:, 0], TOL32)


def write(report: Report, extra: Dict[str, Any], out: Path) -> bool:
    header = [
        "Parity: tokzoo DAC vs the official descript-audio-codec package (seeded random weights)",
        f"date {extra['date']}  torch {extra['torch']}  device cpu  {platform.machine()} threads "
        f"{torch.get_num_threads()}  fp32 unless noted",
        f"command: {extra['command']}",
        f"descript-audio-codec {extra['descript-audio-codec']}  descript-audiotools {extra['descript-audiotools']}  "
        f"transformers {extra['transformers']}",
        "inputs: a speech and a music clip (corpus */val) and a bundled sample (audiotok/assets/samples), 24 kHz mono, "
        "resampled to 16 / 44.1 kHz with audiotok.dsp.resample",
    ]
    notes = []
    for info in extra["cases"]:
        notes.append(f"{info['case']}: {info['batch']} x {info['samples']} samples at {info['rate']} Hz, "
                     f"{info['params']:,} parameters, at least {info['unique_ids']} distinct ids on every level, "
                     f"smallest top-1/top-2 cosine score gap {info['min_top2_gap']:.3e}")
    return write_report(report, extra, out, header, notes, case_width=6, check_width=76)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the 16 kHz model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=1.5, help="clip length")
    parser.add_argument("--out", default=str(REPO / "eval/results/parity_dac"))
    args = parser.parse_args(argv)
    if not _version("descript-audio-codec"):
        raise SystemExit("the official descript-audio-codec package is not installed (see this script's docstring)")
    warnings.filterwarnings("ignore")  # the official code uses the deprecated torch weight_norm
    report = Report()
    names = ["16khz"] + ([] if args.quick else ["24khz", "44khz"])
    infos = [run_case(name, report, args.seed, args.seconds) for name in names]
    extra = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "torch": torch.__version__, "descript-audio-codec": _version("descript-audio-codec"),
             "descript-audiotools": _version("descript-audiotools"), "torchaudio": _version("torchaudio"),
             "transformers": _version("transformers") or "not installed (its layout unchecked)",
             "command": "python eval/parity_dac.py " + " ".join(argv if argv is not None else sys.argv[1:]),
             "cases": infos}
    return 0 if write(report, extra, Path(args.out)) else 1


if __name__ == "__main__":
    sys.exit(main())
