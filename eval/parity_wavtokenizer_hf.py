"""Parity with transformers' ``WavTokenizerModel`` (the layout of the ``wavtokenizer-*-hf`` cards).

What it proves: for each case, transformers' ``WavTokenizerModel`` (imported from the installed
``transformers`` package; none of its code is copied here) is built at the configuration a
``zoo/wavtokenizer-*-hf.yaml`` card names, with seeded random weights, and written with
``save_pretrained`` into a temporary directory. The written ``model.safetensors`` is read back with
:func:`vistok.models.state_dict.read_state_dict`, converted by
:func:`audiotok.models.wavtokenizer.convert.convert_wavtokenizer_state_dict` and loaded *strictly* into
:class:`audiotok.models.wavtokenizer.WavTokenizer` built from the card's ``config``. The written
``config.json`` is mapped with :func:`~audiotok.models.wavtokenizer.convert.config_from_transformers`
and must equal the card's config (and :func:`~audiotok.models.wavtokenizer.convert.infer_config` of the
weights must too); the card's ``params_millions`` must match the parameter count.

Numerics, fp32, eval mode, on the bundled real speech (``audiotok/assets/samples/*.flac``, 24 kHz;
a batch of two clips cut to a length that is not a multiple of the hop):

- encoder latents (``max |ours - theirs|``),
- token ids, exact (theirs ``encode`` codes ``(B, 1, L)`` vs ours ``(B, L)``) on every frame whose two
  nearest codes (fp64) are further apart than fp32 rounding (``gap / |x|^2 >= 1e-6``); a frame
  inside that margin is a tie, and the two sides may break it differently because transformers
  (like the original) computes ``|x|^2 - 2 x.e + |e|^2`` and we ``|e|^2 - 2 x.e``; a differing id
  must then be one of the two fp64-nearest codes on both sides (ties are counted in the output),
- decoded audio from their ids (``decode``, condition 0), relative ``max |diff| / max |ref| <= 1e-4``,
- end to end (each side its own ids; their ``forward``) for the items whose ids are all equal,
- their codebook search run on our latent gives their ids exactly (what differs at a tie is only the
  arithmetic of the argmin, not a weight), and for each differing frame its fp64 gap and which side
  picked the fp64-nearest code.

Card path: for each card, ``vistok.hub.loading.convert_card`` is given the written
``model.safetensors`` as the card's checkpoint (empty cache, offline; the card's file name, config and
``official`` converter) and the model ``load_tokenizer`` returns by name must give the same ids and
audio as the direct load. A ``varied_cfg`` case moves every ``config.json`` field the mapping reads off
its released value (3 stages, 2 residual units, 1 LSTM layer, 2 conditions, 16 norm groups, 16 kHz).

Weights: transformers' own init under ``torch.manual_seed``, then (seeded) every weight-norm gain,
decoder conv / linear bias, norm weight and bias, AdaLN row and layer scale is perturbed so that none
is an identity (encoder conv biases keep their random, non-zero init), and the codebook (zeros in a
fresh model) is drawn around the model's encoder frames on the clips so that many codes are used.
Full-size configs (the cards') are fast enough on a CPU: every check runs on them and on a small one.

Run from the repository root with an interpreter that has transformers (>= the release with
WavTokenizer)::

    python eval/parity_wavtokenizer_hf.py [--quick]

``--quick`` runs only the two small configs. Results go to ``eval/results/parity_wavtokenizer_hf.{txt,json}``
(``--out`` to change); the exit code is non-zero when any check fails. What this does NOT prove: that
the ``swiss-ai/*`` hub files are what this transformers release writes (the hub was not reachable).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audiotok.models.wavtokenizer import WavTokenizer, WavTokenizerConfig  # noqa: E402
from audiotok.models.wavtokenizer.convert import (  # noqa: E402
    config_from_transformers, convert_wavtokenizer_state_dict, detect_layout, infer_config,
)
from vistok.models.state_dict import load_strict, read_state_dict  # noqa: E402
from parity_report import Report, write as write_report  # noqa: E402  (eval/ is on sys.path)

SAMPLES = sorted((REPO / "audiotok/assets/samples").glob("*.flac"))
CARDS = sorted((REPO / "zoo").glob("wavtokenizer-*-hf.yaml"))
TOL_REL = 1e-4
NOT_IN_WEIGHTS = ("sample_rate", "norm_groups")
TIE_REL = 1e-6  # fp32 rounding of a 512-term distance, relative to |x|^2


def speech_batch(samples: int) -> torch.Tensor:
    import soundfile as sf

    clips = []
    for path in SAMPLES:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        if rate == 24000 and data.shape[0] >= samples:
            clips.append(torch.from_numpy(data.mean(1)[:samples].copy()))
        if len(clips) == 2:
            return torch.stack(clips)
    raise SystemExit(f"need two 24 kHz clips of >= {samples} samples in audiotok/assets/samples")


def transformers_config(cfg: WavTokenizerConfig):
    """The transformers config for one of ours (the inverse of ``config_from_transformers``)."""
    from transformers import WavTokenizerConfig as HFConfig

    return HFConfig(sampling_rate=cfg.sample_rate, upsampling_ratios=list(reversed(cfg.strides)),
                    num_filters=cfg.n_filters, num_residual_layers=cfg.residual_layers,
                    num_lstm_layers=cfg.lstm_layers, hidden_size=cfg.dim, codebook_dim=cfg.dim,
                    codebook_size=cfg.codebook_size, decoder_hidden_size=cfg.decoder_dim,
                    decoder_intermediate_size=cfg.decoder_intermediate_dim, decoder_num_layers=cfg.decoder_layers,
                    adanorm_num_embeddings=cfg.num_conditions, decoder_attention_num_groups=cfg.norm_groups)


@torch.no_grad()
def randomise(model, wav: torch.Tensor, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)

    def noise(t, scale):
        return torch.randn(t.shape, generator=gen) * scale

    for name, p in model.named_parameters():
        if name.endswith("original0"):
            p.mul_(1 + noise(p, 0.1))
        elif ".norm" in name or "final_layer_norm" in name or "pos_net.5" in name or name.endswith("gamma") \
                or (name.endswith("bias") and not name.startswith("encoder_model.")):
            p.add_(noise(p, 0.1))  # encoder biases keep their (non-zero) random init: a large common offset
            # on the latent would shrink the code distance gaps to fp32 rounding of |x|^2
    codebook = model.encoder_model.quantizer.codebook
    dim = codebook.embed.shape[1]
    frames = model.encoder_model.encoder(wav[:, None]).transpose(1, 2).reshape(-1, dim)
    k = codebook.embed.shape[0]
    pick = torch.randint(0, frames.shape[0], (k,), generator=gen)
    embed = frames[pick] + noise(frames[pick], 1.0) * frames.std(0, keepdim=True)
    sizes = torch.rand(k, generator=gen) * 10 + 0.5
    codebook.embed.copy_(embed)
    codebook.embed_avg.copy_(embed * sizes[:, None])
    codebook.cluster_size.copy_(sizes)



def save_and_read(model):
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        files = sorted(p.name for p in Path(tmp).iterdir())
        config_json = json.loads((Path(tmp) / "config.json").read_text())
        state = read_state_dict(Path(tmp) / "model.safetensors")
    return files, config_json, state


def layout_case(name: str, cfg: WavTokenizerConfig, cards: List[Dict[str, Any]], report: Report, seed: int):
    """Full-size config: key names, shapes, config.json and strict loading (no forward pass)."""
    from transformers import WavTokenizerModel

    torch.manual_seed(seed)
    theirs = WavTokenizerModel(transformers_config(cfg)).eval()
    files, config_json, state = save_and_read(theirs)
    report.exact(name, "save_pretrained files", "model.safetensors" in files and "config.json" in files,
                 ", ".join(files))
    report.exact(name, "detect_layout == transformers", detect_layout(state) == "transformers")
    mapped = config_from_transformers(config_json)
    report.exact(name, "config_from_transformers(config.json) == card config", mapped.to_dict() == cfg.to_dict(),
                 f"strides {mapped.strides}, n_fft {mapped.n_fft}")
    # the sample rate and the GroupNorm group count shape no weight: only config.json (or a card) has them
    inferred = {k: v for k, v in infer_config(state).to_dict().items() if k not in NOT_IN_WEIGHTS}
    report.exact(name, "infer_config(weights) == card config (shape fields)",
                 inferred == {k: v for k, v in cfg.to_dict().items() if k not in NOT_IN_WEIGHTS},
                 "all but " + ", ".join(NOT_IN_WEIGHTS))
    ours = WavTokenizer(cfg).eval()
    converted = convert_wavtokenizer_state_dict(state, cfg)
    load_strict(ours, converted, f"{name} (transformers save_pretrained)")
    report.exact(name, f"strict load ({len(state)} keys -> {len(converted)})", True)
    tensors_equal = all(torch.equal(ours.state_dict()[k].float(), v.float()) for k, v in converted.items())
    report.exact(name, "loaded tensors equal the converted ones", tensors_equal)
    params = sum(p.numel() for p in ours.parameters())
    theirs_params = sum(p.numel() for p in theirs.parameters())
    report.exact(name, "parameter count equal to transformers'", params == theirs_params, f"{params:,}")
    for card in cards:
        report.exact(name, f"card {card['name']}: params_millions",
                     abs(card.get("params_millions", 0) - params / 1e6) < 0.05,
                     f"{card.get('params_millions')} vs {params / 1e6:.2f}")
    return theirs, ours, params


@torch.no_grad()
def numeric_case(name, theirs, ours, hop, samples, report: Report, seed: int) -> Dict[str, Any]:
    wav = speech_batch(samples)
    randomise(theirs, wav, seed + 1)
    _, _, state = save_and_read(theirs)
    load_strict(ours, convert_wavtokenizer_state_dict(state, ours.config), f"{name} (randomised)")
    ref_latent = theirs.encoder_model.encoder(wav[:, None])
    ref_codes = theirs.encode(wav[:, None]).audio_codes
    ref_ids = ref_codes[:, 0]
    ref_audio = theirs.decode(ref_codes).audio_values[:, 0]
    latent, _ = ours.encoder(wav[:, None])
    ids = ours.encode(wav)
    audio = ours.decode(ref_ids)
    audio_e2e = ours.decode(ids)
    expected_len = math.ceil(wav.shape[-1] / hop)
    report.tensor(name, f"encoder latent {tuple(latent.shape)}", latent, ref_latent, TOL_REL)
    # fp64 nearest codes: a frame whose two nearest codes are closer than fp32 rounding of the
    # distance (|x|^2 - 2 x.e + |e|^2 there, |e|^2 - 2 x.e here) is a tie either side may break
    frames = ref_latent.transpose(1, 2).reshape(-1, ref_latent.shape[1]).double()
    dist = torch.cdist(frames, theirs.encoder_model.quantizer.codebook.embed.double()).pow(2)
    top, top_ids = dist.topk(2, largest=False)
    rel = (top[:, 1] - top[:, 0]) / frames.pow(2).sum(1)
    tie = rel < TIE_REL
    rel_gap = float(rel.min())
    flat, ref_flat = ids.reshape(-1), ref_ids.reshape(-1)
    same_shape = ids.shape == ref_ids.shape and ids.shape[-1] == expected_len
    differ = (flat != ref_flat) if same_shape else torch.ones_like(tie)
    report.exact(name, f"token ids {tuple(ref_ids.shape)}, all frames off fp32 ties",
                 same_shape and not bool((differ & ~tie).any()),
                 f"{int(differ.sum())} differ, {int(tie.sum())} ties")
    differing = differ.nonzero()[:, 0].tolist() if same_shape else []
    in_top2 = all(int(flat[i]) in top_ids[i].tolist() and int(ref_flat[i]) in top_ids[i].tolist()
                  for i in differing) if same_shape else False
    gaps = ", ".join(f"{float(rel[i]):.0e}" for i in differing) or "none"
    report.exact(name, f"differing ids are ties (gap/|x|^2 < {TIE_REL:.0e}) between fp64 top 2", in_top2,
                 f"gaps {gaps}")
    # the latents are the same, so their distance formula applied to our latent gives their ids: what
    # differs at a tie is only the argmin's arithmetic, not the weights
    their_formula = theirs.encoder_model.quantizer.encode(latent)
    report.exact(name, "their codebook search on our latent == their ids", torch.equal(their_formula, ref_ids))
    fp64_ours = int(sum(int(flat[i]) == int(top_ids[i, 0]) for i in differing))
    report.exact(name, "differing ids: fp64-nearest picked by ours / theirs", same_shape,
                 f"{fp64_ours} / {len(differing) - fp64_ours} of {len(differing)}")
    report.tensor(name, f"decoded audio from their ids {tuple(ref_audio.shape)}", audio, ref_audio, TOL_REL)
    fwd = theirs(wav[:, None]).audio_values[:, 0]
    rows = [b for b in range(ids.shape[0]) if same_shape and torch.equal(ids[b], ref_ids[b])]
    if rows:
        report.tensor(name, f"end to end, own ids, items with equal ids {rows}", audio_e2e[rows], ref_audio[rows],
                      TOL_REL)
        report.tensor(name, "their forward (cut to input) vs ours, same items", audio_e2e[rows, : wav.shape[-1]],
                      fwd[rows], TOL_REL)
    else:
        report.exact(name, "end to end: no item with equal ids (ties)", False)
    return dict(case=name, samples=wav.shape[-1], batch=wav.shape[0], hop=hop,
                unique_ids=int(ref_ids.unique().numel()), min_rel_gap=rel_gap)


@torch.no_grad()
def card_path_case(name, theirs, ours, cards: List[Dict[str, Any]], samples: int, report: Report) -> None:
    """Each card the way ``tokzoo`` loads it: ``convert_card`` on the ``model.safetensors`` that
    ``save_pretrained`` wrote (the card's file name, the family's converter, the card's config; in an
    empty cache, offline), then ``load_tokenizer`` by name; ids and audio must equal the direct load's."""
    import os

    from vistok.hub.catalogue import get_card
    from vistok.hub.loading import convert_card, load_tokenizer

    wav = speech_batch(samples)
    ids = ours.encode(wav)
    audio = ours.decode(ids)
    saved = {k: os.environ.get(k) for k in ("TOKZOO_CACHE", "HF_HUB_OFFLINE")}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            theirs.save_pretrained(Path(tmp) / "repo")
            for card in cards:
                with tempfile.TemporaryDirectory(dir=tmp) as cache:
                    os.environ.update(TOKZOO_CACHE=cache, HF_HUB_OFFLINE="1")
                    zoo_card = get_card(card["name"])
                    file_ok = zoo_card.source.filename == "model.safetensors"
                    convert_card(zoo_card, checkpoint=Path(tmp) / "repo" / zoo_card.source.filename)
                    model = load_tokenizer(card["name"])
                    card_ids = model.encode(wav)
                    same = file_ok and torch.equal(card_ids, ids) and torch.equal(model.decode(card_ids), audio)
                    report.exact(name, f"card {card['name']}: convert_card + load_tokenizer", same,
                                 "ids, audio == direct")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def cases(quick: bool) -> List[Dict[str, Any]]:
    small = dict(name="small_cfg", config=WavTokenizerConfig(strides=[3, 4], codebook_size=64, decoder_dim=64,
                                                              decoder_intermediate_dim=96, decoder_layers=2),
                 cards=[], samples=24000 * 2 + 7)
    # every config.json field moved off the released value (3 stages, 2 residual units per stage so the
    # second one is dilated, 1 LSTM layer, 2 conditions, 16 norm groups, 16 kHz): the mapping of each
    varied = dict(name="varied_cfg", config=WavTokenizerConfig(
        sample_rate=16000, strides=[2, 3, 5], n_filters=8, residual_layers=2, lstm_layers=1, dim=32,
        codebook_size=128, decoder_dim=96, decoder_intermediate_dim=160, decoder_layers=3, num_conditions=2,
        norm_groups=16, n_fft=120), cards=[], samples=24000 + 13)
    if quick:
        return [small, varied]
    groups: Dict[str, Dict[str, Any]] = {}
    for path in CARDS:
        card = yaml.safe_load(path.read_text())
        cfg = WavTokenizerConfig(**card["config"])
        key = json.dumps(cfg.to_dict(), sort_keys=True)
        groups.setdefault(key, dict(name=f"hf_{round(cfg.token_rate)}tok", config=cfg, cards=[],
                                    samples=24000 * 2 + 1))["cards"].append(card)
    return [small, varied] + list(groups.values())


