import pytest
import torch

from vistok.quant import VectorQuantizer
from vistok.quant.search import nearest_code, nearest_codes_topk


def brute_force_nearest(x, codebook):
    return torch.cdist(x.double(), codebook.double()).argmin(1)


def test_chunked_search_equals_brute_force():
    x, codebook = torch.randn(3001, 16), torch.randn(517, 16)
    # a chunk of 7 rows forces hundreds of chunks, including a ragged last one
    chunked = nearest_code(x, codebook, max_elements=7 * 517)
    assert torch.equal(chunked, brute_force_nearest(x, codebook))
    topk = nearest_codes_topk(x, codebook, 5, max_elements=7 * 517)
    expected = torch.cdist(x.double(), codebook.double()).topk(5, largest=False).indices
    assert torch.equal(topk, expected)


def test_chunked_search_cosine_equals_brute_force():
    x = torch.nn.functional.normalize(torch.randn(999, 8), dim=-1)
    codebook = torch.nn.functional.normalize(torch.randn(300, 8), dim=-1)
    assert torch.equal(nearest_code(x, codebook, cosine=True, max_elements=1000), brute_force_nearest(x, codebook))


@pytest.mark.parametrize("gradient", ["ste", "rotation"])
@pytest.mark.parametrize("l2_norm", [False, True])
def test_gradients_reach_encoder_and_codebook(gradient, l2_norm):
    vq = VectorQuantizer(32, 8, l2_norm=l2_norm, gradient=gradient)
    encoder = torch.nn.Linear(4, 8)
    z = encoder(torch.randn(2, 10, 4))
    out = vq(z)
    (out.z_q.pow(2).sum() + out.loss).backward()
    assert encoder.weight.grad is not None and encoder.weight.grad.abs().sum() > 0
    assert vq.embed.grad is not None and vq.embed.grad.abs().sum() > 0  # codebook loss


def test_rotation_trick_value_is_the_code_and_gradient_differs_from_ste():
    z = torch.randn(64, 8, requires_grad=True)
    vq = VectorQuantizer(16, 8, gradient="rotation")
    out = vq(z)
    assert torch.allclose(out.z_q, vq.decode_indices(out.indices), atol=1e-6)
    out.z_q.sum().backward()
    assert not torch.allclose(z.grad, torch.ones_like(z))  # STE would give all ones


def test_decode_indices_inverts_indices():
    vq = VectorQuantizer(64, 12, l2_norm=True).eval()
    out = vq(torch.randn(3, 5, 7, 12))
    assert out.indices.shape == (3, 5, 7) and out.indices.dtype == torch.long
    assert torch.allclose(vq.decode_indices(out.indices), out.z_q, atol=1e-6)
    assert torch.allclose(vq.decode_indices(out.indices).norm(dim=-1), torch.ones(3, 5, 7), atol=1e-5)


def test_nearest_assignment_and_loss_values():
    vq = VectorQuantizer(10, 4, commitment=0.25).eval()
    z = torch.randn(50, 4)
    out = vq(z)
    assert torch.equal(out.indices, brute_force_nearest(z, vq.embed.detach()))
    mse = (z - vq.embed.detach()[out.indices]).pow(2).mean()
    assert torch.allclose(out.loss, 1.25 * mse, rtol=1e-5)
    assert abs(out.stats["commitment"] - float(mse)) < 1e-5 and isinstance(out.stats["commitment"], float)


def test_ema_codebook_moves_toward_assigned_vectors():
    vq = VectorQuantizer(4, 2, ema_decay=0.5)
    vq.embed.copy_(torch.tensor([[0.0, 0], [10, 10], [-10, 10], [10, -10]]))
    vq.embed_avg.copy_(vq.embed)
    z = torch.tensor([[1.0, 1.0]] * 8)
    vq.train()(z)
    assert vq.embed.grad is None and not vq.embed.requires_grad
    # code 0 is pulled from (0, 0) towards (1, 1); Laplace smoothing keeps it close to the EMA mean
    assert 0.4 < vq.embed[0, 0] < 1.0 and torch.allclose(vq.embed[1], torch.tensor([10.0, 10.0]), atol=0.1)


def test_kmeans_init_covers_clusters():
    centers = torch.tensor([[5.0, 0], [-5, 0], [0, 5], [0, -5]])
    z = (centers.repeat(100, 1) + 0.05 * torch.randn(400, 2))
    vq = VectorQuantizer(4, 2, kmeans_init=True, kmeans_iters=20, ema_decay=0.99)
    assert not bool(vq.initted)
    out = vq.train()(z)
    assert bool(vq.initted)
    found = torch.cdist(centers, vq.embed).min(1).values
    assert found.max() < 0.5
    assert out.stats["perplexity"] > 3.9


def test_dead_codes_are_restarted_from_batch_vectors():
    vq = VectorQuantizer(8, 3, ema_decay=0.9, dead_code_threshold=0.5)
    with torch.no_grad():
        vq.embed.copy_(torch.randn(8, 3) + 100.0)  # far from the data: never chosen
        vq.embed_avg.copy_(vq.embed)
        vq.embed[0] = 0.0
        vq.embed_avg[0] = 0.0
    vq.cluster_size.fill_(0.1)
    z = torch.randn(256, 3)
    vq.train()(z)
    # every code that was dead is now one of the batch vectors
    dist = torch.cdist(vq.embed, z).min(1).values
    assert (dist[1:] < 1e-5).all()
    out = vq(z)
    assert out.indices.unique().numel() > 4


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="last dim 8"):
        VectorQuantizer(4, 8)(torch.randn(2, 3))
    with pytest.raises(ValueError, match="ema_decay"):
        VectorQuantizer(4, 8, ema_decay=1.5)


def test_channels_first_helper():
    vq = VectorQuantizer(16, 6).eval()
    x = torch.randn(2, 6, 4, 5)
    out = vq.forward_channels_first(x)
    assert out.z_q.shape == x.shape and out.indices.shape == (2, 4, 5)
    ref = vq(x.permute(0, 2, 3, 1))
    assert torch.equal(out.indices, ref.indices)
    audio = vq.forward_channels_first(torch.randn(2, 6, 30))
    assert audio.z_q.shape == (2, 6, 30) and audio.indices.shape == (2, 30)


def test_state_dict_round_trip():
    vq = VectorQuantizer(16, 4, ema_decay=0.9, kmeans_init=True)
    vq.train()(torch.randn(64, 4))
    clone = VectorQuantizer(16, 4, ema_decay=0.9, kmeans_init=True)
    clone.load_state_dict(vq.state_dict())
    assert set(vq.state_dict()) == {"embed", "embed_avg", "cluster_size", "initted"}
    z = torch.randn(20, 4)
    assert torch.equal(vq.eval()(z).indices, clone.eval()(z).indices)
