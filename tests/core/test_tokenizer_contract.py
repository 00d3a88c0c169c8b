"""Every tokenizer family keeps the contract the engine and the metrics call
(vistok.models.base.Tokenizer): what it declares about itself agrees with what it does."""
import dataclasses

import pytest
import torch

from tests.audio.test_wavtokenizer import tiny_model as tiny_wavtokenizer
from tests.models.test_flextok import tiny_model as tiny_flextok
from tests.models.test_titok import sample_images, tiny_config as titok_config
from vistok.data.seeding import make_generator
from vistok.models.base import Tokenizer, ZooModel
from vistok.registry import families


def _titok():
    from vistok.models.titok import TiTok

    torch.manual_seed(0)
    return TiTok(titok_config(True)).eval()


def _maskgit():
    from vistok.models.maskgit_vqgan import MaskGITVQGAN

    torch.manual_seed(0)
    return MaskGITVQGAN(dict(image_size=32, hidden_channels=32, channel_mult=(1, 1), num_res_blocks=1,
                             z_channels=8, codebook_size=64)).eval()


def _flextok_vae():
    from tests.hub.test_flextok_convert import TINY_VAE
    from vistok.models.flextok import FlexTokVAE

    torch.manual_seed(0)
    return FlexTokVAE(dict(image_size=32, latent_channels=4, scaling_factor=0.5, **TINY_VAE)).eval()


def _llamagen():
    from tests.models.test_llamagen import tiny_model

    return tiny_model()


IMAGE_TOKENIZERS = {"titok": _titok, "maskgit_vqgan": _maskgit, "flextok": lambda: tiny_flextok(),
                    "flextok_vae": _flextok_vae, "llamagen": _llamagen}


def _images(model):
    return torch.nn.functional.interpolate(sample_images(), size=(model.image_size,) * 2, mode="area")


def test_every_registered_family_builds_a_zoo_model_of_its_modality():
    for name, family in families().items():
        cls = family.model_class()
        assert issubclass(cls, ZooModel) and cls.family == name and cls.modality == family.modality, name
        assert issubclass(cls, Tokenizer) == (family.modality != "tokens"), name
        assert dataclasses.is_dataclass(cls.config_class), name  # what recipe and card checks read
    assert set(IMAGE_TOKENIZERS) == {n for n, f in families().items() if f.modality == "image"}


@pytest.mark.parametrize("name", sorted(IMAGE_TOKENIZERS))
@torch.inference_mode()
def test_image_tokenizers_declare_what_they_do(name):
    model = IMAGE_TOKENIZERS[name]()
    assert isinstance(model.config, type(model).config_class)
    x = _images(model)
    assert model.sample_rate is None and model.token_rate is None and model.num_codebooks == 1
    generators = [make_generator(0, "posterior", i) for i in range(len(x))] if model.samples_posterior else None
    options = {} if generators is None else {"generator": generators}
    ids = model.encode(x, **options)
    if not model.is_discrete:  # a continuous bottleneck has no codebook, no ids and no pFID hook
        assert model.codebook_size is None and model.token_quantizer() is None and ids.is_floating_point()
        return
    assert ids.dtype == torch.long and ids.shape == (len(x), model.num_tokens)
    assert 0 <= int(ids.min()) and int(ids.max()) < model.codebook_size
    # pFID's view of the model: the quantizer input, quantized and laid out as encode returns it
    again = [make_generator(0, "posterior", i) for i in range(len(x))] if generators else None
    z = model.quantizer_input(x, again)
    assert torch.equal(model.ids_from_quantizer(model.token_quantizer()(z).indices), ids)
    noise = model.decode_noise_shape()
    decode = {} if noise is None else {"noise": torch.zeros(len(x), *noise), "steps": 2}
    assert model.decode(ids, **decode).shape == x.shape
    if model.prefix_decoding:
        assert model.encode(x[:1], num_tokens=3, **({"generator": generators[:1]} if generators else {})).shape == (1, 3)
        assert model.decode(ids[:, :3], **decode).shape == x.shape


def test_a_sampling_encoder_draws_from_the_generators_it_is_given():
    model = tiny_flextok()
    model.config.vae.sample_posterior = True
    assert model.samples_posterior
    x = _images(model)

    def latents(seed):
        return model.quantizer_input(x, [make_generator(seed, "posterior", i) for i in range(len(x))])

    assert torch.equal(latents(1), latents(1)) and not torch.equal(latents(1), latents(2))


@torch.inference_mode()
def test_the_audio_tokenizer_declares_its_rate_and_codebooks():
    model = tiny_wavtokenizer(num_quantizers=2).eval()
    assert model.modality == "audio" and model.image_size is None and model.num_tokens is None
    wav = torch.randn(1, model.sample_rate // 10) * 0.1
    ids = model.encode(wav)
    hop = model.sample_rate / model.token_rate
    assert ids.shape == (1, model.num_codebooks, -(-wav.shape[-1] // int(hop)))
    assert int(ids.max()) < model.codebook_size == model.config.codebook_size


def test_the_perturbation_slot_is_declared_by_the_families_that_apply_it():
    assert _titok().accepts_perturbation and tiny_flextok().accepts_perturbation
    assert not _maskgit().accepts_perturbation and not _flextok_vae().accepts_perturbation
