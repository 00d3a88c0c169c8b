"""The tiny SNAC recipe (train/demo/snac_tiny.yaml: DAC's published loss set, which SNAC's training is
taken to follow, on SNAC's multi-rate residual quantizer with quantizer dropout, noise blocks and
windowed attention) trains through the shared engine on CPU: the log-mel loss falls, every period
and band discriminator steps, a run resumed from a checkpoint repeats the straight run exactly (the
noise blocks draw from the checkpointed generator state), and the export loads as a SNAC codec."""
import torch

from tests.engine import codec_demo as demo
from vistok import load_tokenizer

TINY_SNAC = ["model.config.codebook_size=64"]


def test_snac_tiny_trains_every_discriminator_and_resumes_exactly(tmp_path):
    straight, resumed = demo.train_and_resume("train/demo/snac_tiny.yaml", tmp_path, *TINY_SNAC)
    demo.assert_mel_falls(straight)
    rows = demo.steps(straight)
    assert all(m["loss/quantizer"] > 0 and "gan/fm_dac_hann" in m and "loss/discriminator" in m for m in rows)
    assert min(m["stats/active_levels"] for m in rows) < 3  # quantizer dropout draws fewer levels for some items
    demo.assert_every_discriminator_steps(straight, "dac_hann", 8)  # periods 2, 3, 5, 7, 11; STFTs 2048, 1024, 512
    demo.assert_resumed_exactly(straight, resumed)
    codec = load_tokenizer(straight / "export")
    assert codec.family == "snac" and codec.config.vq_strides == [4, 2, 1]
    assert codec.encode(torch.zeros(1, 3200)).shape == (1, 7, 3)  # 1 + 2 + 4 ids per 1280-sample position
