"""FlexTok model: the block-causal encoder, nested dropout, prefix decoding, sampling, training."""
import collections

import pytest
import torch

from vistok.models.flextok import FlexTok, FlexTokConfig
from vistok.models.flextok.encoder import block_causal_mask
from vistok.models.flextok.training import sample_keep_k, sample_timesteps

# 256 registers as released (so k = 1, 7, 256 is the real range) on a tiny grid and tiny widths.
TINY = dict(image_size=16, num_registers=256, encoder_dim=32, encoder_depth=2, decoder_dim=32, decoder_depth=2,
            head_dim=16, vae=dict(image_size=16, latent_channels=4, block_out_channels=[32, 32], layers_per_block=1,
                                  scaling_factor=0.7, sample_posterior=False))


def tiny_config(**changes) -> FlexTokConfig:
    return FlexTokConfig(**{**TINY, **changes})


def tiny_model(seed: int = 0, **changes) -> FlexTok:
    torch.manual_seed(seed)
    model = FlexTok(tiny_config(**changes)).eval()
    with torch.no_grad():  # the release zero-initialises heads and adaLN: give them weights that matter
        for name, p in model.named_parameters():
            if not name.startswith("vae.") and p.abs().max() == 0:
                p.normal_(0, 0.1)
        model.encoder.head.weight.mul_(20)
    return model


