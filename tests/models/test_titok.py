import pytest
import torch

from tests.helpers import titok_reference as ref
from vistok.data.bundled import load_samples
from vistok.models.state_dict import CheckpointMismatch
from vistok.models.titok.convert import config_from_official, load_titok_state_dict
from vistok.models.titok import TiTok, TiTokConfig

TINY = dict(width=64, depth=2, heads=4, tokens=8, token_size=12, codebook=32, grid=4, patch=8,
            pixel_codes=48, z_channels=32, pd_channels=32, pd_mult=(1, 1, 2, 2))


def tiny_config(legacy: bool) -> TiTokConfig:
    size = dict(width=TINY["width"], depth=TINY["depth"], heads=TINY["heads"])
    return TiTokConfig(
        image_size=TINY["grid"] * TINY["patch"], patch_size=TINY["patch"], encoder_size=size, decoder_size=size,
        num_latent_tokens=TINY["tokens"], codebook_size=TINY["codebook"], token_size=TINY["token_size"],
        use_l2_norm=True, decoder="vqgan" if legacy else "pixels", legacy_reshape=legacy,
        pixel_codebook_size=TINY["pixel_codes"],
        pixel_decoder=dict(hidden_channels=TINY["pd_channels"], channel_mult=TINY["pd_mult"],
                           z_channels=TINY["z_channels"]),
    )


def sample_images() -> torch.Tensor:
    """The bundled real photos at 32x32: distinct images give distinct tokens."""
    return torch.nn.functional.interpolate(load_samples(), size=(32, 32), mode="area")


def load_tiny(legacy: bool):
    spec = dict(TINY, legacy=legacy)
    official = ref.official_state_dict(spec, seed=1)
    model = load_titok_state_dict(TiTok(tiny_config(legacy)), official, "tiny official").eval()
    return spec, official, model


@pytest.mark.parametrize("legacy", [True, False], ids=["two_stage_legacy", "single_stage"])
def test_converted_official_weights_match_reference_forward(legacy):
    spec, official, model = load_tiny(legacy)
    images = sample_images()
    with torch.no_grad():
        ref_ids, ref_zq = ref.encode(official, spec, images)
        ids = model.encode(images)
        assert torch.equal(ids, ref_ids)
        assert ids.unique().numel() > 3  # a real spread of codes, not one collapsed id
        assert not torch.equal(ids[0], ids[1])  # tokens depend on the image
        ref_img = ref.decode(official, spec, ref_zq)
        img = model.decode(ids)
        assert img.shape == (4, 3, 32, 32)
        assert torch.allclose(img, ref_img, atol=1e-4, rtol=1e-4), (img - ref_img).abs().max()
        # flexible length: the first k tokens decode like the reference given k tokens
        img4 = model.decode(ids[:, :4])
        assert torch.allclose(img4, ref.decode(official, spec, ref_zq[..., :4]), atol=1e-4, rtol=1e-4)
        assert not torch.allclose(img4, img, atol=1e-3)
        out = model(images)
        assert torch.equal(out.indices, ids) and torch.allclose(out.recon, img, atol=1e-4)


def test_legacy_reshape_is_needed_for_legacy_weights():
    spec, official, model = load_tiny(True)
    images = torch.rand(2, 3, 32, 32)
    model.config.legacy_reshape = False  # a "clean" port of the same weights
    with torch.no_grad():
        assert not torch.equal(model.encode(images), ref.encode(official, spec, images)[0])


def test_strict_loading_names_missing_and_unexpected_keys():
    spec = dict(TINY, legacy=True)
    official = ref.official_state_dict(spec)
    del official["decoder.mask_token"]
    official["encoder.extra_thing"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatch) as err:
        load_titok_state_dict(TiTok(tiny_config(True)), official, "my.bin")
    msg = str(err.value)
    assert "my.bin" in msg and "decoder.mask_token" in msg and "encoder.extra_thing" in msg


def test_shape_mismatch_is_reported():
    official = ref.official_state_dict(dict(TINY, legacy=False))
    cfg = tiny_config(False)
    cfg.codebook_size = 64
    with pytest.raises(ValueError, match="quantize.embed"):
        load_titok_state_dict(TiTok(cfg), official, "x")


