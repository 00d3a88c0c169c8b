"""Official WavTokenizer layouts -> tokzoo, without the official code.

An official-layout (Lightning ``.ckpt``) state dict of a tiny config is generated from the documented
key naming (``feature_extractor.encodec.encoder.model.<i>.conv.conv.weight_g/_v``, the codebook
under ``quantizer.vq.layers.0._codebook``, ``backbone.*``, ``head.out.*``, plus the SEANet decoder and
discriminator keys a real checkpoint carries) with fresh random values. It is converted, loaded
strictly, and the model's ids and audio are checked against a forward pass written here directly on
the original layout: weight norm computed by hand from g and v, EnCodec padding, the LSTM equations,
the attention and ConvNeXt maths, and the "same"-padded iSTFT as an explicit overlap-add loop.
"""
import math
import re

import pytest
import torch
import torch.nn.functional as F
import yaml

from audiotok.models.wavtokenizer import WavTokenizer, WavTokenizerConfig
from vistok.hub.catalogue import get_card
from vistok.models.state_dict import read_state_dict
from vistok.models.state_dict import CheckpointMismatch
from vistok.hub.loading import convert_card, load_tokenizer
from audiotok.models.wavtokenizer.convert import (
    config_from_official_yaml, convert_wavtokenizer_state_dict, detect_layout, infer_config,
    load_wavtokenizer_state_dict,
)

CFG = dict(strides=[2, 3], n_filters=4, dim=16, codebook_size=32, decoder_dim=32, decoder_intermediate_dim=48,
           decoder_layers=2, norm_groups=32, lstm_layers=2)
ENC = "feature_extractor.encodec.encoder.model."
CODEBOOK = "feature_extractor.encodec.quantizer.vq.layers.0._codebook."


# ----- an official-layout state dict from the documented naming -----

def official_index(config):
    """Our module path -> index in the original encoder Sequential (stem, [resblock, ELU, down] per
    stage, LSTM, ELU, final conv)."""
    index = {"encoder.stem": 0}
    for s in range(len(config.strides)):
        index[f"encoder.stages.{s}.res.0"] = 1 + 3 * s
        index[f"encoder.stages.{s}.down"] = 3 + 3 * s
    index["encoder.lstm"] = 1 + 3 * len(config.strides)
    index["encoder.proj"] = 3 + 3 * len(config.strides)
    return index


def legacy_key(key, index):
    if key.startswith("encoder."):
        key = key.replace("parametrizations.weight.original0", "conv.weight_g")
        key = key.replace("parametrizations.weight.original1", "conv.weight_v")
        key = re.sub(r"\.conv\.bias$", ".conv.conv.bias", key)
        path = next(p for p in sorted(index, key=len, reverse=True) if key.startswith(p + "."))
        rest = key[len(path) + 1:]
        rest = rest.replace("conv1.", "block.1.").replace("conv2.", "block.3.")
        if path == "encoder.lstm":
            rest = "lstm." + rest
        return f"{ENC}{index[path]}.{rest}"
    if key.startswith("quantizer."):
        return CODEBOOK + key[len("quantizer."):].replace("initted", "inited")
    return key.replace("head.proj.", "head.out.")


