"""Official WavTokenizer checkpoints -> :class:`audiotok.models.wavtokenizer.WavTokenizer`.

Two layouts are read (detected from the key names):

- **Lightning** ``.ckpt`` (``novateur/*``): the training module's ``state_dict``. Kept:
  ``feature_extractor.encodec.encoder.model.<i>.*`` (the SEANet encoder as one ``Sequential``),
  ``feature_extractor.encodec.quantizer.vq.layers.0._codebook.*``, ``backbone.*``, ``head.out.*``.
  Dropped: the discriminators (``multiperioddisc.``, ``multiresddisc.``, ``dac.``,
  ``dacdiscriminator.``), ``melspec_loss.``, the SEANet *decoder* the original builds but never runs
  (``feature_extractor.encodec.decoder.``), and the persistent ``head.istft.window`` (a Hann window
  we rebuild). Convolutions carry legacy weight norm ``conv.conv.weight_g`` / ``weight_v``.
- **transformers** (what ``WavTokenizerModel.save_pretrained`` writes; the ``swiss-ai/wavtokenizer-*``
  files are assumed to be that): ``[encoder_model.]encoder.layers.<i>.*`` with
  ``conv.parametrizations.weight.original0/1``, ``[encoder_model.]quantizer.codebook.*`` (``inited``
  stored as a float), ``backbone.*`` (same names as the original), ``head.linear.*``; no window
  buffer. Checked against transformers 5.25's own classes by ``eval/parity_wavtokenizer_hf.py``; its
  ``config.json`` maps onto our config with :func:`config_from_transformers`.

Mapping: Sequential index ``i`` of the encoder -> ``encoder.stem`` / ``encoder.stages.<s>.res.<j>``
(``block.1`` -> ``conv1``, ``block.3`` -> ``conv2``, ``shortcut``) / ``encoder.stages.<s>.down`` /
``encoder.lstm`` / ``encoder.proj``; ``weight_g`` / ``weight_v`` -> ``parametrizations.weight.original0`` /
``original1`` (same tensors: torch's weight norm over dim 0 is the legacy one); codebook buffers ->
``quantizer.*`` with ``inited`` -> ``initted``; ``head.out`` / ``head.linear`` -> ``head.proj``.
Unknown keys pass through unchanged so strict loading names them.
"""
from __future__ import annotations

import math
import re
from typing import Any, Dict, Mapping, Optional

import torch

from vistok.errors import InputError
from vistok.models.state_dict import load_strict, rename_prefix

LIGHTNING_ENCODER = "feature_extractor.encodec.encoder.model."
LIGHTNING_CODEBOOK = re.compile(r"^feature_extractor\.encodec\.quantizer\.vq\.layers\.(\d+)\._codebook\.(.+)$")
TRAINING_ONLY = ("multiperioddisc.", "multiresddisc.", "dac.", "dacdiscriminator.", "melspec_loss.")
UNUSED = ("feature_extractor.encodec.decoder.",)
WINDOWS = ("head.istft.window", "head.window")
_ENCODER_KEY = re.compile(r"^(?:feature_extractor\.encodec\.encoder\.model|encoder\.layers)\.(\d+)\.(.+)$")
_RESIDUAL = [("block.1.", "conv1."), ("block.3.", "conv2."), ("shortcut.", "shortcut.")]
_HEAD = [("head.out.", "head.proj."), ("head.linear.", "head.proj.")]


def detect_layout(state: Mapping[str, Any]) -> str:
    """``"lightning"``, ``"transformers"`` or ``"tokzoo"`` (anything else)."""
    if any(k.startswith(LIGHTNING_ENCODER) for k in state):
        return "lightning"
    if any(k.startswith(("encoder.layers.", "encoder_model.encoder.layers.")) for k in state):
        return "transformers"
    return "tokzoo"


def _encoder_modules(config) -> Dict[int, str]:
    """Index in the original encoder ``Sequential`` -> our module path (activations have no weights)."""
    per_stage = config.residual_layers + 2  # residual units, ELU, strided conv
    names = {0: "encoder.stem"}
    for s in range(len(config.strides)):
        base = 1 + s * per_stage
        for j in range(config.residual_layers):
            names[base + j] = f"encoder.stages.{s}.res.{j}"
        names[base + per_stage - 1] = f"encoder.stages.{s}.down"
    tail = 1 + len(config.strides) * per_stage
    if config.lstm_layers:
        names[tail] = "encoder.lstm"
        tail += 1
    names[tail + 1] = "encoder.proj"  # after an ELU
    return names


