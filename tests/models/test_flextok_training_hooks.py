"""What the training engine relies on in FlexTok: the loss without a pixel decode, a deterministic
eval-mode reconstruction with few steps, the null condition always in the graph (DDP), and REPA
weights from a local file with a clear error when the hub is out of reach."""
import pytest
import torch

from tests.models.test_flextok import images, tiny_model


def test_forward_without_reconstruction_skips_the_vae_decoder(monkeypatch):
    model = tiny_model().train()
    monkeypatch.setattr(model.vae, "decode", lambda *a, **k: pytest.fail("decoded pixels"))
    out = model(images(2), reconstruct=False)
    assert out.recon is None and out.loss.requires_grad


def test_eval_reconstruction_uses_eval_decode_steps_and_fixed_noise(monkeypatch):
    model = tiny_model(eval_decode_steps=3).eval()
    seen = []
    decode = model.decode
    monkeypatch.setattr(model, "decode", lambda ids, **kw: seen.append(kw["steps"]) or decode(ids, **kw))
    with torch.no_grad():
        a, b = model(images(2)).recon, model(images(2)).recon
    assert seen == [3, 3] and torch.equal(a, b)


def test_null_condition_is_in_the_graph_when_no_sample_is_dropped():
    model = tiny_model(cfg_dropout=1e-9).train()
    loss, _ = model.flow_matching_loss(x=images(2))
    loss.backward()
    assert model.decoder.null_cond.grad is not None  # zero, but DDP sees the parameter used


def test_repa_teacher_weights_from_a_local_file(tmp_path, monkeypatch):
    import timm
    from safetensors.torch import save_file

    from vistok.models.flextok.repa import RepaTeacher

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    source = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=32)
    save_file(source.state_dict(), str(tmp_path / "teacher.safetensors"))
    teacher = RepaTeacher("vit_tiny_patch16_224", 32, weights=str(tmp_path / "teacher.safetensors"))
    loaded = teacher.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in source.state_dict().items())
    model = tiny_model(repa_layer=0, repa_weight=0.5, repa_dim=192, repa_encoder="vit_tiny_patch16_224",
                       repa_input_size=32, repa_weights=str(tmp_path / "teacher.safetensors")).train()
    loss, stats = model.flow_matching_loss(x=images(2))
    assert "repa_loss" in stats and torch.isfinite(loss)
    with pytest.raises(FileNotFoundError, match="repa_weights .*missing.safetensors.* is not a file"):
        RepaTeacher("vit_tiny_patch16_224", 32, weights=str(tmp_path / "missing.safetensors"))


def test_repa_offline_error_names_the_model_and_how_to_give_weights(monkeypatch):
    from vistok.models.flextok.repa import RepaTeacher

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError) as err:
        RepaTeacher("vit_small_patch14_reg4_dinov2.lvd142m", 224)
    message = str(err.value)
    assert "'vit_small_patch14_reg4_dinov2.lvd142m'" in message and "from the Hugging Face hub" in message
    assert "model.config.repa_weights=FILE" in message and "repa_weight=0" in message
