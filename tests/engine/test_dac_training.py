"""The tiny DAC recipe (train/demo/dac_tiny.yaml: DAC's published loss set, its discriminator as
descript-audio-codec trains it, quantizer dropout) trains through the shared engine on CPU: the
log-mel loss falls, every period and band discriminator steps, a run resumed from a checkpoint
repeats the straight run exactly, and the export loads as a DAC codec."""
import torch

from tests.engine import codec_demo as demo
from vistok import load_tokenizer

TINY_DAC = ["model.config.encoder_dim=4", "model.config.decoder_dim=32", "model.config.num_quantizers=3",
            "model.config.codebook_size=64"]


def test_dac_tiny_trains_every_discriminator_and_resumes_exactly(tmp_path):
    straight, resumed = demo.train_and_resume("train/demo/dac_tiny.yaml", tmp_path, *TINY_DAC)
    demo.assert_mel_falls(straight)
    rows = demo.steps(straight)
    assert all(m["loss/quantizer"] > 0 and "gan/fm_dac_hann" in m and "loss/discriminator" in m for m in rows)
    assert min(m["stats/active_levels"] for m in rows) < 3  # quantizer dropout draws fewer levels for some items
    demo.assert_every_discriminator_steps(straight, "dac_hann", 8)  # periods 2, 3, 5, 7, 11; STFTs 2048, 1024, 512
    demo.assert_resumed_exactly(straight, resumed)
    codec = load_tokenizer(straight / "export")
    assert codec.family == "dac" and codec.config.num_quantizers == 3
    assert codec.encode(torch.zeros(1, 3200)).shape == (1, 3, 10)


def test_dac_filters_sets_the_discriminator_width():
    """loss.audio.dac_filters (the demos' 8) narrows every sub-discriminator; 32 is the published
    42,519,760-parameter one."""
    import pytest

    from audiotok.discriminators.catalog import dac_hann
    from audiotok.discriminators.dac import DACDiscriminator
    from audiotok.recipe import AudioLoss

    def size(module):
        return sum(p.numel() for p in module.parameters())

    narrow, _ = dac_hann(AudioLoss(dac_filters=8))
    assert narrow.config["channels"] == 8 and size(narrow) == 2_671_552
    assert size(DACDiscriminator(channels=32)) == 42_519_760 == size(DACDiscriminator())
    with pytest.raises(ValueError, match="channels must be a positive integer"):
        DACDiscriminator(channels=0)