def _conv_leaf(rest: str) -> str:
    """The weight-normed conv's own key, whichever of the original / transformers / torch forms it has."""
    rest = re.sub(r"^conv\.conv\.", "conv.", rest)  # original SConv1d -> NormConv1d -> Conv1d nesting
    return re.sub(r"^conv\.weight_([gv])$", lambda m: "conv.parametrizations.weight.original"
                  + ("0" if m.group(1) == "g" else "1"), rest)


def _encoder_key(index: int, rest: str, names: Mapping[int, str]) -> Optional[str]:
    path = names.get(index)
    if path is None:
        return None
    if path == "encoder.lstm":
        return f"{path}.{rest[len('lstm.'):]}" if rest.startswith("lstm.") else None
    if ".res." in path:
        if not rest.startswith(tuple(old for old, _ in _RESIDUAL)):
            return None
        head, _, leaf = rename_prefix(rest, _RESIDUAL).partition(".")
        return f"{path}.{head}.{_conv_leaf(leaf)}"
    return f"{path}.{_conv_leaf(rest)}"


def _codebook_key(level: int, name: str, num_quantizers: int) -> Optional[str]:
    name = "initted" if name == "inited" else name
    if num_quantizers == 1:
        return f"quantizer.{name}" if level == 0 else None
    return f"quantizer.quantizers.{level}.{name}" if level < num_quantizers else None


def _plain_weight_to_norm(state: Dict[str, torch.Tensor]) -> None:
    """A conv saved without weight norm (``...conv.weight``): split into magnitude and direction."""
    for key in [k for k in state if k.startswith("encoder.") and k.endswith(".conv.weight")]:
        weight = state.pop(key)
        base = key[: -len("weight")]
        state[base + "parametrizations.weight.original0"] = weight.flatten(1).norm(dim=1).reshape(-1, 1, 1)
        state[base + "parametrizations.weight.original1"] = weight


def convert_wavtokenizer_state_dict(official: Mapping[str, torch.Tensor], config) -> Dict[str, torch.Tensor]:
    """Official (Lightning or transformers) WavTokenizer state dict -> tokzoo state dict for ``config``
    (a :class:`~audiotok.models.wavtokenizer.WavTokenizerConfig`). A tokzoo-layout dict passes through."""
    layout = detect_layout(official)
    if layout == "tokzoo":
        return dict(official)
    names = _encoder_modules(config)
    out: Dict[str, torch.Tensor] = {}
    for key, value in official.items():
        if key.startswith(TRAINING_ONLY + UNUSED) or key in WINDOWS:
            continue
        if key.startswith("encoder_model."):
            key = key[len("encoder_model."):]
        new: Optional[str] = None
        m = _ENCODER_KEY.match(key)
        cb = LIGHTNING_CODEBOOK.match(key)
        if m:
            new = _encoder_key(int(m.group(1)), m.group(2), names)
        elif cb:
            new = _codebook_key(int(cb.group(1)), cb.group(2), config.num_quantizers)
        elif key.startswith("quantizer.codebook."):
            new = _codebook_key(0, key[len("quantizer.codebook."):], config.num_quantizers)
        elif key.startswith("head."):
            new = rename_prefix(key, _HEAD)
        elif key.startswith("backbone."):
            new = key
        if new is not None and new.endswith("initted"):
            value = value.bool()
        out[new if new is not None else key] = value
    _plain_weight_to_norm(out)
    if config.num_quantizers == 1 and "quantizer.embed" in out:
        # a file holding only the code vectors: EMA statistics consistent with a count of 1 each
        out.setdefault("quantizer.embed_avg", out["quantizer.embed"].clone())
        out.setdefault("quantizer.cluster_size", torch.ones(out["quantizer.embed"].shape[0]))
        out.setdefault("quantizer.initted", torch.tensor([True]))
    return out


def load_wavtokenizer_state_dict(model, official: Mapping[str, torch.Tensor], source: str = "checkpoint"):
    """Convert and load strictly; mismatches raise an error naming the keys."""
    load_strict(model, convert_wavtokenizer_state_dict(official, model.config), source)
    return model