def official_state(config, seed=0):
    """Random values under the original key names and shapes (fresh, not our model's weights)."""
    gen = torch.Generator().manual_seed(seed)
    shapes = {k: v.shape for k, v in WavTokenizer(config).state_dict().items()}
    index = official_index(config)
    state = {}
    for key, shape in shapes.items():
        name = legacy_key(key, index)
        if name.endswith("weight_g"):
            value = torch.rand(shape, generator=gen) + 0.5
        elif name.endswith("inited"):
            value = torch.ones(shape)  # float, as the original registers it
        elif name.endswith("cluster_size"):
            value = torch.rand(shape, generator=gen) * 5 + 1
        elif re.search(r"(norm|norm1|norm2|pos_net\.5|final_layer_norm)\.weight$", name) or ".scale." in name:
            value = 1 + 0.1 * torch.randn(shape, generator=gen)
        else:
            fan = shape[1] * (shape[2] if len(shape) > 2 else 1) if len(shape) > 1 else 10
            value = torch.randn(shape, generator=gen) / math.sqrt(fan)
        state[name] = value
    state[CODEBOOK + "embed"] = torch.randn(config.codebook_size, config.dim, generator=gen) * 0.1
    state["head.istft.window"] = torch.hann_window(config.n_fft)
    # what a released .ckpt also holds, to be dropped
    state["feature_extractor.encodec.decoder.model.0.conv.conv.weight_g"] = torch.ones(config.dim, 1, 1)
    state["multiperioddisc.discriminators.0.convs.0.weight_v"] = torch.randn(32, 1, 5, 1)
    state["dac.discriminators.0.convs.1.0.weight_g"] = torch.ones(128, 1, 1, 1)
    state["dacdiscriminator.discriminator.discriminators.0.convs.1.0.weight_g"] = torch.ones(128, 1, 1, 1)
    state["melspec_loss.mel_spec.mel_scale.fb"] = torch.randn(513, 100)
    return state


# ----- the original forward, written on the original layout -----

def wn_conv(sd, prefix, x, stride=1, dilation=1):
    g, v, b = (sd[prefix + s] for s in ("conv.conv.weight_g", "conv.conv.weight_v", "conv.conv.bias"))
    w = g * v / v.pow(2).sum(dim=(1, 2), keepdim=True).sqrt()  # weight norm by hand
    k = (w.shape[-1] - 1) * dilation + 1
    total = k - stride
    frames = (x.shape[-1] - k + total) / stride + 1
    extra = (math.ceil(frames) - 1) * stride + (k - total) - x.shape[-1]
    right = total // 2
    x = F.pad(x, (total - right, right + extra), mode="reflect")
    return F.conv1d(x, w, b, stride=stride, dilation=dilation)


def lstm(sd, prefix, x, layers):
    """(B, C, T) through stacked LSTMs with the gate equations written out; plus the skip."""
    h_in = x.permute(2, 0, 1)  # (T, B, C)
    for layer in range(layers):
        w_ih, w_hh = sd[f"{prefix}weight_ih_l{layer}"], sd[f"{prefix}weight_hh_l{layer}"]
        b = sd[f"{prefix}bias_ih_l{layer}"] + sd[f"{prefix}bias_hh_l{layer}"]
        h = torch.zeros(h_in.shape[1], w_hh.shape[1])
        c = torch.zeros_like(h)
        outs = []
        for x_t in h_in:
            i, f, g, o = (x_t @ w_ih.T + h @ w_hh.T + b).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        h_in = torch.stack(outs)
    return h_in.permute(1, 2, 0) + x


def reference_encode(sd, config, wav):
    x = wn_conv(sd, ENC + "0.", wav[:, None])
    for s, stride in enumerate(config.strides):
        base = f"{ENC}{1 + 3 * s}."
        h = wn_conv(sd, base + "block.3.", F.elu(wn_conv(sd, base + "block.1.", F.elu(x))))
        x = wn_conv(sd, base + "shortcut.", x) + h
        x = wn_conv(sd, f"{ENC}{3 + 3 * s}.", F.elu(x), stride=stride)
    x = lstm(sd, f"{ENC}{1 + 3 * len(config.strides)}.lstm.", x, config.lstm_layers)
    z = wn_conv(sd, f"{ENC}{3 + 3 * len(config.strides)}.", F.elu(x))
    embed = sd[CODEBOOK + "embed"]
    frames = z.transpose(1, 2)
    return ((frames[:, :, None, :] - embed[None, None]) ** 2).sum(-1).argmin(-1)


