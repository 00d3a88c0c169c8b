"""EnCodec model: released sizes, shapes and token counts, level / bandwidth selection, decoding the
first k levels, exact batched encoding of unequal lengths, segments and their scales, training
forward, errors, save/load."""
import pytest
import torch

from audiotok.dsp import resample
from audiotok.models.encodec import PAD_ID, EnCodec, EnCodecConfig
from vistok.registry import get_family


def tiny_config(kind="causal", **overrides):
    """hop 6, 8-d codes, 16-entry codebooks, 4 levels at 4 kbps each: milliseconds per call.

    ``causal``: like the 24 kHz release (mono, causal, weight norm, unsegmented). ``segmented``:
    like the 48 kHz one (stereo, non-causal, time group norm, normalised 60-sample segments starting
    every 48 samples, 10 tokens per full segment)."""
    cfg = dict(sample_rate=6000, strides=[2, 3], n_filters=4, dim=8, codebook_size=16, lstm_layers=1,
               kmeans_iters=5, target_bandwidths=[4.0, 8.0, 16.0])
    if kind == "segmented":
        cfg.update(channels=2, causal=False, norm="time_group_norm", normalize=True, segment=0.01, overlap=0.2)
    cfg.update(overrides)
    return EnCodecConfig(**cfg)


@torch.no_grad()
def spread_codebooks(model, seed=0):
    """Each level's codes drawn around what the previous levels leave of the encoder's output on noise,
    so ids vary (a fresh codebook is all zeros)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4, model.config.channels, 600, generator=gen)
    z, _ = model.encoder(x)
    residual = z.transpose(1, 2).reshape(-1, z.shape[1])
    for q in model.quantizer.quantizers:
        pick = torch.randint(0, residual.shape[0], (q.codebook_size,), generator=gen)
        q.embed.copy_(residual[pick] + 0.01 * torch.randn(q.embed.shape, generator=gen))
        q.embed_avg.copy_(q.embed)
        q.initted.fill_(True)
        residual = residual - q.embed[torch.cdist(residual, q.embed).argmin(-1)]
    return model


def tiny_model(kind="causal", seed=0, **overrides):
    torch.manual_seed(seed)
    return spread_codebooks(EnCodec(tiny_config(kind, **overrides)), seed).eval()


def _wav(model, batch, samples, seed=0):
    x = torch.randn(batch, model.config.channels, samples, generator=torch.Generator().manual_seed(seed)) * 0.3
    return x[:, 0] if model.config.channels == 1 else x


@pytest.mark.parametrize("preset,params,rate,levels,bandwidths", [
    ("24khz", 14_851_810, 75, 32, {1.5: 2, 3.0: 4, 6.0: 8, 12.0: 16, 24.0: 32}),
    ("48khz", 14_856_294, 150, 16, {3.0: 2, 6.0: 4, 12.0: 8, 24.0: 16}),
])
def test_released_configs_build_at_full_size(preset, params, rate, levels, bandwidths):
    cfg = EnCodecConfig.preset(preset)
    with torch.device("meta"):
        model = EnCodec(cfg)
    assert sum(p.numel() for p in model.parameters()) == params  # as the official modules count them
    assert model.token_rate == rate and model.hop_length == 320 and model.num_codebooks == levels
    assert model.codebook_size == 1024 and model.config.dim == 128 and model.bandwidths == bandwidths
    assert model.family == "encodec" and model.modality == "audio" and model.num_tokens is None
    assert model.token_quantizer() is model.quantizer and not model.quantizer.quantizers[0].embed.requires_grad
    q = model.quantizer.quantizers[0]
    assert (q.ema_decay, q.dead_code_threshold, q.kmeans_init, q.kmeans_iters) == (0.99, 2.0, True, 50)
    if preset == "48khz":
        assert (cfg.segment_length, cfg.segment_stride, cfg.segment_tokens) == (48000, 47520, 150)
        assert model.encoder.stem.norm is not None and model.decoder.stages[0].up.norm is not None


@pytest.mark.parametrize("samples,tokens", [(60, 10), (61, 11), (5, 1)])
def test_unsegmented_shapes_and_token_counts(samples, tokens):
    model = tiny_model()
    x = _wav(model, 3, samples)
    with torch.no_grad():
        ids = model.encode(x)
        assert ids.shape == (3, 4, tokens) and ids.dtype == torch.int64
        assert 0 <= int(ids.min()) and int(ids.max()) < 16
        assert torch.equal(model.encode(x[:, None]), ids)  # (B, 1, T) too
        assert model.decode(ids).shape == (3, tokens * 6)
        assert model(x).recon.shape == (3, samples)
        assert model.encode(x[0]).shape == (1, 4, tokens)  # (T,) is one item


def test_the_spread_codebooks_are_used_on_every_level():
    model = tiny_model()
    with torch.no_grad():
        ids = model.encode(_wav(model, 2, 300))
    assert all(len(ids[:, q].unique()) > 3 for q in range(4))


def test_segmented_stereo_shapes():
    model = tiny_model("segmented")
    cfg = model.config
    assert (cfg.segment_length, cfg.segment_stride, cfg.segment_tokens) == (60, 48, 10)
    for samples, segments in [(30, [5]), (60, [10, 2]), (130, [10, 10, 6])]:
        x = _wav(model, 2, samples)
        with torch.no_grad():
            codes = model.encode_with_scales(x)
            wav = model.decode(*codes)
            out = model(x)
        assert codes.ids.shape == (2, 4, sum(segments)) and codes.scales.shape == (2, len(segments))
        assert codes.lengths.tolist() == [samples, samples]
        assert wav.shape == (2, 2, 48 * (len(segments) - 1) + 6 * segments[-1])
        assert out.recon.shape == (2, 2, samples) and out.indices.shape == codes.ids.shape
        assert torch.equal(out.indices, codes.ids)
        torch.testing.assert_close(out.recon, wav[..., :samples], rtol=0, atol=1e-5)


def test_levels_from_num_quantizers_or_bandwidth():
    model = tiny_model()
    x = _wav(model, 2, 90)
    assert model.bandwidths == {4.0: 1, 8.0: 2, 16.0: 4}
    with torch.no_grad():
        full = model.encode(x)
        for bandwidth, levels in model.bandwidths.items():
            ids = model.encode(x, bandwidth=bandwidth)
            assert ids.shape[1] == levels
            assert torch.equal(ids, model.encode(x, num_quantizers=levels))
            assert torch.equal(ids, full[:, :levels])  # residual levels: a prefix of the full code
        assert model.encode(x, num_quantizers=3).shape[1] == 3  # any level count, not only a target


def test_decode_accepts_the_first_k_levels():
    model = tiny_model()
    x = _wav(model, 2, 90)
    with torch.no_grad():
        ids = model.encode(x)
        errors = []
        for k in range(1, 5):
            wav = model.decode(ids[:, :k])
            assert wav.shape == (2, 90)
            torch.testing.assert_close(wav, model.decode(model.encode(x, num_quantizers=k)), rtol=0, atol=0)
            errors.append(float((wav - model.decode(ids)).abs().mean()))
        latent = model.ids_to_latent(ids[:, :2])
        expected = sum(model.quantizer.quantizers[q].decode_indices(ids[:, q]) for q in range(2)).transpose(1, 2)
        torch.testing.assert_close(latent, expected)
    assert errors[-1] == 0 and errors[0] > 0


@pytest.mark.parametrize("kind", ["causal", "segmented"])
def test_batched_encode_of_unequal_lengths_equals_each_item_alone(kind):
    model = tiny_model(kind)
    lengths = [130, 61, 50, 5, 1] if kind == "segmented" else [100, 37, 5, 1]
    clips = [_wav(model, 1, n, seed=i)[0] for i, n in enumerate(lengths)]
    batch = torch.zeros(len(lengths), *clips[0].shape[:-1], max(lengths))
    for i, clip in enumerate(clips):
        batch[i, ..., : clip.shape[-1]] = clip
    with torch.no_grad():
        codes = model.encode_with_scales(batch, lengths=torch.tensor(lengths))
        assert torch.equal(codes.ids, model.encode(batch, lengths=lengths))
        wav = model.decode(*codes)
        for i, clip in enumerate(clips):
            alone = model.encode_with_scales(clip[None])
            n = alone.ids.shape[-1]
            assert torch.equal(codes.ids[i, :, :n], alone.ids[0]), i
            assert (codes.ids[i, :, n:] == PAD_ID).all()
            if kind == "segmented":
                segments = alone.scales.shape[1]
                torch.testing.assert_close(codes.scales[i, :segments], alone.scales[0], rtol=1e-6, atol=0)
                assert (codes.scales[i, segments:] == 1).all()
            single = model.decode(*alone)[0]
            torch.testing.assert_close(wav[i, ..., : single.shape[-1]], single, rtol=0, atol=1e-5)
            assert not wav[i, ..., single.shape[-1]:].any()
        assert model.token_lengths(codes.ids).tolist() == [model.encode(c[None]).shape[-1] for c in clips]


def test_scales_carry_the_loudness():
    model = tiny_model("segmented")
    x = _wav(model, 1, 130)
    with torch.no_grad():
        loud, quiet = model.encode_with_scales(x), model.encode_with_scales(x * 0.01)
        assert torch.equal(loud.ids, quiet.ids)  # each segment is normalised before encoding
        torch.testing.assert_close(quiet.scales, loud.scales * 0.01, rtol=1e-4, atol=0)
        torch.testing.assert_close(model.decode(*quiet), model.decode(*loud) * 0.01, rtol=1e-4, atol=1e-7)
        plain = model.decode(loud.ids)  # no scales: every segment at unit scale
        torch.testing.assert_close(model.decode(loud.ids, loud.scales), model.decode(*loud))
    assert plain.shape == model.decode(*loud).shape and not torch.allclose(plain, model.decode(*loud))
    assert tiny_model().encode_with_scales(torch.randn(1, 60)).scales is None  # no normalisation, no scales


def test_lengths_reproduce_a_short_last_but_one_segment():
    """Just past a segment start, the last-but-one segment is short (here 50 of 60 samples, 9 tokens):
    the regular split of the ids (every 10 tokens) differs, ``lengths`` follows the encoder."""
    model = tiny_model("segmented")
    x = _wav(model, 1, 50)
    with torch.no_grad():
        codes = model.encode_with_scales(x)
        assert codes.ids.shape[-1] == 9 + 1 and codes.scales.shape == (1, 2)
        exact = model.decode(*codes)
        regular = model.decode(codes.ids, codes.scales)
    assert exact.shape[-1] == 48 + 6 and regular.shape[-1] == 60
    torch.testing.assert_close(model(x).recon, exact[..., :50], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="lengths"):
        model.decode(codes.ids, codes.scales, torch.tensor([200]))


def test_input_at_another_rate_is_resampled_unless_refused():
    model = tiny_model()
    x = torch.randn(2, 160)
    with torch.no_grad():
        ids = model.encode(x, sample_rate=8000)
        assert torch.equal(ids, model.encode(resample(x, 8000, 6000)))
        padded = model.encode(x, sample_rate=8000, lengths=torch.tensor([160, 80]))
    assert torch.equal(padded[0], ids[0]) and model.token_lengths(padded).tolist() == [20, 10]
    with pytest.raises(ValueError, match="sample_rate 8000 .*resample=False"):
        model.encode(x, sample_rate=8000, resample=False)
    assert model.encode(x, sample_rate=6000, resample=False).shape == (2, 4, 27)


def test_training_forward_initialises_codebooks_and_carries_gradients():
    torch.manual_seed(0)
    model = EnCodec(tiny_config()).train()
    assert not any(bool(q.initted) for q in model.quantizer.quantizers)
    x = torch.randn(4, 120)
    out = model(x)
    assert all(bool(q.initted) for q in model.quantizer.quantizers)
    assert out.recon.shape == (4, 120) and out.indices.shape == (4, 4, 20) and out.latent.shape == (4, 8, 20)
    assert torch.isfinite(out.loss) and out.loss > 0 and "level0/commitment" in out.stats
    (out.recon.square().mean() + out.loss).backward()
    assert model.encoder.stem.conv.parametrizations.weight.original1.grad.abs().sum() > 0
    assert model.decoder.proj.conv.bias.grad.abs().sum() > 0
    with torch.no_grad():  # the loss is the mean over levels of the commitment loss
        mean = sum(float(out.stats[f"level{i}/commitment"]) for i in range(4)) / 4
    assert float(out.loss.detach()) == pytest.approx(mean, rel=1e-5)


def test_quantizer_dropout_and_fixed_levels_in_training():
    torch.manual_seed(0)
    model = spread_codebooks(EnCodec(tiny_config(quantizer_dropout=True))).train()
    x = torch.randn(2, 60)
    used = {int((model(x).indices[0, :, 0] >= 0).sum()) for _ in range(30)}
    assert len(used) > 1 and used <= {1, 2, 3, 4}
    assert (model(x, bandwidth=8.0).indices[:, 2:] == -1).all()


def test_segmented_training_forward():
    torch.manual_seed(0)
    model = EnCodec(tiny_config("segmented")).train()
    out = model(torch.randn(2, 2, 100))
    assert out.recon.shape == (2, 2, 100) and out.indices.shape == (2, 4, 20) and torch.isfinite(out.loss)
    assert float(out.stats["segments"]) == 3  # starts 0, 48, 96
    out.loss.backward()


def test_encode_never_updates_the_codebooks():
    model = tiny_model().train()
    before = {k: v.clone() for k, v in model.quantizer.state_dict().items()}
    with torch.no_grad():
        model.encode(torch.randn(2, 120))
    assert model.quantizer.training
    assert all(torch.equal(before[k], v) for k, v in model.quantizer.state_dict().items())


def test_bad_input_is_named():
    model = tiny_model()
    stereo = tiny_model("segmented")
    x = torch.randn(1, 60)
    with pytest.raises(ValueError, match="bandwidth must be one of \\[4.0, 8.0, 16.0\\] kbps"):
        model.encode(x, bandwidth=6.0)
    with pytest.raises(ValueError, match="num_quantizers must be an integer in 1..4"):
        model.encode(x, num_quantizers=5)
    with pytest.raises(ValueError, match="num_quantizers must be"):
        model.encode(x, num_quantizers=0)
    with pytest.raises(ValueError, match="num_quantizers or bandwidth, not both"):
        model.encode(x, num_quantizers=1, bandwidth=4.0)
    with pytest.raises(TypeError, match="floating-point"):
        model.encode(torch.zeros(1, 60, dtype=torch.long))
    with pytest.raises(ValueError, match="mono"):
        model.encode(torch.randn(1, 2, 60))
    with pytest.raises(ValueError, match=r"\(B, 2, T\) for this 2-channel model"):
        stereo.encode(x)
    with pytest.raises(ValueError, match="NaN"):
        model.encode(torch.full((1, 60), float("nan")))
    with pytest.raises(ValueError, match="lengths must be in 1..60"):
        model.encode(x, lengths=[61])
    ids = model.encode(torch.randn(2, 60))
    with pytest.raises(ValueError, match=r"ids must be \(B, Q, L\)"):
        model.decode(ids[:, 0])
    with pytest.raises(ValueError, match="levels"):
        model.decode(torch.cat([ids, ids[:, :1]], 1))
    with pytest.raises(ValueError, match="0..15"):
        model.decode(ids + 16)
    with pytest.raises(ValueError, match="trailing padding"):
        model.decode(ids.index_fill(-1, torch.tensor([0]), PAD_ID))
    with pytest.raises(TypeError, match="integer"):
        model.decode(ids.float())
    codes = stereo.encode_with_scales(torch.randn(1, 2, 130))
    with pytest.raises(ValueError, match="scales must be"):
        stereo.decode(codes.ids, codes.scales[:, :1])
    with pytest.raises(ValueError, match="norm='time_group_norm'.*causal"):
        tiny_config(norm="time_group_norm")
    with pytest.raises(ValueError, match="norm must be one of"):
        tiny_config(norm="batch_norm")
    with pytest.raises(ValueError, match="needs 4 levels, num_quantizers is 2"):
        tiny_config(num_quantizers=2)
    with pytest.raises(ValueError, match="preset must be one of"):
        EnCodecConfig.preset("32khz")


def test_save_and_load_pretrained(tmp_path):
    for kind in ("causal", "segmented"):
        model = tiny_model(kind)
        model.save_pretrained(tmp_path / kind)
        again = EnCodec.from_pretrained(tmp_path / kind).eval()
        assert again.config.to_dict() == model.config.to_dict()
        x = _wav(model, 2, 70)
        with torch.no_grad():
            assert torch.equal(again.encode(x), model.encode(x))


def test_the_family_is_registered():
    family = get_family("encodec")
    assert family.model_class() is EnCodec and family.modality == "audio" and family.objective == "audio"
    model = family.build(tiny_config().to_dict())
    assert isinstance(model, EnCodec) and model.config.num_quantizers == 4


def test_the_audio_objective_trains_it():
    """The engine's audio objective calls model(x) on (B, T) batches and reads recon, loss and stats."""
    import contextlib

    from audiotok.objective import AudioObjective
    from vistok.engine.recipe import load_recipe

    recipe = load_recipe(None, ["model.family=encodec", "loss.kind=audio", "data.kind=audio"])
    objective = AudioObjective(recipe, "cpu")
    torch.manual_seed(0)
    model = EnCodec(tiny_config(sample_rate=24000, target_bandwidths=[16.0, 32.0, 64.0])).train()
    step = objective.generator_step(model, torch.randn(2, 1, 4800) * 0.1, 0, contextlib.nullcontext)
    assert torch.isfinite(step.total) and {"loss/mel", "loss/quantizer"} <= set(step.terms)
    step.total.backward()
    assert model.encoder.stem.conv.bias.grad is not None
