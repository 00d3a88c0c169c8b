"""Parity with the OFFICIAL Mimi (kyutai-labs/moshi's ``moshi`` package on PyPI) and with
transformers' ``MimiModel`` layout.

What it proves: for each configuration (``tiny``: a small model of every option's shape; ``full``:
the release, ``moshi.models.loaders._mimi_config``), moshi's ``MimiModel`` is built as
``moshi.models.loaders.get_mimi`` builds it (its own SEANet, ``ProjectedTransformer`` and
``SplitResidualVectorQuantizer`` classes, with the config dict mapped from our
:class:`audiotok.models.mimi.MimiConfig`) with seeded random weights, and its ``state_dict`` saved
with ``safetensors`` (the layout of ``tokenizer-e351c8d8-checkpoint125.safetensors``). That file is
read back with :func:`vistok.models.state_dict.read_state_dict`, converted by
:func:`audiotok.models.mimi.convert.convert_mimi_state_dict` and loaded *strictly* into
:class:`audiotok.models.mimi.Mimi`.

Checked per case, fp32, eval mode, on real audio (speech and music clips of the corpus val split
and a bundled sample, 24 kHz; for ``tiny`` the clips are read at its rate), at several lengths
(multiples of the 1920-sample frame and not):

- the unquantized latent (moshi's ``_encode_to_unquantized_latent``);
- ids at every level count 1..Q, exact: ours ``encode`` (all levels) has moshi's ids at ``n``
  levels (``set_num_codebooks(n)`` + ``encode``) as its first ``n`` rows, and ours
  ``encode(num_quantizers=n)`` for a few ``n`` end to end;
- decoded audio from the first ``n`` levels (moshi's ``decode``), ``max |diff| <= 1e-4 max |ref|``;
- batched vs single: our batch of unequal lengths (``lengths``) against moshi on each clip alone
  (ids exact, audio);
- streaming decode (ours, chunks of 1, 3 and 7 frames) against our one-shot decode within 1e-5;
  moshi's own streaming decode (``with model.streaming(batch)``, 1-frame chunks) is reported against
  its one-shot decode (it drifts from it; ours follows the one-shot decode);
- transformers' ``MimiModel`` (its package imported, nothing copied): our weights written in its
  flat hub layout with :func:`~audiotok.models.mimi.convert.to_official_state_dict` and a
  ``config.json`` from its ``MimiConfig``, loaded with its ``from_pretrained``; its
  ``save_pretrained`` output converted back and loaded strictly into ours; its ``config.json``
  mapped by :func:`~audiotok.models.mimi.convert.config_from_transformers` equals our config; its
  encoder latent, its quantizer on our latent (ids exact), its end-to-end ``encode`` (ids exact), at
  a length that is not a multiple of the frame its ``encode`` of the waveform zero-padded to the frame
  (ids exact: moshi and ours pad the waveform once; transformers pads each convolution's input
  instead, which changes the last frame of an unpadded input: reported, not a check) and its
  decoding of our ids.

Weights: the official modules' init under ``torch.manual_seed``, then (seeded) every bias, norm
weight and layer scale perturbed (layer scales drawn in [0.05, 0.5], not the 0.01 init, so the
transformers matter), and the codebooks drawn around the latents: level by level, the code vectors
are residual vectors of the clips plus noise of one standard deviation of those vectors,
``cluster_usage`` drawn in [0.5, 2] (so the division in ``embedding_sum / cluster_usage`` matters).
The noise must be that wide: with half a standard deviation every frame has a close noisy copy of
itself on every level, the residual shrinks about 2x per level and from level ~13 on it is ~1e-5
of the latent, below fp32 rounding, so the deep ids were set by rounding (ours in fp32 and in fp64
then differed on 175 of 384 ids, as transformers' and ours did on 165). The distinct ids on the
least used level, the smallest relative top-1/top-2 distance gap and ours fp32 vs fp64 ids (a check:
the ids must not depend on rounding) are reported.

Running it (the official package is imported, never copied into this repository)::

    python -m venv --system-site-packages /tmp/parity_mimi
    /tmp/parity_mimi/bin/pip install --no-deps moshi==0.2.13 sentencepiece transformers==5.25.0 tokenizers
    /tmp/parity_mimi/bin/python eval/parity_mimi.py [--quick]

``--quick`` runs only the tiny config. Results go to ``eval/results/parity_mimi.{txt,json}``.
"""
from __future__ import annotations