def group_norm(sd, prefix, x, groups):
    return F.group_norm(x, groups, sd[prefix + "weight"], sd[prefix + "bias"], eps=1e-6)


def ada_ln(sd, prefix, x):  # x (B, L, C); condition 0
    return F.layer_norm(x, x.shape[-1:], eps=1e-6) * sd[prefix + "scale.weight"][0] + sd[prefix + "shift.weight"][0]


def reference_decode(sd, config, ids):
    g = config.norm_groups
    x = sd[CODEBOOK + "embed"][ids].transpose(1, 2)
    x = F.conv1d(x, sd["backbone.embed.weight"], sd["backbone.embed.bias"], padding=3)
    for i in (0, 1, 2, 3, 4):
        p = f"backbone.pos_net.{i}."
        if i == 2:
            h = group_norm(sd, p + "norm.", x, g)
            q, k, v = (F.conv1d(h, sd[p + n + ".weight"], sd[p + n + ".bias"]) for n in "qkv")
            attn = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(q.shape[1]), dim=-1)  # (B, Lq, Lk)
            x = x + F.conv1d(v @ attn.transpose(1, 2), sd[p + "proj_out.weight"], sd[p + "proj_out.bias"])
        else:
            h = F.conv1d(F.silu(group_norm(sd, p + "norm1.", x, g)), sd[p + "conv1.weight"], sd[p + "conv1.bias"],
                         padding=1)
            x = x + F.conv1d(F.silu(group_norm(sd, p + "norm2.", h, g)), sd[p + "conv2.weight"], sd[p + "conv2.bias"],
                             padding=1)
    x = group_norm(sd, "backbone.pos_net.5.", x, g)
    x = ada_ln(sd, "backbone.norm.", x.transpose(1, 2)).transpose(1, 2)
    for i in range(config.decoder_layers):
        p = f"backbone.convnext.{i}."
        h = F.conv1d(x, sd[p + "dwconv.weight"], sd[p + "dwconv.bias"], padding=3, groups=x.shape[1])
        h = ada_ln(sd, p + "norm.", h.transpose(1, 2))
        h = F.linear(F.gelu(F.linear(h, sd[p + "pwconv1.weight"], sd[p + "pwconv1.bias"])), sd[p + "pwconv2.weight"],
                     sd[p + "pwconv2.bias"])
        x = x + (sd[p + "gamma"] * h).transpose(1, 2)
    x = F.layer_norm(x.transpose(1, 2), (x.shape[1],), sd["backbone.final_layer_norm.weight"],
                     sd["backbone.final_layer_norm.bias"], eps=1e-6)
    pred = F.linear(x, sd["head.out.weight"], sd["head.out.bias"]).transpose(1, 2).double()
    n_fft, hop = config.n_fft, config.hop_length
    mag = pred[:, : n_fft // 2 + 1].exp().clamp(max=100)
    phase = pred[:, n_fft // 2 + 1:]
    window = sd["head.istft.window"].double()
    frames = pred.shape[-1]
    out = torch.zeros(pred.shape[0], (frames - 1) * hop + n_fft, dtype=torch.float64)
    env = torch.zeros((frames - 1) * hop + n_fft, dtype=torch.float64)
    for t in range(frames):  # overlap-add, one frame at a time
        spectrum = torch.complex(mag[:, :, t] * phase[:, :, t].cos(), mag[:, :, t] * phase[:, :, t].sin())
        out[:, t * hop: t * hop + n_fft] += torch.fft.irfft(spectrum, n_fft) * window
        env[t * hop: t * hop + n_fft] += window ** 2
    cut = (n_fft - hop) // 2
    return (out[:, cut: out.shape[-1] - cut] / env[cut: env.shape[-1] - cut]).float()


# ----- tests -----

@pytest.fixture(scope="module")
def config():
    return WavTokenizerConfig(**CFG)


def test_official_layout_loads_strictly_and_matches_the_original_forward(config):
    torch.manual_seed(0)
    official = official_state(config)
    assert detect_layout(official) == "lightning"
    converted = convert_wavtokenizer_state_dict(official, config)
    assert not any(k.startswith(("feature_extractor", "multiperiod", "dac", "melspec")) for k in converted)
    assert converted["quantizer.initted"].dtype == torch.bool
    model = load_wavtokenizer_state_dict(WavTokenizer(config), official, "tiny official").eval()
    wav = torch.randn(2, 61) * 0.5
    with torch.no_grad():
        ids = model.encode(wav)
        ref_ids = reference_encode(official, config, wav)
        assert ids.shape == (2, 11) and len(ids.unique()) > 3
        assert torch.equal(ids, ref_ids)
        audio = model.decode(ids)
        ref_audio = reference_decode(official, config, ids)
    assert audio.shape == (2, 66)
    torch.testing.assert_close(audio, ref_audio, rtol=1e-4, atol=1e-5 * float(ref_audio.abs().max()))


def test_transformers_layout_converts_to_the_same_tensors(config):
    official = official_state(config)
    hf = {}
    for key, value in official.items():
        if key.startswith(("multiperioddisc.", "dac", "melspec_loss.", "feature_extractor.encodec.decoder.")) \
                or key == "head.istft.window":
            continue
        key = key.replace(ENC, "encoder_model.encoder.layers.").replace(CODEBOOK, "encoder_model.quantizer.codebook.")
        key = key.replace("head.out.", "head.linear.").replace("conv.conv.bias", "conv.bias")
        key = key.replace("conv.conv.weight_g", "conv.parametrizations.weight.original0")
        hf[key.replace("conv.conv.weight_v", "conv.parametrizations.weight.original1")] = value
    assert detect_layout(hf) == "transformers"
    ours, theirs = convert_wavtokenizer_state_dict(official, config), convert_wavtokenizer_state_dict(hf, config)
    assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)
    bare = {k[len("encoder_model."):] if k.startswith("encoder_model.") else k: v for k, v in hf.items()}
    assert set(convert_wavtokenizer_state_dict(bare, config)) == set(ours)  # without the base-model prefix too


def test_mismatches_name_the_keys(config):
    official = official_state(config)
    missing = dict(official)
    del missing[f"{ENC}3.conv.conv.weight_g"]
    missing["feature_extractor.encodec.encoder.model.99.conv.conv.bias"] = torch.zeros(3)
    with pytest.raises(CheckpointMismatch) as err:
        load_wavtokenizer_state_dict(WavTokenizer(config), missing, "broken.ckpt")
    text = str(err.value)
    assert "broken.ckpt" in text and "encoder.stages.0.down.conv.parametrizations.weight.original0" in text
    assert "feature_extractor.encodec.encoder.model.99.conv.conv.bias" in text
    other = WavTokenizerConfig(**dict(CFG, strides=[3, 2]))  # same keys, different kernel sizes
    with pytest.raises(ValueError, match=r"shape mismatch\n.*encoder\.stages\.0\.down"):
        load_wavtokenizer_state_dict(WavTokenizer(other), official, "wrong config")


def test_plain_weights_and_missing_codebook_statistics_are_accepted(config):
    model = WavTokenizer(config)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("quantizer.") or k == "quantizer.embed"}
    stem = state.pop("encoder.stem.conv.parametrizations.weight.original1")
    gain = state.pop("encoder.stem.conv.parametrizations.weight.original0")
    weight = gain * stem / stem.flatten(1).norm(dim=1).reshape(-1, 1, 1)
    hf = {"encoder.layers.0.conv.weight": weight, "encoder.layers.0.conv.bias": state.pop("encoder.stem.conv.bias")}
    index = official_index(config)
    for key, value in state.items():
        hf[legacy_key(key, index).replace(ENC, "encoder.layers.").replace("conv.conv.", "conv.").replace(
            CODEBOOK, "quantizer.codebook.").replace("head.out.", "head.linear.")] = value
    loaded = load_wavtokenizer_state_dict(WavTokenizer(config), hf, "hf file").eval()
    torch.testing.assert_close(loaded.encoder.stem.conv.weight, weight)
    assert bool(loaded.quantizer.initted) and torch.equal(loaded.quantizer.embed_avg, loaded.quantizer.embed)