def write(report: Report, extra: Dict[str, Any], out: Path) -> bool:
    header = [
        "Parity: tokzoo WavTokenizer vs transformers' WavTokenizerModel (save_pretrained layout, seeded random "
        "weights)",
        f"date {extra['date']}  transformers {extra['transformers']}  torch {extra['torch']}  device cpu  "
        f"{platform.machine()} threads {torch.get_num_threads()}  inputs: 2 clips of audiotok/assets/samples, "
        "24 kHz, fp32",
        f"command: {extra['command']}",
        f"cards: {', '.join(extra['cards'])}",
    ]
    notes = []
    for info in extra["cases"]:
        notes.append(f"{info['case']}: {info['batch']} x {info['samples']} samples, hop {info['hop']}, "
                     f"{info['params']:,} parameters, {info['unique_ids']} distinct ids, smallest top-1/top-2 squared "
                     f"distance gap / |x|^2 (fp64) {info['min_rel_gap']:.2e}")
    return write_report(report, extra, out, header, notes, case_width=10, check_width=62)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the small configs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "eval/results/parity_wavtokenizer_hf"))
    args = parser.parse_args(argv)
    import transformers

    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    report = Report()
    infos = []
    for case in cases(args.quick):
        theirs, ours, params = layout_case(case["name"], case["config"], case["cards"], report, args.seed)
        info = numeric_case(case["name"], theirs, ours, case["config"].hop_length, case["samples"], report,
                            args.seed)
        if case["cards"]:
            card_path_case(case["name"], theirs, ours, case["cards"], case["samples"], report)
        infos.append(dict(info, params=params, cards=[c["name"] for c in case["cards"]]))
    extra = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 transformers=transformers.__version__, torch=torch.__version__,
                 command=" ".join([Path(sys.executable).as_posix(), "eval/parity_wavtokenizer_hf.py"]
                                 + list(argv or sys.argv[1:])),
                 cards=[p.stem for p in CARDS], cases=infos)
    return 0 if write(report, extra, Path(args.out)) else 1


if __name__ == "__main__":
    sys.exit(main())