import argparse
import copy
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

from audiotok.models.mimi import Mimi, MimiConfig  # noqa: E402
from audiotok.models.mimi.convert import (config_from_transformers, convert_mimi_state_dict,  # noqa: E402
                                          to_official_state_dict)
from vistok.models.state_dict import load_strict, read_state_dict  # noqa: E402
from parity_report import Report, write as write_report  # noqa: E402  (eval/ is on sys.path)

CORPUS = REPO.parent / "shared/corpus/audio"
SAMPLES = REPO / "audiotok/assets/samples"
TOL = 1e-4
TINY = dict(sample_rate=24000, dim=32, n_filters=4, strides=[2, 3, 4], residual_layers=2, num_layers=2, num_heads=4,
            dim_feedforward=48, context=5, num_quantizers=6, num_semantic=1, codebook_size=64, codebook_dim=8)


def _version(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def clips(samples: int) -> List[torch.Tensor]:
    """A speech clip, a music clip (corpus val split) and a bundled sample, 24 kHz mono, cut to ``samples``."""
    import soundfile as sf

    out = []
    for source in (sorted((CORPUS / "speech" / "val").glob("*.flac")), sorted((CORPUS / "music" / "val").glob("*.flac")),
                   sorted(SAMPLES.glob("*.flac"))):
        for path in source:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
            if rate == 24000 and data.shape[0] >= samples:
                out.append(torch.from_numpy(data.mean(1)[:samples].copy()))
                break
        else:
            raise SystemExit(f"need clips of >= {samples} samples at 24 kHz under {CORPUS} and {SAMPLES}")
    return out


# ----- the official model -----

def moshi_config(cfg: MimiConfig) -> Dict[str, Any]:
    """``loaders._mimi_config`` with our config's values."""
    from moshi.models import loaders

    out = copy.deepcopy(loaders._mimi_config)
    out["sample_rate"] = cfg.sample_rate
    out["frame_rate"] = cfg.token_rate
    out["seanet"].update(dimension=cfg.dim, n_filters=cfg.n_filters, ratios=list(reversed(cfg.strides)),
                         n_residual_layers=cfg.residual_layers, kernel_size=cfg.kernel_size,
                         last_kernel_size=cfg.last_kernel_size, residual_kernel_size=cfg.residual_kernel_size,
                         dilation_base=cfg.dilation_base, compress=cfg.compress)
    out["transformer"].update(d_model=cfg.dim, num_heads=cfg.num_heads, num_layers=cfg.num_layers,
                              dim_feedforward=cfg.dim_feedforward, context=cfg.context, max_period=cfg.max_period,
                              layer_scale=cfg.layer_scale, input_dimension=cfg.dim, output_dimensions=[cfg.dim])
    out["quantizer"].update(dimension=cfg.codebook_dim, n_q=cfg.num_quantizers, bins=cfg.codebook_size,
                            input_dimension=cfg.dim, output_dimension=cfg.dim)
    return out


def build_official(cfg: MimiConfig):
    from moshi.models import loaders

    return loaders.get_mimi(None, moshi_config(cfg), num_codebooks=cfg.num_quantizers).eval()


@torch.no_grad()
def randomise(official, wav: torch.Tensor, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)

    def noise(shape, scale):
        return torch.randn(shape, generator=gen) * scale

    for name, p in official.named_parameters():
        if name.endswith("scale"):
            p.copy_(0.05 + 0.45 * torch.rand(p.shape, generator=gen))
        elif name.endswith("bias") or "norm" in name:
            p.add_(noise(p.shape, 0.05))
    latent = official._encode_to_unquantized_latent(wav[:, None])
    for side in (official.quantizer.rvq_first, official.quantizer.rvq_rest):
        residual = side.input_proj(latent)
        for layer in side.vq.layers:
            rows = residual.transpose(1, 2).reshape(-1, residual.shape[1])
            book = layer._codebook
            pick = torch.randint(0, rows.shape[0], (book.codebook_size,), generator=gen)
            codes = rows[pick] + noise((book.codebook_size, rows.shape[1]), 1.0) * rows.std(0)
            usage = 0.5 + 1.5 * torch.rand(book.codebook_size, generator=gen)
            book.embedding_sum.copy_(codes * usage[:, None])
            book.cluster_usage.copy_(usage)
            book._initialized.fill_(1.0)
            book.register_buffer("_embedding", None, persistent=False)
            residual = residual - layer.decode(layer.encode(residual))



def search_margin(model: Mimi, wav: torch.Tensor) -> Dict[str, float]:
    """Distinct ids on the least used level, and the smallest relative top-1/top-2 distance gap."""
    ids = model.encode(wav)
    distinct = min(int(ids[:, q].unique().numel()) for q in range(ids.shape[1]))
    quant = model.quantizer
    z = model._latent(model._pad_to_hop(wav[:, None]))
    gap = float("inf")
    for rvq, proj, first in ((quant.semantic, quant.semantic_in, 0), (quant.acoustic, quant.acoustic_in, quant.num_semantic)):
        residual = proj(z).transpose(1, 2).reshape(-1, proj.out_channels).double()
        for i in range(len(rvq.quantizers)):
            book = rvq.level(i).codebook().double()
            d = torch.cdist(residual, book)
            top = d.topk(2, largest=False).values
            gap = min(gap, float(((top[:, 1] - top[:, 0]) / top[:, 1].clamp_min(1e-30)).min()))
            residual = residual - book[ids[:, first + i].reshape(-1)]
    return dict(unique_ids=distinct, min_rel_gap=gap)


# ----- one case -----

@torch.no_grad()
def run_case(name: str, cfg: MimiConfig, report: Report, seed: int, seconds: float, quick_levels: bool):
    torch.manual_seed(seed)
    official = build_official(cfg)
    hop = cfg.hop_length
    longest = int(seconds * cfg.sample_rate)
    base = torch.stack(clips(longest + hop))
    randomise(official, base, seed + 1)
    ours = Mimi(cfg).eval()
    with tempfile.TemporaryDirectory() as tmp:
        from safetensors.torch import save_file

        path = Path(tmp) / "tokenizer-checkpoint.safetensors"
        save_file({k: v.contiguous() for k, v in official.state_dict().items()}, str(path))
        state = read_state_dict(path)
        load_strict(ours, convert_mimi_state_dict(state, cfg), str(path))
    report.exact(name, f"strict load from moshi's safetensors ({len(state)} keys)", True)
    n_ours = sum(p.numel() for p in ours.parameters())
    n_theirs = sum(p.numel() for p in official.parameters())
    report.exact(name, "parameter count equals moshi's", n_ours == n_theirs, f"{n_ours:,}")
    short = hop - min(100, hop // 3)  # shorter than one frame
    lengths = [hop * 3, hop * 3 + 7, short, longest]
    levels = list(range(1, cfg.num_quantizers + 1))
    decode_levels = sorted({1, 2, min(8, cfg.num_quantizers), cfg.num_quantizers})
    for n in lengths:
        wav = base[:, :n]
        case = f"{name} T={n}"
        ref_latent = official._encode_to_unquantized_latent(wav[:, None])
        report.tensor(case, f"unquantized latent {tuple(ref_latent.shape)}",
                      ours._latent(ours._pad_to_hop(wav[:, None])), ref_latent)
        full = ours.encode(wav)
        bad = []
        for q in levels:
            official.set_num_codebooks(q)
            ref = official.encode(wav[:, None])
            if not torch.equal(full[:, :q], ref):
                bad.append(q)
            if q in decode_levels:
                report.ids(case, f"ids encode(num_quantizers={q}) {tuple(ref.shape)}", ours.encode(wav, num_quantizers=q), ref)
                report.tensor(case, f"decoded audio, {q} levels", ours.decode(ref), official.decode(ref)[:, 0])
        report.exact(case, f"ids at every level count 1..{cfg.num_quantizers}: first n rows == moshi's n-level ids",
                     not bad, "equal" if not bad else f"differ at {bad}")
    official.set_num_codebooks(cfg.num_quantizers)
    # batched of unequal lengths vs each alone
    sizes = [longest, hop * 2 + 5, short]
    wav = base[:, :longest].clone()
    for i, n in enumerate(sizes):
        wav[i, n:] = 0
    ids = ours.encode(wav, lengths=torch.tensor(sizes))
    out = ours.decode(ids)
    ok_ids, worst = True, 0.0
    for i, n in enumerate(sizes):
        ref = official.encode(base[i: i + 1, None, :n])
        k = ref.shape[-1]
        ok_ids &= torch.equal(ids[i: i + 1, :, :k], ref) and bool((ids[i, :, k:] == -1).all())
        audio = official.decode(ref)[0, 0]
        worst = max(worst, float((out[i, : audio.shape[-1]] - audio).abs().max() / audio.abs().max()))
        ok_ids &= bool((out[i, audio.shape[-1]:] == 0).all())
    report.exact(name, f"batched lengths {sizes}: ids == moshi on each alone, PAD_ID after", ok_ids)
    report.exact(name, "batched decode == moshi's decode of each alone (rel, zeros after)", worst <= TOL, f"{worst:.2e}")
    # streaming
    ids = ours.encode(base[:, : hop * 9 + 11])
    one_shot = ours.decode(ids)
    for chunk in (1, 3, 7):
        dec = ours.streaming_decoder()
        parts = [dec.step(ids[..., s: s + chunk]) for s in range(0, ids.shape[-1], chunk)] + [dec.flush()]
        report.tensor(name, f"streaming decode, chunks of {chunk} frames == one-shot {tuple(one_shot.shape)}",
                      torch.cat(parts, -1), one_shot, 1e-5)
    with official.streaming(ids.shape[0]):
        theirs = torch.cat([official.decode(ids[..., s: s + 1]) for s in range(ids.shape[-1])], -1)[:, 0]
    moshi_one_shot = official.decode(ids)[:, 0]
    drift = float((theirs - moshi_one_shot).abs().max() / moshi_one_shot.abs().max())
    report.exact(name, "(reported, not a check) moshi's own streaming decode vs its one-shot decode, rel", True,
                 f"{drift:.2e}")
    info = dict(case=name, params=n_ours, lengths=lengths, **search_margin(ours, base[:, : hop * 4]))
    # the codebooks must not leave the ids to rounding: the same weights in fp64 give the same ids
    wide = copy.deepcopy(ours).double()
    for n in (hop * 4, longest):
        report.ids(f"{name} T={n}", "our fp32 ids == our fp64 ids (not rounding-bound)", ours.encode(base[:, :n]),
                   wide.encode(base[:, :n].double()))
    if _version("transformers"):
        transformers_checks(name, cfg, ours, base, report)
    return info


def hf_config(cfg: MimiConfig):
    from transformers import MimiConfig as HFConfig

    return HFConfig(sampling_rate=cfg.sample_rate, frame_rate=cfg.token_rate, hidden_size=cfg.dim,
                    num_filters=cfg.n_filters, num_residual_layers=cfg.residual_layers,
                    upsampling_ratios=list(reversed(cfg.strides)), kernel_size=cfg.kernel_size,
                    last_kernel_size=cfg.last_kernel_size, residual_kernel_size=cfg.residual_kernel_size,
                    dilation_growth_rate=cfg.dilation_base, compress=cfg.compress, codebook_size=cfg.codebook_size,
                    codebook_dim=cfg.codebook_dim, vector_quantization_hidden_dimension=cfg.codebook_dim,
                    num_quantizers=cfg.num_quantizers, num_semantic_quantizers=cfg.num_semantic,
                    upsample_groups=cfg.dim, num_hidden_layers=cfg.num_layers, intermediate_size=cfg.dim_feedforward,
                    num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
                    head_dim=cfg.dim // cfg.num_heads, sliding_window=cfg.context,
                    layer_scale_initial_scale=cfg.layer_scale, rope_parameters={"rope_theta": cfg.max_period,
                                                                                "rope_type": "default"})


@torch.no_grad()
def transformers_checks(name: str, cfg: MimiConfig, ours: Mimi, base: torch.Tensor, report: Report) -> None:
    from safetensors.torch import save_file
    from transformers import MimiModel

    case = f"{name} hf"
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        hf_config(cfg).save_pretrained(str(src))
        flat = to_official_state_dict(ours.state_dict(), cfg, "transformers")
        save_file({k: v.contiguous() for k, v in flat.items()}, str(src / "model.safetensors"))
        model, info = MimiModel.from_pretrained(str(src), output_loading_info=True, use_kernels=False)
        model = model.float().eval()
        problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        report.exact(case, "transformers' from_pretrained reads our flat-layout file (no missing/unexpected keys)",
                     not problems, str(problems)[:60] if problems else f"{len(flat)} keys")
        model.save_pretrained(str(dst))
        written = read_state_dict(dst / "model.safetensors")
        back = Mimi(cfg).eval()
        load_strict(back, convert_mimi_state_dict(written, cfg), "transformers save_pretrained")
        report.exact(case, f"its save_pretrained ({len(written)} keys) converts and loads strictly", True)
        mapped = config_from_transformers(json.loads((dst / "config.json").read_text()))
        report.exact(case, "its config.json maps to our config", MimiConfig(**mapped).to_dict() == cfg.to_dict(),
                     ", ".join(f"{k}" for k, v in mapped.items() if cfg.to_dict()[k] != v) or "equal")
    hop = cfg.hop_length
    for n in (hop * 4, hop * 4 + 300):
        wav = base[:, :n]
        theirs = model.encode(wav[:, None], num_quantizers=cfg.num_quantizers).audio_codes
        mine = ours.encode(wav)
        latent = ours._latent(ours._pad_to_hop(wav[:, None]))
        if n % hop == 0:
            report.tensor(f"{case} T={n}", "transformers encoder latent vs ours", latent,
                          model.encoder(wav[:, None]).latents)
        report.ids(f"{case} T={n}", "transformers' quantizer on our latent == our ids",
                   model.quantizer.encode(latent, cfg.num_quantizers).transpose(0, 1), mine)
        if n % hop == 0:
            report.ids(f"{case} T={n}", f"transformers encode end to end == our ids {tuple(mine.shape)}", theirs, mine)
        else:
            padded = torch.nn.functional.pad(wav, (0, -n % hop))
            report.ids(f"{case} T={n}", "transformers encode of the waveform zero-padded to the frame == our ids",
                       model.encode(padded[:, None], num_quantizers=cfg.num_quantizers).audio_codes, mine)
            same = theirs.shape == mine.shape
            inner = int((theirs[..., :-1] != mine[..., :-1]).sum()) if same else -1
            last = int((theirs[..., -1] != mine[..., -1]).sum()) if same else -1
            report.exact(f"{case} T={n}", "(reported, not a check) transformers encode unpadded: its per-conv padding",
                         True, f"last frame {last} of {mine[..., -1].numel()} differ, others {inner}")
        wav_theirs = model.decode(mine).audio_values[:, 0]
        report.tensor(f"{case} T={n}", "transformers decode of our ids vs ours", ours.decode(mine), wav_theirs)
    back_ids = back.encode(base[:, : hop * 4])
    report.ids(case, "ids after the round trip through transformers' writer", back_ids, ours.encode(base[:, : hop * 4]))


def write(report: Report, extra: Dict[str, Any], out: Path) -> bool:
    header = [
        "Parity: tokzoo Mimi vs the official moshi package and transformers' MimiModel (seeded random weights)",
        f"date {extra['date']}  torch {extra['torch']}  device cpu  {platform.machine()} threads "
        f"{torch.get_num_threads()}  fp32",
        f"command: {extra['command']}",
        f"moshi {extra['moshi']}  transformers {extra['transformers']}",
        "inputs: a speech and a music clip (corpus */val) and a bundled sample (audiotok/assets/samples), 24 kHz mono",
    ]
    notes = []
    for info in extra["cases"]:
        notes.append(f"{info['case']}: {info['params']:,} parameters, lengths {info['lengths']}, at least "
                     f"{info['unique_ids']} distinct ids on every level, smallest relative top-1/top-2 distance gap "
                     f"{info['min_rel_gap']:.3e}")
    return write_report(report, extra, out, header, notes, case_width=14, check_width=92)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the tiny config")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=1.9, help="longest clip length")
    parser.add_argument("--out", default=str(REPO / "eval/results/parity_mimi"))
    args = parser.parse_args(argv)
    if not _version("moshi"):
        raise SystemExit("the official moshi package is not installed (see this script's docstring)")
    warnings.filterwarnings("ignore")
    report = Report(tol=TOL)
    cases = [("tiny", MimiConfig(**TINY))] + ([] if args.quick else [("full", MimiConfig())])
    infos = [run_case(name, cfg, report, args.seed, args.seconds if name == "full" else 0.5, False)
             for name, cfg in cases]
    extra = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "torch": torch.__version__, "moshi": _version("moshi"),
             "transformers": _version("transformers") or "not installed (its layout unchecked)",
             "command": "python eval/parity_mimi.py " + " ".join(argv if argv is not None else sys.argv[1:]),
             "cases": infos}
    return 0 if write(report, extra, Path(args.out)) else 1


if __name__ == "__main__":
    sys.exit(main())