def test_config_from_official_maps_released_configs():
    l32 = {"model": {"vq_model": {"codebook_size": 4096, "token_size": 12, "use_l2_norm": True,
                                  "commitment_cost": 0.25, "vit_enc_model_size": "large",
                                  "vit_dec_model_size": "large", "vit_enc_patch_size": 16,
                                  "vit_dec_patch_size": 16, "num_latent_tokens": 32, "finetune_decoder": True}},
           "dataset": {"preprocessing": {"crop_size": 256}}}
    cfg = config_from_official(l32)
    assert cfg.decoder == "vqgan" and cfg.legacy_reshape and cfg.bottleneck == "vq"
    bl64 = {"model": {"vq_model": dict(l32["model"]["vq_model"], vit_enc_model_size="base", num_latent_tokens=64,
                                       codebook_size=8192, token_size=64, use_l2_norm=False,
                                       finetune_decoder=False, is_legacy=False)}}
    cfg = config_from_official(bl64)
    assert cfg.decoder == "pixels" and not cfg.legacy_reshape and cfg.codebook_size == 8192
    vae = {"model": {"vq_model": dict(bl64["model"]["vq_model"], quantize_mode="vae", token_size=16)}}
    assert config_from_official(vae).bottleneck == "kl"
    with pytest.raises(ValueError, match="stage-1"):
        config_from_official({"model": {"vq_model": dict(l32["model"]["vq_model"], finetune_decoder=False)}})
    with pytest.raises(ValueError, match="model.vq_model"):
        config_from_official({"dataset": {}})


def test_full_size_configs_have_published_parameter_counts():
    counts = {
        "titok_s128": (dict(encoder_size="small", decoder_size="small", num_latent_tokens=128), 83.7),
        "titok_bl64_vq8k": (dict(encoder_size="base", decoder_size="large", num_latent_tokens=64,
                                 codebook_size=8192, token_size=64, use_l2_norm=False, decoder="pixels",
                                 legacy_reshape=False), 390.0),
    }
    for name, (cfg, millions) in counts.items():
        with torch.device("meta"):
            model = TiTok(cfg)
        assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == millions, name


def test_kl_bottleneck_and_tail_drop():
    size = dict(width=32, depth=1, heads=2)
    cfg = TiTokConfig(image_size=32, patch_size=8, encoder_size=size, decoder_size=size, num_latent_tokens=8,
                      bottleneck="kl", token_size=4, decoder="pixels", legacy_reshape=False, tail_drop="pow2")
    model = TiTok(cfg)
    x = torch.rand(2, 3, 32, 32)
    model.train()
    kept = {int(model(x).stats["kept_tokens"]) for _ in range(30)}
    assert kept <= {1, 2, 4, 8} and len(kept) >= 3
    out = model(x)
    assert out.indices is None and out.loss > 0 and out.latent.shape == (2, 8, 4)
    model.eval()
    tokens = model.encode(x, num_tokens=3)
    assert tokens.shape == (2, 3, 4)
    assert model.decode(tokens).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="num_tokens"):
        model.encode(x, num_tokens=9)


def test_gradients_flow_through_vq_tokenizer():
    cfg = tiny_config(False)
    model = TiTok(cfg).train()
    out = model(torch.rand(2, 3, 32, 32))
    ((out.recon - 0.5).pow(2).mean() + out.loss).backward()
    assert model.encoder.patch_embed.weight.grad.abs().sum() > 0
    assert model.quantize.embed.grad.abs().sum() > 0


def test_quantizer_options_reach_the_codebook_and_round_trip(tmp_path):
    cfg = TiTokConfig(**{**tiny_config(False).to_dict(),
                         "quantizer_options": {"ema_decay": 0.9, "kmeans_init": True, "dead_code_threshold": 1.0}})
    model = TiTok(cfg).train()
    assert model.quantize.ema_decay == 0.9 and not bool(model.quantize.initted)
    model(sample_images())  # the first training batch initialises the codebook by k-means
    assert bool(model.quantize.initted) and "embed_avg" in dict(model.quantize.named_buffers())
    model.save_pretrained(tmp_path / "tok")
    again = TiTok.from_pretrained(tmp_path / "tok").eval()
    assert again.config.quantizer_options == cfg.quantizer_options
    assert torch.equal(again.encode(sample_images()), model.eval().encode(sample_images()))
    with pytest.raises(ValueError, match="quantizer_options: unknown \\['kmean_init'\\]"):
        TiTokConfig(quantizer_options={"kmean_init": True})