def test_config_is_recovered_from_weights_and_from_the_official_yaml(config):
    inferred = infer_config(official_state(config))
    for field in ("strides", "n_filters", "dim", "codebook_size", "decoder_dim", "decoder_intermediate_dim",
                  "decoder_layers", "lstm_layers", "num_conditions", "n_fft", "residual_layers", "num_quantizers"):
        assert getattr(inferred, field) == getattr(config, field), field
    official_yaml = yaml.safe_load("""
model:
  class_path: decoder.experiment.WavTokenizer
  init_args:
    sample_rate: 24000
    feature_extractor:
      class_path: decoder.feature_extractors.EncodecFeatures
      init_args: {encodec_model: encodec_24khz, bandwidths: [6.6, 6.6, 6.6, 6.6], num_quantizers: 1,
                  dowmsamples: [8, 5, 4, 2], vq_bins: 4096, vq_kmeans: 200}
    backbone:
      class_path: decoder.models.VocosBackbone
      init_args: {input_channels: 512, dim: 768, intermediate_dim: 2304, num_layers: 12, adanorm_num_embeddings: 4}
    head:
      class_path: decoder.heads.ISTFTHead
      init_args: {dim: 768, n_fft: 1280, hop_length: 320, padding: same}
""")
    assert config_from_official_yaml(official_yaml).to_dict() == WavTokenizerConfig.for_token_rate(75).to_dict()
    official_yaml["model"]["init_args"]["head"]["init_args"]["hop_length"] = 600
    with pytest.raises(ValueError, match="hop_length"):
        config_from_official_yaml(official_yaml)
    with pytest.raises(ValueError, match="not a WavTokenizer config"):
        config_from_official_yaml({"model": {}})
    with pytest.raises(ValueError, match="not an official"):
        infer_config({"backbone.embed.weight": torch.zeros(1)})


