import pytest
import torch

from vistok.quant import ResidualVQ


def test_more_levels_reconstruct_better():
    z = torch.randn(2048, 8)
    rvq = ResidualVQ(4, 64, 8, kmeans_init=True, ema_decay=0.9)
    rvq.train()(z)  # k-means init of every level on its residual
    rvq.eval()
    out = rvq(z)
    errors = [(rvq.decode_indices(out.indices[..., :k]) - z).pow(2).mean().item() for k in range(1, 5)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert torch.allclose(rvq.decode_indices(out.indices), out.z_q, atol=1e-5)


def test_quantizer_dropout_marks_dropped_levels():
    torch.manual_seed(1)
    rvq = ResidualVQ(6, 16, 4, dropout=True).train()
    seen = set()
    for _ in range(40):
        out = rvq(torch.randn(3, 5, 4))
        active = int(out.stats["active_levels"])
        seen.add(active)
        assert (out.indices[..., :active] >= 0).all()
        assert (out.indices[..., active:] == -1).all()
        # decoding ignores dropped levels: same as decoding only the active ones
        assert torch.allclose(rvq.decode_indices(out.indices), rvq.decode_indices(out.indices[..., :active]))
        assert torch.allclose(out.z_q, rvq.decode_indices(out.indices), atol=1e-5)
    assert len(seen) >= 4
    assert (rvq.eval()(torch.randn(3, 4)).indices >= 0).all()


def test_num_levels_at_inference_and_errors():
    rvq = ResidualVQ(3, 16, 4).eval()
    out = rvq(torch.randn(7, 4), num_levels=2)
    assert (out.indices[:, 2] == -1).all() and (out.indices[:, :2] >= 0).all()
    with pytest.raises(ValueError, match="levels"):
        rvq.decode_indices(torch.zeros(7, 4, dtype=torch.long))


def test_gradient_reaches_encoder_with_unit_scale():
    rvq = ResidualVQ(4, 16, 4)
    z = torch.randn(10, 4, requires_grad=True)
    rvq(z).z_q.sum().backward()
    assert torch.allclose(z.grad, torch.ones_like(z))  # one straight-through on the sum


def test_shared_codebook_has_one_set_of_weights():
    rvq = ResidualVQ(4, 16, 4, shared_codebook=True)
    assert len(rvq.quantizers) == 1
    assert list(rvq.state_dict()) == [k for k in rvq.state_dict() if k.startswith("quantizers.0.")]
    out = rvq.eval()(torch.randn(5, 4))
    assert out.indices.shape == (5, 4)
