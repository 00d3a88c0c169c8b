"""DAC's published training losses in tokzoo vs descript-audio-codec's own classes.

What it checks, for 16, 24 and 44.1 kHz inputs of DAC's training crop (0.38 s) and of an odd length,
on seeded random pairs (a corpus clip and a perturbed copy; two noise signals):

- ``MelSpectrogramLoss`` at the published settings (``conf/base.yml`` ``MelSpectrogramLoss.*``) vs
  :class:`audiotok.spectral_losses.MultiScaleLogMelLoss` built from a recipe's ``loss.audio.logmel_*``
  keys, and both at non-default settings (f_min / f_max per scale, ``pow`` 2, a magnitude term);
- ``MultiScaleSTFTLoss`` (class defaults, and varied) vs :class:`~audiotok.spectral_losses.MultiScaleLogSTFTLoss`;
- ``L1Loss`` vs ``loss.audio.l1_weight``'s ``F.l1_loss``;
- the discriminator: the official ``Discriminator`` with the conf's rates / periods / fft_sizes / bands,
  seeded and perturbed, its weights copied into the ``dac_hann`` catalog entry: parameter count, the
  structure of its output (sub-discriminators, feature maps per sub-discriminator, shapes) and every
  feature map's values; the WavTokenizer port (``dac``, rectangular window) is reported beside it;
- ``GANLoss``: ``discriminator_loss``, ``generator_loss``'s two terms and the weighted generator
  total's gradient with respect to the fake audio, vs :class:`audiotok.losses.AudioAdversarial` with
  the ``dac_hann`` term;
- the whole objective: a small official ``DAC`` (quantizer dropout 0.5, training mode) with seeded
  weights converted into ours, and ``train/dac/dac_44khz.yaml`` (its model shrunk): the official
  quantizer losses vs ``ReconOut.loss``, train.py's ``loss = sum(lambdas[k] * output[k])`` vs
  :class:`audiotok.objective.AudioObjective`'s ``loss/total``, and the discriminator losses;
- with ``--dac-repo`` (a clone of descriptinc/descript-audio-codec): every number of
  ``train/dac/dac_{16,24,44}khz.yaml`` that a conf key gives, against ``conf/final/*.yml``.

Losses pass within ``1e-5`` relative, tensors within ``1e-4`` of their largest magnitude, fp32.
Results go to ``eval/results/dac_losses.{txt,json}``; the exit code is non-zero when a check fails.

Running it (the official package is imported, never copied into this repository)::

    /tmp/parity_dac/bin/pip install librosa      # audiotools' mel filters
    /tmp/parity_dac/bin/python eval/check_dac_losses.py --dac-repo <clone>
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import platform
import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Dict

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audiotok.dsp import resample  # noqa: E402
from vistok.engine.recipe import load_recipe  # noqa: E402
from parity_report import Report, write as write_report  # noqa: E402  (eval/ is on sys.path)

CORPUS = REPO.parent / "shared/corpus/audio"
TOL_LOSS, TOL_TENSOR = 1e-5, 1e-4
RATES = (16000, 24000, 44100)
BANDS = [(0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)]
LAMBDAS = {"mel/loss": 15.0, "adv/feat_loss": 2.0, "adv/gen_loss": 1.0, "vq/commitment_loss": 0.25,
           "vq/codebook_loss": 1.0}  # conf/base.yml lambdas (= conf/final/*.yml; --dac-repo checks it)


def _version(name: str):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None



# ----- inputs -----

def _clip(rate: int, samples: int) -> torch.Tensor:
    import soundfile as sf

    for path in sorted((CORPUS / "speech" / "val").glob("*.flac")) + sorted((CORPUS / "music" / "val").glob("*.flac")):
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        wav = torch.from_numpy(data.mean(1).copy())
        need = -(-samples * sr // rate) + 64
        if wav.shape[0] >= need:
            wav = wav[:need]
            return (resample(wav[None], sr, rate)[0] if sr != rate else wav)[:samples]
    raise SystemExit(f"need a clip of {samples} samples under {CORPUS}/{{speech,music}}/val")


def pairs(rate: int, samples: int, seed: int):
    """``{name: (real, fake)}``, each ``(2, 1, samples)``: a clip and its perturbed copy; two noise signals."""
    gen = torch.Generator().manual_seed(seed)
    clip = _clip(rate, samples)
    real = torch.stack([clip, clip.flip(0)])[:, None]
    fake = 0.7 * real + 0.02 * torch.randn(real.shape, generator=gen)
    noise = 0.3 * torch.randn(2, 2, 1, samples, generator=gen)
    return {"clip": (real, fake), "noise": (noise[0], noise[1])}


# ----- the official modules -----

def official_discriminator(rate: int, seed: int):
    from dac.model import Discriminator

    torch.manual_seed(seed)
    disc = Discriminator(rates=[], periods=[2, 3, 5, 7, 11], fft_sizes=[2048, 1024, 512], sample_rate=rate,
                         bands=BANDS)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in disc.named_parameters():  # no gain or bias left at its init value
            if name.endswith("weight_g"):
                p.mul_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.add_(0.02 * torch.randn(p.shape, generator=gen))
    return disc


def official_to_ours(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Old-style weight norm (``weight_g`` / ``weight_v``) -> parametrisations (``original0`` / ``original1``)."""
    out = {}
    for key, value in state.items():
        for old, new in ((".weight_g", ".parametrizations.weight.original0"),
                         (".weight_v", ".parametrizations.weight.original1")):
            if key.endswith(old):
                key = key[: -len(old)] + new
        out[key] = value
    return out