def test_a_lightning_file_goes_through_the_zoo(config, tmp_path, monkeypatch):
    """weights_only load of a .ckpt with Lightning's top-level entries, a card, conversion, cache."""
    cards = tmp_path / "cards"
    cards.mkdir()
    card = dict(name="wavtokenizer-tiny-test", family="wavtokenizer", description="tiny", license="mit",
                source=dict(repo="example/tiny", filename="tiny.ckpt"), config=dict(CFG))
    (cards / "tiny.yaml").write_text(yaml.safe_dump(card))
    monkeypatch.setenv("TOKZOO_ZOO_PATH", str(cards))
    monkeypatch.setenv("TOKZOO_CACHE", str(tmp_path / "cache"))
    official = official_state(config)
    path = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": official, "epoch": 7, "global_step": 1234, "pytorch-lightning_version": "1.8.6"}, path)
    assert len(read_state_dict(path)) == len(official)
    convert_card(get_card("wavtokenizer-tiny-test"), checkpoint=path)
    model = load_tokenizer("wavtokenizer-tiny-test")
    wav = torch.randn(1, 30)
    with torch.no_grad():
        assert torch.equal(model.encode(wav), reference_encode(official, config, wav))


# ----- the transformers layout, as transformers 5.25 writes it -----

#: What ``WavTokenizerModel(WavTokenizerConfig(upsampling_ratios=[3, 2], num_filters=4, hidden_size=16,
#: codebook_dim=16, codebook_size=32, decoder_hidden_size=32, decoder_intermediate_size=48,
#: decoder_num_layers=2)).save_pretrained(dir)`` writes (transformers 5.25.0, generated once in a scratch
#: environment; ``{c}`` = ConvNeXt blocks 0, 1 and ``{r}`` = pos_net ResNet blocks 0, 1, 3, 4): the
#: keys of ``model.safetensors`` with their shapes (all float32), and ``config.json`` less
#: ``architectures`` / ``dtype`` / ``transformers_version``. See ``eval/parity_wavtokenizer_hf.py``.
TRANSFORMERS_KEYS = """
backbone.convnext.{c}.dwconv.bias 32
backbone.convnext.{c}.dwconv.weight 32x1x7
backbone.convnext.{c}.gamma 32
backbone.convnext.{c}.norm.scale.weight 4x32
backbone.convnext.{c}.norm.shift.weight 4x32
backbone.convnext.{c}.pwconv1.bias 48
backbone.convnext.{c}.pwconv1.weight 48x32
backbone.convnext.{c}.pwconv2.bias 32
backbone.convnext.{c}.pwconv2.weight 32x48
backbone.embed.bias 32
backbone.embed.weight 32x16x7
backbone.final_layer_norm.bias 32
backbone.final_layer_norm.weight 32
backbone.norm.scale.weight 4x32
backbone.norm.shift.weight 4x32
backbone.pos_net.{r}.conv1.bias 32
backbone.pos_net.{r}.conv1.weight 32x32x3
backbone.pos_net.{r}.conv2.bias 32
backbone.pos_net.{r}.conv2.weight 32x32x3
backbone.pos_net.{r}.norm1.bias 32
backbone.pos_net.{r}.norm1.weight 32
backbone.pos_net.{r}.norm2.bias 32
backbone.pos_net.{r}.norm2.weight 32
backbone.pos_net.2.k.bias 32
backbone.pos_net.2.k.weight 32x32x1
backbone.pos_net.2.norm.bias 32
backbone.pos_net.2.norm.weight 32
backbone.pos_net.2.proj_out.bias 32
backbone.pos_net.2.proj_out.weight 32x32x1
backbone.pos_net.2.q.bias 32
backbone.pos_net.2.q.weight 32x32x1
backbone.pos_net.2.v.bias 32
backbone.pos_net.2.v.weight 32x32x1
backbone.pos_net.5.bias 32
backbone.pos_net.5.weight 32
encoder_model.encoder.layers.0.conv.bias 4
encoder_model.encoder.layers.0.conv.parametrizations.weight.original0 4x1x1
encoder_model.encoder.layers.0.conv.parametrizations.weight.original1 4x1x7
encoder_model.encoder.layers.1.block.1.conv.bias 2
encoder_model.encoder.layers.1.block.1.conv.parametrizations.weight.original0 2x1x1
encoder_model.encoder.layers.1.block.1.conv.parametrizations.weight.original1 2x4x3
encoder_model.encoder.layers.1.block.3.conv.bias 4
encoder_model.encoder.layers.1.block.3.conv.parametrizations.weight.original0 4x1x1
encoder_model.encoder.layers.1.block.3.conv.parametrizations.weight.original1 4x2x1
encoder_model.encoder.layers.1.shortcut.conv.bias 4
encoder_model.encoder.layers.1.shortcut.conv.parametrizations.weight.original0 4x1x1
encoder_model.encoder.layers.1.shortcut.conv.parametrizations.weight.original1 4x4x1
encoder_model.encoder.layers.3.conv.bias 8
encoder_model.encoder.layers.3.conv.parametrizations.weight.original0 8x1x1
encoder_model.encoder.layers.3.conv.parametrizations.weight.original1 8x4x4
encoder_model.encoder.layers.4.block.1.conv.bias 4
encoder_model.encoder.layers.4.block.1.conv.parametrizations.weight.original0 4x1x1
encoder_model.encoder.layers.4.block.1.conv.parametrizations.weight.original1 4x8x3
encoder_model.encoder.layers.4.block.3.conv.bias 8
encoder_model.encoder.layers.4.block.3.conv.parametrizations.weight.original0 8x1x1
encoder_model.encoder.layers.4.block.3.conv.parametrizations.weight.original1 8x4x1
encoder_model.encoder.layers.4.shortcut.conv.bias 8
encoder_model.encoder.layers.4.shortcut.conv.parametrizations.weight.original0 8x1x1
encoder_model.encoder.layers.4.shortcut.conv.parametrizations.weight.original1 8x8x1
encoder_model.encoder.layers.6.conv.bias 16
encoder_model.encoder.layers.6.conv.parametrizations.weight.original0 16x1x1
encoder_model.encoder.layers.6.conv.parametrizations.weight.original1 16x8x6
encoder_model.encoder.layers.7.lstm.bias_hh_l0 64
encoder_model.encoder.layers.7.lstm.bias_hh_l1 64
encoder_model.encoder.layers.7.lstm.bias_ih_l0 64
encoder_model.encoder.layers.7.lstm.bias_ih_l1 64
encoder_model.encoder.layers.7.lstm.weight_hh_l0 64x16
encoder_model.encoder.layers.7.lstm.weight_hh_l1 64x16
encoder_model.encoder.layers.7.lstm.weight_ih_l0 64x16
encoder_model.encoder.layers.7.lstm.weight_ih_l1 64x16
encoder_model.encoder.layers.9.conv.bias 16
encoder_model.encoder.layers.9.conv.parametrizations.weight.original0 16x1x1
encoder_model.encoder.layers.9.conv.parametrizations.weight.original1 16x16x7
encoder_model.quantizer.codebook.cluster_size 32
encoder_model.quantizer.codebook.embed 32x16
encoder_model.quantizer.codebook.embed_avg 32x16
encoder_model.quantizer.codebook.inited 1
head.linear.bias 26
head.linear.weight 26x32
"""
TRANSFORMERS_CONFIG = dict(
    adanorm_num_embeddings=4, audio_channels=1, codebook_dim=16, codebook_size=32, compress=2,
    decoder_attention_num_groups=32, decoder_hidden_size=32, decoder_intermediate_size=48, decoder_num_layers=2,
    dilation_growth_rate=2, hidden_size=16, kernel_size=7, last_kernel_size=7, model_type="wavtokenizer",
    norm_eps=1e-06, norm_type="weight_norm", num_filters=4, num_lstm_layers=2, num_residual_layers=1,
    pad_mode="reflect", residual_kernel_size=3, sampling_rate=24000, upsampling_ratios=[3, 2],
    use_causal_conv=False, use_conv_shortcut=True)