def infer_config(official: Mapping[str, torch.Tensor]):
    """The :class:`WavTokenizerConfig` an official (Lightning or transformers) state dict was built
    with, read from tensor shapes: strides from the channel-doubling convs (kernel = 2 x stride),
    widths, LSTM depth, codebook, decoder sizes, and ``n_fft`` from the head's rows."""
    from audiotok.models.wavtokenizer import WavTokenizerConfig

    state = {k[len("encoder_model."):] if k.startswith("encoder_model.") else k: v for k, v in official.items()}
    if detect_layout(state) == "tokzoo":
        raise InputError("not an official WavTokenizer state dict (no SEANet encoder keys)")
    convs: Dict[int, torch.Tensor] = {}
    lstm_layers = set()
    for key, value in state.items():
        m = _ENCODER_KEY.match(key)
        if not m:
            continue
        index, rest = int(m.group(1)), m.group(2)
        if rest in ("conv.conv.weight_v", "conv.parametrizations.weight.original1", "conv.weight_v"):
            convs[index] = value
        lstm = re.match(r"^lstm\.weight_ih_l(\d+)$", rest)
        if lstm:
            lstm_layers.add(int(lstm.group(1)))
    down = [(i, w) for i, w in sorted(convs.items()) if w.shape[0] == 2 * w.shape[1] and w.shape[-1] % 2 == 0]
    if not down or 0 not in convs:
        raise InputError("cannot infer the encoder strides: no stem or channel-doubling convolutions found")
    strides = [int(w.shape[-1]) // 2 for _, w in down]
    residual_layers = (down[1][0] - down[0][0]) - 2 if len(down) > 1 else down[0][0] - 2
    codebook = next((v for k, v in state.items() if k.endswith("_codebook.embed") or k == "quantizer.codebook.embed"),
                    None)
    levels = {int(m.group(1)) for k in state if (m := LIGHTNING_CODEBOOK.match(k))}
    head = state.get("head.out.weight", state.get("head.linear.weight"))
    if codebook is None or head is None or "backbone.embed.weight" not in state:
        raise InputError("cannot infer the config: codebook, backbone.embed or head weights are missing")
    layers = {int(m.group(1)) for k in state if (m := re.match(r"^backbone\.convnext\.(\d+)\.", k))}
    return WavTokenizerConfig(
        strides=strides,
        n_filters=int(convs[0].shape[0]),
        residual_layers=residual_layers,
        lstm_layers=len(lstm_layers),
        dim=int(codebook.shape[1]),
        codebook_size=int(codebook.shape[0]),
        num_quantizers=max(1, len(levels)),
        decoder_dim=int(state["backbone.embed.weight"].shape[0]),
        decoder_intermediate_dim=int(state["backbone.convnext.0.pwconv1.weight"].shape[0]),
        decoder_layers=len(layers),
        num_conditions=int(state["backbone.norm.scale.weight"].shape[0]),
        attention="backbone.pos_net.2.q.weight" in state,
        n_fft=int(head.shape[0]) - 2,
    )


def config_from_official_yaml(data: Mapping[str, Any]):
    """Map an official training YAML (LightningCLI, read with ``yaml.safe_load``) onto
    :class:`WavTokenizerConfig`; only known fields are read, no class named there is imported."""
    from audiotok.models.wavtokenizer import WavTokenizerConfig

    try:
        args = data["model"]["init_args"]
        fe, bb, head = (args[k]["init_args"] for k in ("feature_extractor", "backbone", "head"))
    except (KeyError, TypeError):
        raise InputError("not a WavTokenizer config: expected "
                         "model.init_args.{feature_extractor,backbone,head}") from None
    if head.get("padding", "same") != "same":
        raise InputError(f"head padding {head.get('padding')!r} is not supported (only 'same')")
    strides = list(reversed([int(r) for r in fe["dowmsamples"]]))  # the YAML lists decoder order (sic)
    cfg = WavTokenizerConfig(
        sample_rate=int(args.get("sample_rate", 24000)),
        strides=strides,
        dim=int(bb.get("input_channels", 512)),
        codebook_size=int(fe.get("vq_bins", 4096)),
        num_quantizers=int(fe.get("num_quantizers", 1)),
        kmeans_iters=int(fe.get("vq_kmeans", 200)),
        decoder_dim=int(bb["dim"]),
        decoder_intermediate_dim=int(bb["intermediate_dim"]),
        decoder_layers=int(bb["num_layers"]),
        num_conditions=int(bb.get("adanorm_num_embeddings") or 1),
        n_fft=int(head["n_fft"]),
    )
    if int(head.get("hop_length", cfg.hop_length)) != cfg.hop_length:
        raise InputError(f"head hop_length {head['hop_length']} differs from the encoder's hop {cfg.hop_length}")
    return cfg


#: transformers ``WavTokenizerConfig`` fields (``config.json``) whose value must be the one our model implements.
_TRANSFORMERS_FIXED = dict(audio_channels=1, dilation_growth_rate=2, compress=2, use_conv_shortcut=True,
                           use_causal_conv=False, pad_mode="reflect", norm_type="weight_norm", kernel_size=7,
                           last_kernel_size=7, residual_kernel_size=3, norm_eps=1e-6)


def config_from_transformers(data: Mapping[str, Any]):
    """Map the ``config.json`` a transformers ``WavTokenizerModel`` writes onto :class:`WavTokenizerConfig`.

    ``upsampling_ratios`` are in decoder order (reversed here into encoder ``strides``); ``n_fft`` is
    4 x hop there (not a field). Values our model does not implement (causal convs, another padding
    or norm, other kernel sizes, ``codebook_dim != hidden_size``) are refused, naming the field."""
    from audiotok.models.wavtokenizer import WavTokenizerConfig

    if data.get("model_type") not in (None, "wavtokenizer"):
        raise InputError(f"not a transformers WavTokenizer config (model_type {data.get('model_type')!r})")
    for name, expected in _TRANSFORMERS_FIXED.items():
        if name in data and data[name] != expected:
            raise InputError(f"transformers config field {name}={data[name]!r} is not supported (only {expected!r})")
    hidden = int(data.get("hidden_size", 512))
    if int(data.get("codebook_dim", hidden)) != hidden:
        raise InputError(f"codebook_dim ({data['codebook_dim']}) must equal hidden_size ({hidden})")
    strides = list(reversed([int(r) for r in data.get("upsampling_ratios", (6, 5, 5, 4))]))
    return WavTokenizerConfig(
        sample_rate=int(data.get("sampling_rate", 24000)),
        strides=strides,
        n_filters=int(data.get("num_filters", 32)),
        residual_layers=int(data.get("num_residual_layers", 1)),
        lstm_layers=int(data.get("num_lstm_layers", 2)),
        dim=hidden,
        codebook_size=int(data.get("codebook_size", 4096)),
        decoder_dim=int(data.get("decoder_hidden_size", 768)),
        decoder_intermediate_dim=int(data.get("decoder_intermediate_size", 2304)),
        decoder_layers=int(data.get("decoder_num_layers", 12)),
        num_conditions=int(data.get("adanorm_num_embeddings", 4)),
        norm_groups=int(data.get("decoder_attention_num_groups", 32)),
        n_fft=4 * math.prod(strides),
    )


#: Lightning ``.ckpt`` discriminator prefixes -> :class:`audiotok.losses.AudioAdversarial` prefixes. ``dac.``
#: is the instance the original optimizer held (it never received a gradient); ``dacdiscriminator.discriminator.``
#: the one its losses used, a fixed random network: our ``published_dac`` (see ``docs`` of ``dac_mode``).
DISCRIMINATOR_PREFIXES = (("multiperioddisc.", "discriminators.mpd."), ("multiresddisc.", "discriminators.mrd."),
                          ("dacdiscriminator.discriminator.", "published_dac."), ("dac.", "discriminators.dac."))
_LEGACY_NORM = (("weight_g", "parametrizations.weight.original0"), ("weight_v", "parametrizations.weight.original1"))


def convert_wavtokenizer_discriminators(official: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The discriminators of a released Lightning ``.ckpt`` -> an ``AudioAdversarial`` state dict
    (MPD, MRD, DAC and the fixed DAC copy of the published recipe). Raises ``ValueError`` when the
    file holds none (the transformers-layout releases keep only the tokenizer)."""
    out: Dict[str, torch.Tensor] = {}
    for key, value in official.items():
        for theirs, ours in DISCRIMINATOR_PREFIXES:
            if key.startswith(theirs):
                rest = key[len(theirs):].replace(".emb.", ".projection.emb.")
                for old, new in _LEGACY_NORM:
                    if rest.endswith("." + old):
                        rest = rest[: -len(old)] + new
                out[ours + rest] = value
                break
    if not out:
        raise InputError("the checkpoint holds no discriminator weights (no multiperioddisc. / multiresddisc. / "
                         "dac. keys): only the Lightning .ckpt releases ship them")
    return out