def ours_discriminator(entry: str, official):
    from audiotok.discriminators import catalog
    from audiotok.recipe import AudioLoss
    from vistok.models.state_dict import load_strict

    disc, term = getattr(catalog, entry)(AudioLoss())
    load_strict(disc, official_to_ours(official.state_dict()), f"{entry} from the official Discriminator")
    return disc.eval(), term


def _signal(x, rate):
    from audiotools import AudioSignal

    return AudioSignal(x.clone(), rate)


# ----- the checks -----

def check_spectral(report: Report, rate: int, samples: int, seed: int) -> None:
    from dac.nn.loss import L1Loss, MelSpectrogramLoss, MultiScaleSTFTLoss
    import torch.nn.functional as F

    from audiotok.spectral_losses import MultiScaleLogMelLoss, MultiScaleLogSTFTLoss

    audio = load_recipe(REPO / "train/dac/dac_44khz.yaml").loss.audio
    published = MelSpectrogramLoss(n_mels=[5, 10, 20, 40, 80, 160, 320], window_lengths=[32, 64, 128, 256, 512,
                                   1024, 2048], mel_fmin=[0.0] * 7, mel_fmax=[None] * 7, pow=1.0, clamp_eps=1e-5,
                                   mag_weight=0.0)
    ours_published = MultiScaleLogMelLoss(rate, audio.logmel_windows, audio.logmel_bins, audio.logmel_fmin,
                                          audio.logmel_fmax, eps=audio.logmel_clamp, power=audio.logmel_pow,
                                          log_weight=audio.logmel_log_weight, mag_weight=audio.logmel_mag_weight)
    varied = dict(n_mels=[16, 40, 64], window_lengths=[128, 512, 2048], mel_fmin=[20.0, 50.0, 0.0],
                  mel_fmax=[rate / 4, None, 7000.0], pow=2.0, clamp_eps=1e-4, mag_weight=0.5, log_weight=0.7)
    mel_varied = MelSpectrogramLoss(**varied)
    ours_varied = MultiScaleLogMelLoss(rate, varied["window_lengths"], varied["n_mels"], varied["mel_fmin"],
                                       varied["mel_fmax"], eps=1e-4, power=2.0, log_weight=0.7, mag_weight=0.5)
    stft_default, ours_stft = MultiScaleSTFTLoss(), MultiScaleLogSTFTLoss()
    stft_varied = MultiScaleSTFTLoss(window_lengths=[1024, 256], clamp_eps=1e-3, mag_weight=0.3, log_weight=2.0,
                                     pow=1.0)
    ours_stft_varied = MultiScaleLogSTFTLoss([1024, 256], eps=1e-3, power=1.0, log_weight=2.0, mag_weight=0.3)
    case = f"{rate // 1000}k/{samples}"
    for name, (real, fake) in pairs(rate, samples, seed).items():
        r2, f2 = real[:, 0], fake[:, 0]
        for label, theirs, ours in (("MelSpectrogramLoss, published settings (the recipe's logmel_*)", published,
                                     ours_published),
                                    ("MelSpectrogramLoss, fmin/fmax per scale, pow 2, mag 0.5, log 0.7", mel_varied,
                                     ours_varied),
                                    ("MultiScaleSTFTLoss, class defaults (logstft_* defaults)", stft_default,
                                     ours_stft),
                                    ("MultiScaleSTFTLoss, windows 1024/256, pow 1, mag 0.3, log 2", stft_varied,
                                     ours_stft_varied)):
            report.value(case, f"{name}: {label}", ours(r2, f2), theirs(_signal(fake, rate), _signal(real, rate)))
        report.value(case, f"{name}: L1Loss (waveform)", F.l1_loss(f2, r2), L1Loss()(_signal(fake, rate),
                                                                                       _signal(real, rate)))