def transformers_state(seed=0):
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for line in TRANSFORMERS_KEYS.split("\n"):
        if not line.strip():
            continue
        key, shape = line.split()
        for name in sorted({key.format(c=c, r=r) for c in (0, 1) for r in (0, 1, 3, 4)}):
            state[name] = torch.randn([int(s) for s in shape.split("x")], generator=gen) * 0.3
    state["encoder_model.quantizer.codebook.inited"] = torch.ones(1)  # a float there
    state["encoder_model.quantizer.codebook.cluster_size"] = torch.rand(32, generator=gen) + 0.5
    return state


def test_transformers_save_pretrained_layout_loads_strictly(config):
    from audiotok.models.wavtokenizer.convert import config_from_transformers

    state = transformers_state()
    assert len(state) == 112 and detect_layout(state) == "transformers"
    assert config_from_transformers(TRANSFORMERS_CONFIG).to_dict() == config.to_dict()
    assert infer_config(state).to_dict() == config.to_dict()
    converted = convert_wavtokenizer_state_dict(state, config)
    assert converted["quantizer.initted"].dtype == torch.bool
    model = load_wavtokenizer_state_dict(WavTokenizer(config), state, "transformers layout").eval()
    assert torch.equal(model.quantizer.embed, state["encoder_model.quantizer.codebook.embed"])
    assert torch.equal(model.head.proj.weight, state["head.linear.weight"])
    with torch.no_grad():
        assert model.decode(model.encode(torch.randn(1, 61))).shape == (1, 66)
    for field, value in (("use_causal_conv", True), ("pad_mode", "constant"), ("norm_type", "time_group_norm"),
                         ("codebook_dim", 8), ("model_type", "encodec")):
        with pytest.raises(ValueError, match=field):
            config_from_transformers(dict(TRANSFORMERS_CONFIG, **{field: value}))