def images(n: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_block_causal_mask_pattern():
    mask = block_causal_mask(3, 4, torch.device("cpu"))
    assert mask[:3, :3].all() and not mask[:3, 3:].any()  # patches: all patches, no register
    assert mask[3:, :3].all()  # registers see every patch
    assert torch.equal(mask[3:, 3:], torch.ones(4, 4, dtype=torch.bool).tril())  # and earlier registers only


@torch.no_grad()
def test_encoder_registers_are_causal_and_patches_ignore_registers():
    model = tiny_model()
    latents = torch.randn(2, 4, 8, 8)
    patch_out = {}
    hook = model.encoder.blocks[-1].register_forward_hook(lambda m, i, o: patch_out.__setitem__("x", o[:, :16]))
    before = model.encoder(latents)
    patches_before = patch_out["x"]
    j = 100
    model.encoder.registers[j:].add_(torch.randn_like(model.encoder.registers[j:]))
    after = model.encoder(latents)
    hook.remove()
    assert torch.equal(before[:, :j], after[:, :j])  # earlier registers: numerically unchanged
    assert (before[:, j:] - after[:, j:]).abs().amax(-1).min() > 0  # each later one changed
    assert torch.equal(patches_before, patch_out["x"])  # patches never attend to registers


@pytest.mark.parametrize("mode", ["uniform", "pow2", "uniform_pow2"])
def test_nested_dropout_k_follows_the_distribution(mode):
    n, draws = 256, 200_000
    k = sample_keep_k(draws, n, mode, torch.Generator().manual_seed(0))
    counts = collections.Counter(k.tolist())
    if mode == "uniform":
        expected = {v: 1 / n for v in range(1, n + 1)}
    elif mode == "pow2":
        expected = {2**i: 1 / 9 for i in range(9)}
    else:  # U{1..256} rounded up to a power of two: P(2^i) = (2^i - 2^(i-1)) / 256, P(1) = 1/256
        expected = {1: 1 / n, **{2**i: 2 ** (i - 1) / n for i in range(1, 9)}}
    assert set(counts) == set(expected)
    for value, p in expected.items():
        sd = (p * (1 - p) / draws) ** 0.5
        assert abs(counts[value] / draws - p) < 5 * sd, (value, counts[value] / draws, p)


def test_model_draws_keep_k_from_its_config():
    model = tiny_model(nested_dropout="pow2")
    k = model.sample_keep_k(1000, torch.Generator().manual_seed(3))
    assert set(k.tolist()) <= {2**i for i in range(9)} and k.dtype == torch.long


@torch.no_grad()
def test_decoding_k_tokens_uses_only_the_first_k():
    model = tiny_model()
    ids = model.encode(images(2))
    assert ids.shape == (2, 256) and ids.dtype == torch.long and ids.unique().numel() > 20
    other = ids.clone()
    other[:, 7:] = torch.randint(0, 64000, other[:, 7:].shape)
    noise = torch.randn(2, 4, 8, 8)
    kw = dict(steps=3, guidance=2.5, apg=True, noise=noise)
    prefix = model.decode(ids[:, :7], **kw)
    assert torch.allclose(prefix, model.decode(other, num_tokens=7, **kw), atol=1e-6)
    assert not torch.allclose(prefix, model.decode(ids, **kw), atol=1e-3)  # the other tokens do matter
    assert not torch.allclose(prefix, model.decode(ids[:, :6], **kw), atol=1e-3)


@torch.no_grad()
def test_one_batch_decodes_different_lengths():
    model = tiny_model()
    ids = model.encode(images(3))
    noise = torch.randn(3, 4, 8, 8)
    kw = dict(steps=2, guidance=3.0)
    mixed = model.decode(ids, num_tokens=torch.tensor([1, 7, 256]), noise=noise, **kw)
    for i, k in enumerate([1, 7, 256]):
        alone = model.decode(ids[i : i + 1, :k], noise=noise[i : i + 1], **kw)
        assert torch.allclose(mixed[i : i + 1], alone, atol=1e-5), k
    assert mixed.shape == (3, 3, 16, 16)


@torch.no_grad()
def test_sampling_is_deterministic_for_a_seed():
    model = tiny_model()
    ids = model.encode(images(2))[:, :16]
    a = model.decode(ids, steps=3, guidance=2.0, generator=torch.Generator().manual_seed(7))
    b = model.decode(ids, steps=3, guidance=2.0, generator=torch.Generator().manual_seed(7))
    c = model.decode(ids, steps=3, guidance=2.0, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.allclose(a, c, atol=1e-3)
    # the release's noise convention: one (1, C, h, w) draw per image, in batch order
    gen = torch.Generator().manual_seed(7)
    noise = torch.cat([torch.randn(1, 4, 8, 8, generator=gen) for _ in range(2)])
    assert torch.equal(a, model.decode(ids, steps=3, guidance=2.0, noise=noise))


@torch.no_grad()
def test_guidance_one_skips_the_unconditional_pass_and_matches_plain_sampling():
    model = tiny_model()
    ids = model.encode(images(1))
    calls = []
    hook = model.decoder.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    model.decode(ids, steps=2, guidance=1.0, apg=True, noise=torch.randn(1, 4, 8, 8))
    model.decode(ids, steps=2, guidance=2.0, noise=torch.randn(1, 4, 8, 8))
    hook.remove()
    assert calls == [1, 1, 2, 2]  # with guidance, cond and uncond share one batched pass


def test_flow_matching_loss_falls_on_tiny_data():
    model = tiny_model(seed=2).train()
    x = images(4, seed=5)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        latents = model.vae.encode(x)
    losses = []
    for step in range(40):
        t = torch.rand(4, generator=gen) * 0.8 + 0.1
        noise = torch.randn(latents.shape, generator=gen)
        loss, stats = model.flow_matching_loss(latents=latents, t=t, noise=noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert {"flow_loss", "t", "keep_k"} <= set(stats)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.6 * first, (first, last)
    assert all(p.grad is None for p in model.vae.parameters())  # the VAE stays frozen


def test_forward_gives_a_reconout_for_a_generic_engine():
    model = tiny_model().train()
    x = images(2)
    out = model(x)
    assert out.loss.requires_grad and out.loss.ndim == 0
    assert out.recon.shape == x.shape and not out.recon.requires_grad  # one-step estimate, for logging
    assert out.indices.shape == (2, 256) and out.latent.shape == (2, 256, 6)
    assert not model.vae.training  # frozen VAE stays in eval mode
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.recon.shape == x.shape and torch.isfinite(out.loss)


def test_fsq_noise_and_token_corruption_options():
    model = tiny_model(corrupt_tokens_p=1.0, apply_corrupt_tokens_p=1.0).train()
    z = model.encoder(torch.randn(2, 4, 8, 8))
    clean = model.quantize(z).indices
    _, ids = model._quantize(z)
    assert (ids != clean).float().mean() > 0.9  # everything corrupted (to random codes)
    model = tiny_model(fsq_drop_quant_p=1.0).train()
    z = model.encoder(torch.randn(2, 4, 8, 8))
    z_q, _ = model._quantize(z)
    assert torch.allclose(z_q, model.quantize.continuous(z.float()))  # rounding skipped
    assert z_q.requires_grad


def test_cfg_dropout_with_a_single_token_null_condition_trains():
    model = tiny_model(null_cond_single_token=True, cfg_dropout=0.5).train()
    quants = model.quantize.decode_indices(torch.randint(0, 64000, (4, 256)))
    null = torch.tensor([True, False, True, False])
    registers, present = model.decoder.condition(quants, torch.full((4,), 256), null)
    assert present[0, 0] and not present[0, 1:].any() and present[1].all()
    # a hidden register position cannot influence anything
    registers2 = registers.clone()
    registers2[0, 5:] += 1.0
    v_a = model.decoder(torch.zeros(4, 4, 8, 8), torch.full((4,), 0.5), registers, present)
    v_b = model.decoder(torch.zeros(4, 4, 8, 8), torch.full((4,), 0.5), registers2, present)
    assert torch.allclose(v_a[0], v_b[0], atol=1e-6)
    loss, _ = model.flow_matching_loss(x=images(4))
    loss.backward()


def test_repa_alignment_with_a_timm_backbone():
    from vistok.models.flextok.repa import RepaTeacher

    model = tiny_model(repa_layer=0, repa_weight=0.5, repa_dim=192).train()
    model._repa_teacher = RepaTeacher("vit_tiny_patch16_224", 32, pretrained=False)  # no download in tests
    loss, stats = model.flow_matching_loss(x=images(2))
    assert "repa_loss" in stats and 0 < stats["repa_loss"] <= 2
    loss.backward()
    assert model.decoder.repa_head.out_proj.weight.grad.abs().sum() > 0


def test_repa_without_weights_offline_says_what_to_do(monkeypatch):
    from vistok.models.flextok.repa import RepaTeacher

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match=r"REPA: cannot build the teacher 'vit_small_patch14_reg4_dinov2.*"
                                           r"repa_weight=0"):
        RepaTeacher("vit_small_patch14_reg4_dinov2.lvd142m", 224)


@torch.no_grad()
def test_save_and_load_round_trip(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path / "ft")
    loaded = FlexTok.from_pretrained(tmp_path / "ft")
    x = images(2)
    ids = model.encode(x)
    assert torch.equal(loaded.encode(x), ids)
    noise = torch.randn(2, 4, 8, 8)
    assert torch.equal(loaded.decode(ids[:, :5], steps=2, noise=noise), model.decode(ids[:, :5], steps=2, noise=noise))


@torch.no_grad()
def test_bf16_autocast_runs_and_keeps_fsq_in_fp32():
    model = tiny_model()
    x = images(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ids = model.encode(x)
        img = model.decode(ids[:, :8], steps=2, guidance=2.0, apg=True, generator=torch.Generator().manual_seed(0))
    assert ids.dtype == torch.long and torch.isfinite(img).all()
    assert (ids == model.encode(x)).float().mean() > 0.5  # same ids mostly (bf16 trunk, fp32 FSQ)


def test_bad_inputs_are_refused_clearly():
    model = tiny_model()
    with pytest.raises(ValueError, match="num_tokens must be in 1..256"):
        model.encode(images(1), num_tokens=300)
    with pytest.raises(TypeError, match="integer token ids"):
        model.decode(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"num_tokens must be in 1..4"):
        model.decode(torch.zeros(2, 4, dtype=torch.long), num_tokens=torch.tensor([1, 5]))
    with pytest.raises(ValueError, match="scaling_factor"):
        FlexTok(tiny_config(vae=dict(TINY["vae"], scaling_factor=None))).encode(images(1))
    with pytest.raises(ValueError, match="nested_dropout must be one of"):
        tiny_config(nested_dropout="exp")


def test_logit_normal_timesteps_are_the_sigmoid_of_a_standard_normal():
    n = 200_000
    t = sample_timesteps(n, "logit_normal", generator=torch.Generator().manual_seed(0)).double()
    assert bool(((t > 0) & (t < 1)).all())
    logit = torch.log(t) - torch.log1p(-t)
    # 5 sigma bounds: the mean's standard error is 1/sqrt(n); the std's is about 1/sqrt(2n)
    assert abs(logit.mean().item()) < 5 / n ** 0.5
    assert abs(logit.std().item() - 1) < 5 / (2 * n) ** 0.5
    assert abs((logit < 0).double().mean().item() - 0.5) < 5 * 0.5 / n ** 0.5  # median 1/2


@torch.no_grad()
def test_posterior_sample_with_one_generator_per_image():
    """``sample_posterior``: per-image generators give each image its own draw, whatever the batch,
    without touching the global RNG; one generator still draws as diffusers does."""
    model = tiny_model(vae=dict(TINY["vae"], sample_posterior=True))
    x = images(3)

    def gens(*seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    state = torch.get_rng_state()
    batch = model.vae.encode(x, generator=gens(1, 2, 3))
    singles = torch.cat([model.vae.encode(x[i : i + 1], generator=gens(s)) for i, s in enumerate((1, 2, 3))])
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(batch, singles, rtol=1e-5, atol=1e-5)  # the conv may block by batch
    mode = model.vae.encode(x, sample=False)
    assert (batch - mode).abs().mean() > 0.1  # it does sample
    dist = model.vae.autoencoder.encode(x * 2 - 1).latent_dist
    noise = torch.cat([torch.randn(1, 4, 8, 8, generator=g) for g in gens(1, 2, 3)])
    torch.testing.assert_close(batch, (dist.mean + dist.std * noise) * 0.7)
    ids = model.encode(x, generator=gens(1, 2, 3))
    assert torch.equal(ids, model.encode(x, generator=gens(1, 2, 3)))
    assert not torch.equal(ids, model.encode(x, generator=gens(4, 5, 6)))
    one = model.vae.encode(x, generator=torch.Generator().manual_seed(9))  # one generator: diffusers' draw
    torch.testing.assert_close(one, model.vae.encode(x, generator=torch.Generator().manual_seed(9)))
    with pytest.raises(ValueError, match="2 posterior generators for a batch of 3"):
        model.vae.encode(x, generator=gens(1, 2))