def check_discriminator(report: Report, rate: int, samples: int, seed: int) -> None:
    from dac.nn.loss import GANLoss

    from audiotok.discriminators import DiscriminatorSet
    from audiotok.losses import AudioAdversarial

    official = official_discriminator(rate, seed).eval()
    ours, term = ours_discriminator("dac_hann", official)
    port, _ = ours_discriminator("dac", official)
    case = f"{rate // 1000}k/{samples}"
    n_theirs = sum(p.numel() for p in official.parameters())
    n_ours = sum(p.numel() for p in ours.parameters())
    report.exact(case, "dac_hann: parameter count equals the official Discriminator's", n_theirs == n_ours,
                 f"{n_ours:,} vs {n_theirs:,}")
    real, fake = pairs(rate, samples, seed)["clip"]
    with torch.no_grad():
        theirs = official(fake)
        logits, fmaps = ours(fake[:, 0])
        port_logits, port_fmaps = port(fake[:, 0])
    structure = [len(t) for t in theirs]
    mine = [len(f) + 1 for f in fmaps]  # ours returns the last output apart, as logits
    shapes_ok = all(tuple(t[-1].flatten(1).shape) == tuple(lg.shape) and
                    [tuple(a.shape) for a in t[:-1]] == [tuple(b.shape) for b in f]
                    for t, lg, f in zip(theirs, logits, fmaps))
    report.exact(case, "dac_hann: sub-discriminators x outputs each (5 MPD, 3 MRD), shapes", structure == mine and
                 shapes_ok, f"{structure}")
    worst = max((float((a - b).abs().max()) / max(float(b.abs().max()), 1e-30))
                for t, lg, f in zip(theirs, logits, fmaps) for a, b in zip(list(f) + [lg], list(t[:-1]) +
                                                                            [t[-1].flatten(1)]))
    report.rows.append(dict(case=case, check="dac_hann: all 8 x (feature maps + output), worst max|diff| / max|official|",
                            ours=worst, ref=0.0, rel=worst, tol=TOL_TENSOR, ok=worst <= TOL_TENSOR, tensor=True))
    band = [float((a - b[-1].flatten(1)).abs().max()) for a, b in zip(port_logits[5:], theirs[5:])]
    report.exact(case, "dac (WavTokenizer's rectangular-window port) differs on the band outputs",
                 len(port_fmaps) == len(fmaps) and min(band) > 1e-3, f"max|diff| >= {min(band):.3g}")

    gan = GANLoss(official)
    adv = AudioAdversarial(DiscriminatorSet({"dac_hann": ours}), {"dac_hann": term})
    fake_sig, real_sig = _signal(fake, rate), _signal(real, rate)
    d_theirs = gan.discriminator_loss(fake_sig, real_sig)
    d_ours, d_stats = adv.discriminator_loss(real[:, 0], fake[:, 0])
    report.value(case, "GANLoss.discriminator_loss == AudioAdversarial.discriminator_loss", d_ours, d_theirs)
    fake_t = fake.clone().requires_grad_(True)
    g_theirs, feat_theirs = gan.generator_loss(_signal(fake_t, rate), real_sig)
    (LAMBDAS["adv/gen_loss"] * g_theirs + LAMBDAS["adv/feat_loss"] * feat_theirs).backward()
    fake_o = fake[:, 0].clone().requires_grad_(True)
    g_total, g_stats = adv.generator_loss(real[:, 0], fake_o)
    g_total.backward()
    report.value(case, "GANLoss.generator_loss adv term == gan/g_dac_hann", g_stats["gan/g_dac_hann"], g_theirs)
    report.value(case, "GANLoss.generator_loss feature term == gan/fm_dac_hann", g_stats["gan/fm_dac_hann"],
                 feat_theirs)
    report.value(case, "1 x adv + 2 x feat (lambdas) == generator_loss total", g_total,
                 g_theirs + 2 * feat_theirs)
    report.tensor(case, "gradient of that total w.r.t. the fake audio", fake_o.grad, fake_t.grad[:, 0])