def test_a_transformers_safetensors_file_goes_through_the_zoo(config, tmp_path, monkeypatch):
    from safetensors.torch import save_file

    cards = tmp_path / "cards"
    cards.mkdir()
    card = dict(name="wavtokenizer-tiny-hf-test", family="wavtokenizer", description="tiny", license="mit",
                source=dict(repo="example/tiny-hf", filename="model.safetensors"), config=dict(CFG))
    (cards / "tiny.yaml").write_text(yaml.safe_dump(card))
    monkeypatch.setenv("TOKZOO_ZOO_PATH", str(cards))
    monkeypatch.setenv("TOKZOO_CACHE", str(tmp_path / "cache"))
    state = transformers_state(1)
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    convert_card(get_card("wavtokenizer-tiny-hf-test"), checkpoint=path)
    model = load_tokenizer("wavtokenizer-tiny-hf-test")
    direct = load_wavtokenizer_state_dict(WavTokenizer(config), state, "direct").eval()
    wav = torch.randn(1, 30)
    with torch.no_grad():
        assert torch.equal(model.encode(wav), direct.encode(wav))


def test_transformers_layout_off_the_released_values_loads_strictly():
    """Every config.json field the mapping reads moved off its released value (16 kHz, 3 stages, 2
    residual units per stage so the encoder's layer indices shift, 1 LSTM layer, 2 conditions, 16
    GroupNorm groups): transformers' key list and config.json for it (tests/assets, written by
    transformers' save_pretrained) convert strictly."""
    import json
    from pathlib import Path

    from audiotok.models.wavtokenizer.convert import config_from_transformers

    layout = json.loads((Path(__file__).parents[1] / "assets/wavtokenizer_transformers_layout_varied.json").read_text())
    expected = WavTokenizerConfig(sample_rate=16000, strides=[2, 3, 5], n_filters=4, residual_layers=2, lstm_layers=1,
                                  dim=16, codebook_size=32, decoder_dim=32, decoder_intermediate_dim=48,
                                  decoder_layers=2, num_conditions=2, norm_groups=16, n_fft=120)
    config = config_from_transformers(layout["config_json"])
    assert config.to_dict() == expected.to_dict()
    gen = torch.Generator().manual_seed(3)
    state = {k: torch.randn(shape, generator=gen) * 0.3 for k, shape in layout["keys"].items()}
    state["encoder_model.quantizer.codebook.inited"] = torch.ones(1)
    state["encoder_model.quantizer.codebook.cluster_size"] = torch.rand(32, generator=gen) + 0.5
    inferred = infer_config(state).to_dict()
    assert {k: v for k, v in inferred.items() if k not in ("sample_rate", "norm_groups")} == \
        {k: v for k, v in expected.to_dict().items() if k not in ("sample_rate", "norm_groups")}
    model = load_wavtokenizer_state_dict(WavTokenizer(config), state, "transformers layout, varied").eval()
    assert torch.equal(model.encoder.stages[2].res[1].conv1.conv.parametrizations.weight.original1,
                       state["encoder_model.encoder.layers.10.block.1.conv.parametrizations.weight.original1"])
    with torch.no_grad():
        assert model.decode(model.encode(torch.randn(1, 61))).shape == (1, 90)
