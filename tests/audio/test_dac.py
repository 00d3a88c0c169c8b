"""DAC model: released sizes, shapes and token counts, level selection, decoding the first k levels,
exact batched encoding of unequal lengths, the factorised quantizer, training forward (losses,
quantizer dropout), errors, save/load, registration and the audio objective."""
import pytest
import torch

from audiotok.dsp import resample
from audiotok.models.dac import DAC, PAD_ID, DACConfig
from vistok.registry import get_family


def tiny_config(**overrides):
    """hop 6 (strides 2-3; the decoder's stride-3 transposed conv loses samples, as the 16 / 24 kHz
    releases' stride 5 does), a 16-d latent, 4 levels of 16 codes of dimension 4."""
    cfg = dict(sample_rate=1200, encoder_dim=4, encoder_rates=[2, 3], decoder_dim=16, decoder_rates=[3, 2],
               num_quantizers=4, codebook_size=16, codebook_dim=4)
    cfg.update(overrides)
    return DACConfig(**cfg)


@torch.no_grad()
def perturb(model, seed=0):
    """Seeded non-identity Snake alphas and biases (a fresh model has alpha 1 and zero biases)."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith("alpha"):
            p.mul_(torch.exp(0.3 * torch.randn(p.shape, generator=gen)))
        elif name.endswith("bias"):
            p.add_(0.02 * torch.randn(p.shape, generator=gen))
    return model


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return perturb(DAC(tiny_config(**overrides)), seed).eval()


def _wav(batch, samples, seed=0):
    return torch.randn(batch, samples, generator=torch.Generator().manual_seed(seed)) * 0.3


@pytest.mark.parametrize("preset,params,hop,rate,levels,kbps", [
    ("16khz", 74_175_906, 320, 50.0, 12, 6.0),
    ("24khz", 74_708_706, 320, 75.0, 32, 24.0),
    ("44khz", 76_651_890, 512, 44100 / 512, 9, 9 * 10 * 44100 / 512 / 1000),
])
def test_released_configs_build_at_full_size(preset, params, hop, rate, levels, kbps):
    cfg = DACConfig.preset(preset)
    with torch.device("meta"):
        model = DAC(cfg)
    assert sum(p.numel() for p in model.parameters()) == params  # as the official modules count them
    assert model.hop_length == hop and model.token_rate == pytest.approx(rate) and model.num_codebooks == levels
    assert cfg.kbps == pytest.approx(kbps) and cfg.latent_dim == 1024 and cfg.codebook_dim == 8
    assert model.codebook_size == 1024 and model.family == "dac" and model.modality == "audio"
    assert model.num_tokens is None and model.token_quantizer() is model.quantizer and model.channels == 1
    assert len(model.quantizer.levels) == levels and model.quantizer.levels[0].codebook.weight.shape == (1024, 8)
    assert (cfg.commitment_weight, cfg.codebook_weight, cfg.quantizer_dropout) == (0.25, 1.0, 0.0)


@pytest.mark.parametrize("samples,tokens", [(60, 10), (61, 11), (5, 1), (6, 1)])
def test_shapes_and_token_counts(samples, tokens):
    model = tiny_model()
    x = _wav(3, samples)
    with torch.no_grad():
        ids = model.encode(x)
        assert ids.shape == (3, 4, tokens) and ids.dtype == torch.int64
        assert 0 <= int(ids.min()) and int(ids.max()) < 16
        assert torch.equal(model.encode(x[:, None]), ids)  # (B, 1, T) too
        assert model.encode(x[0]).shape == (1, 4, tokens)  # (T,) is one item
        wav = model.decode(ids)
        assert wav.shape == (3, tokens * 6)
        # the decoder makes 6 L - 2 samples (stride-3 transposed conv); the rest is zero
        assert model.decoder.output_length(tokens) == tokens * 6 - 2 and not wav[:, -2:].any()
        out = model(x)
        assert out.recon.shape == (3, samples) and out.indices.shape == ids.shape


def test_codes_vary_on_every_level():
    model = tiny_model()
    with torch.no_grad():
        ids = model.encode(_wav(2, 600))
    assert all(len(ids[:, q].unique()) > 3 for q in range(4))


def test_levels_from_num_quantizers():
    model = tiny_model()
    x = _wav(2, 90)
    with torch.no_grad():
        full = model.encode(x)
        for k in range(1, 5):
            ids = model.encode(x, num_quantizers=k)
            assert ids.shape[1] == k and torch.equal(ids, full[:, :k])  # residual levels: a prefix


def test_decode_accepts_the_first_k_levels():
    model = tiny_model()
    x = _wav(2, 90)
    with torch.no_grad():
        ids = model.encode(x)
        outs = [model.decode(ids[:, :k]) for k in range(1, 5)]
        for k, wav in enumerate(outs, 1):
            assert wav.shape == (2, 90)
            assert torch.equal(wav, model.decode(model.encode(x, num_quantizers=k)))
        latent = model.ids_to_latent(ids[:, :2])
        expected = sum(model.quantizer.levels[q].out_proj(model.quantizer.levels[q].lookup(ids[:, q]))
                       for q in range(2))
        torch.testing.assert_close(latent, expected)
    assert not torch.allclose(outs[0], outs[-1])


def test_decode_of_encode_is_the_eval_forward():
    model = tiny_model()
    x = _wav(2, 61)
    with torch.no_grad():
        out = model(x)
        assert torch.equal(out.indices, model.encode(x))
        torch.testing.assert_close(out.recon, model.decode(out.indices)[:, :61], rtol=0, atol=1e-6)


def test_batched_encode_of_unequal_lengths_equals_each_item_alone():
    model = tiny_model()
    lengths = [100, 37, 36, 5, 1]
    clips = [_wav(1, n, seed=i)[0] for i, n in enumerate(lengths)]
    batch = torch.randn(len(lengths), max(lengths))  # garbage past each item's end is ignored
    for i, clip in enumerate(clips):
        batch[i, : len(clip)] = clip
    with torch.no_grad():
        ids = model.encode(batch, lengths=torch.tensor(lengths))
        assert ids.shape == (5, 4, 17)
        wav = model.decode(ids)
        for i, clip in enumerate(clips):
            alone = model.encode(clip[None])
            n = alone.shape[-1]
            assert torch.equal(ids[i, :, :n], alone[0]), i
            assert (ids[i, :, n:] == PAD_ID).all()
            single = model.decode(alone)[0]
            # items of one token count decode together: equal up to the rounding of batch composition
            torch.testing.assert_close(wav[i, : single.shape[-1]], single, rtol=0, atol=1e-6)
            assert not wav[i, single.shape[-1]:].any()
        assert model.token_lengths(ids).tolist() == [17, 7, 6, 1, 1]
        assert torch.equal(model.encode(batch, lengths=[100] * 5), model.encode(batch))  # all full: one batch


def test_input_at_another_rate_is_resampled_unless_refused():
    model = tiny_model()
    x = _wav(2, 160)
    with torch.no_grad():
        ids = model.encode(x, sample_rate=2400)
        assert torch.equal(ids, model.encode(resample(x, 2400, 1200)))
        padded = model.encode(x, sample_rate=2400, lengths=torch.tensor([160, 80]))
    assert torch.equal(padded[0], ids[0]) and model.token_lengths(padded).tolist() == [14, 7]
    with pytest.raises(ValueError, match="sample_rate 2400 .*resample=False"):
        model.encode(x, sample_rate=2400, resample=False)


def test_the_quantizer_searches_by_cosine_and_returns_raw_codes():
    model = tiny_model()
    level = model.quantizer.levels[0]
    z = torch.randn(2, 16, 9)
    with torch.no_grad():
        z_e = level.in_proj(z)
        idx = level.search(z_e)
        cos = torch.nn.functional.normalize(z_e.transpose(1, 2), dim=-1) @ \
            torch.nn.functional.normalize(level.codebook.weight, dim=-1).t()
        assert torch.equal(idx, cos.argmax(-1))
        value, codes, commit, book = level(z)
        assert torch.equal(codes, idx)
        torch.testing.assert_close(value, level.out_proj(level.lookup(idx)))  # the raw (unnormalised) code
        level.codebook.weight.mul_(3.0)  # scaling the codebook keeps the ids (a cosine search)
        assert torch.equal(level.search(z_e), idx)
    assert commit.shape == book.shape == (2,)


def test_pfid_view_reproduces_encode_and_nearby_codes_start_with_the_own_code():
    model = tiny_model()
    x = _wav(2, 60)
    with torch.no_grad():
        z = model.quantizer_input(x)
        out = model.token_quantizer()(z)
        assert torch.equal(model.ids_from_quantizer(out.indices), model.encode(x))
        near = model.quantizer.nearby_indices(z, out.indices, 3)
    assert near.shape == (2, 10, 4, 3) and torch.equal(near[..., 0], out.indices)


def test_training_forward_losses_and_gradients():
    torch.manual_seed(0)
    model = perturb(DAC(tiny_config())).train()
    x = _wav(4, 120)
    out = model(x)
    assert out.recon.shape == (4, 120) and out.indices.shape == (4, 4, 20) and out.latent.shape == (4, 16, 20)
    assert {"commitment", "codebook", "active_levels"} <= set(out.stats) and float(out.stats["active_levels"]) == 4
    assert float(out.loss.detach()) == pytest.approx(0.25 * out.stats["commitment"] + out.stats["codebook"], rel=1e-5)
    (out.recon.square().mean() + out.loss).backward()
    assert model.encoder.stem.parametrizations.weight.original1.grad.abs().sum() > 0
    assert model.decoder.proj.bias.grad.abs().sum() > 0
    assert model.quantizer.levels[3].codebook.weight.grad.abs().sum() > 0  # the codebook loss trains it
    assert model.encoder.blocks[0].res[0].act1.alpha.grad is not None


def test_quantizer_dropout_in_training():
    torch.manual_seed(0)
    model = perturb(DAC(tiny_config(quantizer_dropout=0.5))).train()
    x = _wav(4, 60)
    seen = set()
    for _ in range(20):
        ids = model(x).indices
        used = (ids[:, :, 0] >= 0).sum(1)
        assert (used[2:] == 4).all()  # only the first int(B * 0.5) items drop levels
        seen.update(used[:2].tolist())
    assert len(seen) > 1 and seen <= {1, 2, 3, 4}
    fixed = model(x, num_quantizers=2).indices  # a fixed count: no dropout, the rest -1
    assert (fixed[:, 2:] == -1).all() and (fixed[:, :2] >= 0).all()
    with torch.no_grad():
        assert torch.equal(model.encode(x), model.eval().encode(x))  # encode never drops levels


def test_bad_input_is_named():
    model = tiny_model()
    x = _wav(1, 60)
    with pytest.raises(ValueError, match="num_quantizers must be an integer in 1..4"):
        model.encode(x, num_quantizers=5)
    with pytest.raises(ValueError, match="num_quantizers must be"):
        model.encode(x, num_quantizers=0)
    with pytest.raises(TypeError, match="floating-point"):
        model.encode(torch.zeros(1, 60, dtype=torch.long))
    with pytest.raises(ValueError, match="mono"):
        model.encode(torch.randn(1, 2, 60))
    with pytest.raises(ValueError, match="NaN"):
        model.encode(torch.full((1, 60), float("nan")))
    with pytest.raises(ValueError, match="lengths must be in 1..60"):
        model.encode(x, lengths=[61])
    with pytest.raises(ValueError, match="lengths has 2 entries"):
        model.encode(x, lengths=[60, 30])
    ids = model.encode(_wav(2, 60))
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
    with pytest.raises(ValueError, match="decoder_rates .* must upsample by the encoder's hop 6"):
        tiny_config(decoder_rates=[2, 2])
    with pytest.raises(ValueError, match="quantizer_dropout must be a fraction"):
        tiny_config(quantizer_dropout=1.5)
    with pytest.raises(ValueError, match=r"decoder_dim must be a positive multiple of 2 \*\* len\(decoder_rates\) = 4, got 18"):
        tiny_config(decoder_dim=18)
    with pytest.raises(ValueError, match="encoder_rates must be a non-empty list"):
        tiny_config(encoder_rates=[], decoder_rates=[])
    with pytest.raises(ValueError, match="preset must be one of"):
        DACConfig.preset("48khz")
    with pytest.raises(ValueError, match="num_levels must be in 1..4"):
        model.quantizer(torch.randn(1, 3, 16), num_levels=7)


def test_save_and_load_pretrained(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path / "dac")
    again = DAC.from_pretrained(tmp_path / "dac").eval()
    assert again.config.to_dict() == model.config.to_dict()
    x = _wav(2, 70)
    with torch.no_grad():
        assert torch.equal(again.encode(x), model.encode(x))
        assert torch.equal(again.decode(model.encode(x)), model.decode(model.encode(x)))


def test_the_family_is_registered():
    family = get_family("dac")
    assert family.model_class() is DAC and family.modality == "audio" and family.objective == "audio"
    model = family.build(tiny_config().to_dict())
    assert isinstance(model, DAC) and model.config.num_quantizers == 4


def test_the_audio_objective_trains_it():
    """The engine's audio objective calls model(x) on (B, T) batches and reads recon, loss and stats."""
    import contextlib

    from audiotok.objective import AudioObjective
    from vistok.engine.recipe import load_recipe

    recipe = load_recipe(None, ["model.family=dac", "loss.kind=audio", "data.kind=audio"])
    objective = AudioObjective(recipe, "cpu")
    torch.manual_seed(0)
    model = DAC(tiny_config(sample_rate=24000, encoder_rates=[4, 5], decoder_rates=[5, 4])).train()
    step = objective.generator_step(model, torch.randn(2, 1, 4801) * 0.1, 0, contextlib.nullcontext)
    assert torch.isfinite(step.total) and {"loss/mel", "loss/quantizer"} <= set(step.terms)
    step.total.backward()
    assert model.encoder.stem.bias.grad is not None