def check_objective(report: Report, seed: int) -> None:
    """The recipe's objective on a small DAC vs train.py's loss on the official DAC, same weights."""
    import dac
    from dac.nn.loss import GANLoss, MelSpectrogramLoss

    from audiotok.models.dac import DAC, DACConfig
    from audiotok.models.dac.convert import convert_dac_state_dict
    from vistok.engine.objectives import build_objective
    from vistok.models.state_dict import load_strict

    rate = 44100
    small = dict(sample_rate=rate, encoder_dim=8, encoder_rates=[2, 4, 8, 8], decoder_dim=64,
                 decoder_rates=[8, 8, 4, 2], codebook_size=64, codebook_dim=8, quantizer_dropout=0.5)
    torch.manual_seed(seed)
    theirs = dac.DAC(n_codebooks=6, **small).train()
    config = DACConfig(num_quantizers=6, **small)
    ours = DAC(config).train()
    load_strict(ours, convert_dac_state_dict(theirs.state_dict(), config), "the small official DAC")
    overrides = [f"model.config.{k}={json.dumps(v)}" for k, v in {**small, "num_quantizers": 6}.items()]
    recipe = load_recipe(REPO / "train/dac/dac_44khz.yaml", overrides)
    objective = build_objective(recipe, ours, torch.device("cpu"))
    disc = official_discriminator(rate, seed).train()
    load_strict(objective.discriminator["dac_hann"], official_to_ours(disc.state_dict()), "dac_hann")
    samples = 16758  # train/AudioDataset.duration 0.38 s
    gen = torch.Generator().manual_seed(seed)
    clip = _clip(rate, samples)
    x = torch.stack([clip, 0.5 * clip.flip(0), 0.2 * torch.randn(samples, generator=gen), clip.roll(777)])[:, None]
    case = "44k/objective"

    torch.manual_seed(seed + 7)  # quantizer dropout draws its level counts from the global generator
    out = theirs(x, rate)
    torch.manual_seed(seed + 7)
    step = objective.generator_step(ours, x, 0, contextlib.nullcontext)
    recon = out["audio"]
    report.tensor(case, "reconstruction (training mode, quantizer dropout 0.5, same draws)", step.recon,
                  recon[:, 0])
    quant = LAMBDAS["vq/commitment_loss"] * out["vq/commitment_loss"] + LAMBDAS["vq/codebook_loss"] * \
        out["vq/codebook_loss"]
    report.value(case, "0.25 x commitment + 1 x codebook == loss/quantizer", step.terms["loss/quantizer"], quant)
    mel = MelSpectrogramLoss(n_mels=[5, 10, 20, 40, 80, 160, 320], window_lengths=[32, 64, 128, 256, 512, 1024, 2048],
                             mel_fmin=[0.0] * 7, mel_fmax=[None] * 7, pow=1.0, clamp_eps=1e-5, mag_weight=0.0)
    gan = GANLoss(disc)
    recons, signal = _signal(recon, rate), _signal(x, rate)
    d_theirs = gan.discriminator_loss(recons, signal)
    output = {"mel/loss": mel(recons, signal), "vq/commitment_loss": out["vq/commitment_loss"],
              "vq/codebook_loss": out["vq/codebook_loss"]}
    output["adv/gen_loss"], output["adv/feat_loss"] = gan.generator_loss(recons, signal)
    total = sum(v * output[k] for k, v in LAMBDAS.items() if k in output)
    report.value(case, "mel/loss == loss/logmel", step.terms["loss/logmel"], output["mel/loss"])
    report.value(case, "train.py loss (sum of lambdas x terms) == loss/total", step.terms["loss/total"], total)
    d_ours, _ = objective.discriminator_loss(x, step.recon.detach(), 0)
    report.value(case, "adv/disc_loss == the objective's discriminator loss", d_ours, d_theirs)
    theirs.zero_grad()
    total.backward()
    step.total.backward()
    grads = {n: p.grad for n, p in ours.named_parameters() if p.grad is not None}
    report.exact(case, "every generator parameter gets a gradient", len(grads) == len(list(ours.parameters())),
                 f"{len(grads)} of {len(list(ours.parameters()))}")
    t_in = theirs.encoder.block[0].weight_v.grad
    o_in = dict(ours.named_parameters())
    key = next(k for k in o_in if k.endswith("original1"))
    report.tensor(case, f"gradient of the first conv's direction ({key})", o_in[key].grad, t_in)


