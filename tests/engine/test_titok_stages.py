"""TiTok's two-stage training through the engine on tiny models: stage 1 fits the decoder's code
logits to a frozen MaskGIT-VQGAN teacher's codes; stage 2 starts from the stage-1 export plus the
teacher's pixel decoder and codebook, keeps encoder and quantizer frozen and trains the rest with
pixel, perceptual and adversarial losses."""
import math

import pytest
import torch
from safetensors.torch import load_file

from tests.engine.conftest import metrics, run_training
from vistok.engine.builders import copy_part
from vistok.models.maskgit_vqgan import MaskGITVQGAN
from vistok.models.titok import TiTok

TEACHER = {"image_size": 32, "hidden_channels": 32, "channel_mult": [1, 1, 2, 2], "num_res_blocks": 1,
           "z_channels": 16, "codebook_size": 64}
TWO_STAGE = ["model.config.decoder=vqgan", "model.config.pixel_codebook_size=64",
             "model.config.pixel_decoder={hidden_channels: 32, channel_mult: [1, 1, 2, 2], num_res_blocks: 1, "
             "z_channels: 16}"]


def tiny_two_stage() -> TiTok:
    return TiTok({"image_size": 32, "patch_size": 8, "encoder_size": {"width": 32, "depth": 1, "heads": 2},
                  "decoder_size": {"width": 32, "depth": 1, "heads": 2}, "num_latent_tokens": 8,
                  "codebook_size": 64, "token_size": 8, "decoder": "vqgan", "legacy_reshape": False,
                  "pixel_codebook_size": 64,
                  "pixel_decoder": {"hidden_channels": 32, "channel_mult": [1, 1, 2, 2], "num_res_blocks": 1,
                                    "z_channels": 16}})


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    torch.manual_seed(0)
    teacher = MaskGITVQGAN(TEACHER)
    with torch.no_grad():  # spread the codebook so the teacher's codes vary across images
        teacher.quantize.embed.normal_()
    return teacher.save_pretrained(tmp_path_factory.mktemp("teacher") / "vqgan")


def test_freeze_keeps_parts_without_gradients_and_in_eval_mode():
    model = tiny_two_stage()
    model.freeze("encoder", "quantize")
    model.train()
    assert not model.encoder.training and not model.quantize.training and model.decoder.training
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.decoder.parameters())
    with pytest.raises(ValueError, match="no submodule or parameter .encodr."):
        model.freeze("encodr")


def test_copy_part_moves_the_teacher_decoder_and_codebook(teacher_dir):
    model = tiny_two_stage()
    copy_part(model, "pixel_decoder.", f"{teacher_dir}:decoder.")
    copy_part(model, "pixel_codebook", f"{teacher_dir}:quantize.embed")
    teacher = MaskGITVQGAN.from_pretrained(teacher_dir)
    assert torch.equal(model.pixel_codebook, teacher.quantize.embed)
    for key, value in teacher.decoder.state_dict().items():
        assert torch.equal(model.pixel_decoder.state_dict()[key], value), key
    with pytest.raises(ValueError, match="has no encoder.conv_in"):
        copy_part(model, "pixel_decoder.", f"{teacher_dir}:encoder.")  # wrong part: names do not line up


def test_stage1_then_stage2(tmp_path, image_root, teacher_dir):
    stage1 = tmp_path / "stage1"
    res = run_training(stage1, image_root, *TWO_STAGE, "loss.kind=proxy_codes", f"loss.proxy_teacher={teacher_dir}",
                       "training.max_steps=12", "logging.eval_every=100", "optimizer.lr=5e-3")
    assert res.returncode == 0, res.stderr[-3000:]
    logged = [m for m in metrics(stage1) if "loss/proxy_ce" in m]
    first, last = logged[0]["loss/proxy_ce"], logged[-1]["loss/proxy_ce"]
    assert abs(first - math.log(64)) < 1.0  # starts near chance over the teacher's 64 codes
    assert last < first - 0.3, (first, last)

    stage2 = tmp_path / "stage2"
    res = run_training(stage2, image_root, *TWO_STAGE, f"model.init={stage1 / 'export'}",
                       f"model.init_parts={{pixel_decoder.: '{teacher_dir}:decoder.', "
                       f"pixel_codebook: '{teacher_dir}:quantize.embed'}}",
                       "model.freeze=[encoder, quantize]", "loss.quantizer_weight=0",
                       "loss.adversarial.weight=0.1", "loss.adversarial.arch=titok", "loss.adversarial.channels=32",
                       "loss.adversarial.start_step=2", "loss.adversarial.lecam_weight=0.001",
                       "training.max_steps=4", "logging.eval_every=100")
    assert res.returncode == 0, res.stderr[-3000:]
    before, after = load_file(str(stage1 / "export/model.safetensors")), load_file(str(stage2 / "export/model.safetensors"))
    for key in after:
        if key.startswith(("encoder.", "quantize.")):
            assert torch.equal(before[key], after[key]), f"frozen {key} changed"
    assert not torch.equal(before["decoder.embed.weight"], after["decoder.embed.weight"])
    assert any("loss/discriminator" in m for m in metrics(stage2))