def check_conf(report: Report, dac_repo: Path) -> None:
    """Every number the recipes take from a conf key, against conf/final/<rate>.yml."""
    import yaml

    for rate in ("16khz", "24khz", "44khz"):
        text = subprocess.run(["git", "-C", str(dac_repo), "show", f"HEAD:conf/final/{rate}.yml"], check=True,
                              capture_output=True, text=True).stdout
        conf = yaml.safe_load(text)
        r = load_recipe(REPO / f"train/dac/dac_{rate}.yaml")
        m, a, o = r.model.config, r.loss.audio, r.optimizer
        pairs_ = {
            "DAC.sample_rate": (m["sample_rate"], r.data.sample_rate), "DAC.encoder_dim": m["encoder_dim"],
            "DAC.encoder_rates": m["encoder_rates"], "DAC.decoder_dim": m["decoder_dim"],
            "DAC.decoder_rates": m["decoder_rates"], "DAC.n_codebooks": m["num_quantizers"],
            "DAC.codebook_size": m["codebook_size"], "DAC.codebook_dim": m["codebook_dim"],
            "DAC.quantizer_dropout": m["quantizer_dropout"], "AdamW.betas": o.betas, "AdamW.lr": o.lr,
            "ExponentialLR.gamma": r.schedule.gamma, "num_iters": r.training.max_steps, "seed": r.experiment.seed,
            "batch_size": r.data.batch_size, "train/AudioDataset.duration": r.data.segment_seconds,
            "MelSpectrogramLoss.n_mels": a.logmel_bins, "MelSpectrogramLoss.window_lengths": a.logmel_windows,
            "MelSpectrogramLoss.mel_fmin": a.logmel_fmin, "MelSpectrogramLoss.mel_fmax": a.logmel_fmax,
            "MelSpectrogramLoss.pow": a.logmel_pow, "MelSpectrogramLoss.clamp_eps": a.logmel_clamp,
            "MelSpectrogramLoss.mag_weight": a.logmel_mag_weight, "MultiScaleSTFTLoss.window_lengths":
                a.logstft_windows, "Discriminator.sample_rate": m["sample_rate"],
            "lambdas": {"mel/loss": a.logmel_weight, "adv/feat_loss": 2.0, "adv/gen_loss": 1.0,
                        "vq/commitment_loss": m["commitment_weight"], "vq/codebook_loss": m["codebook_weight"]},
        }
        bad = []
        for key, ours in pairs_.items():
            want = conf[key]
            values = ours if isinstance(ours, tuple) else (ours,)
            if any(v != want and not (isinstance(want, list) and list(v) == want) for v in values):
                bad.append(f"{key}: conf {want!r}, recipe {ours!r}")
        disc = {k: conf[f"Discriminator.{k}"] for k in ("rates", "periods", "fft_sizes", "bands")}
        if disc != {"rates": [], "periods": [2, 3, 5, 7, 11], "fft_sizes": [2048, 1024, 512],
                    "bands": [list(b) for b in BANDS]}:
            bad.append(f"Discriminator: conf {disc}, dac_hann builds rates [] periods 2..11 ffts 2048/1024/512")
        report.exact(rate, f"train/dac/dac_{rate}.yaml numbers == conf/final/{rate}.yml ({len(pairs_) + 1} keys)",
                     not bad, "; ".join(bad) or "all equal")
        report.exact(rate, "amp false == training.precision no; adv lambdas are dac_hann's (1, 2)",
                     conf["amp"] is False and r.training.precision == "no" and
                     conf["lambdas"]["adv/gen_loss"] == 1.0 and conf["lambdas"]["adv/feat_loss"] == 2.0)


def write(report: Report, extra: Dict[str, Any], out: Path) -> bool:
    header = [
        "DAC's training losses: tokzoo vs the official descript-audio-codec classes (seeded random inputs/weights)",
        f"date {extra['date']}  torch {extra['torch']}  device cpu  {platform.machine()} threads "
        f"{torch.get_num_threads()}  fp32",
        f"command: {extra['command']}",
        f"descript-audio-codec {extra['descript-audio-codec']}  descript-audiotools {extra['descript-audiotools']}  "
        f"librosa {extra['librosa']}  conf: {extra['conf']}",
        "inputs: a corpus clip (speech val, resampled) and a perturbed copy; two 0.3-std noise signals; 2 items each",
    ]
    return write_report(report, extra, out, header, case_width=14, check_width=92)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dac-repo", type=Path, help="a git clone of descriptinc/descript-audio-codec (its conf/)")
    parser.add_argument("--out", default=str(REPO / "eval/results/dac_losses"))
    args = parser.parse_args(argv)
    if not _version("descript-audio-codec"):
        raise SystemExit("the official descript-audio-codec package is not installed (see this script's docstring)")
    warnings.filterwarnings("ignore")
    report = Report(tol=TOL_TENSOR, value_tol=TOL_LOSS)
    for rate in RATES:
        for samples in (round(0.38 * rate), round(0.38 * rate) + 301):
            check_spectral(report, rate, samples, args.seed)
        check_discriminator(report, rate, round(0.38 * rate) + 301, args.seed)
    check_objective(report, args.seed)
    conf = "not checked (no --dac-repo)"
    if args.dac_repo is not None:
        check_conf(report, args.dac_repo)
        conf = "conf/final/{16,24,44}khz.yml @" + subprocess.run(
            ["git", "-C", str(args.dac_repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    extra = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "torch": torch.__version__, "descript-audio-codec": _version("descript-audio-codec"),
             "descript-audiotools": _version("descript-audiotools"), "librosa": _version("librosa"), "conf": conf,
             "command": "python eval/check_dac_losses.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    return 0 if write(report, extra, Path(args.out)) else 1


if __name__ == "__main__":
    sys.exit(main())
