import pytest
import torch

from vistok.quant import BSQ, FSQ, LFQ, DimwiseQuantizer, ResidualVQ, VectorQuantizer

MAKERS = {
    "vq": lambda: VectorQuantizer(256, 16, l2_norm=True),
    "vq_ema": lambda: VectorQuantizer(256, 16, ema_decay=0.99, kmeans_init=True, dead_code_threshold=1.0),
    "rvq": lambda: ResidualVQ(3, 128, 16, dropout=True),
    "lfq": lambda: LFQ(16),
    "bsq": lambda: BSQ(16),
    "fsq": lambda: FSQ([8, 8, 8, 5, 5, 5, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3]),
    "fsq_sym": lambda: FSQ([2] * 8 + [3] * 8, symmetric=True),
    "dimwise": lambda: DimwiseQuantizer(),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_bf16_autocast_no_nan_and_fp32_search(name):
    q = MAKERS[name]().train()
    encoder = torch.nn.Linear(8, 16)
    x = torch.randn(4, 64, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = encoder(x)
        assert z.dtype == torch.bfloat16
        out = q(z)
        loss = out.z_q.float().pow(2).mean() + out.loss
    assert out.z_q.dtype == torch.bfloat16 and out.loss.dtype == torch.float32
    assert torch.isfinite(loss) and torch.isfinite(out.z_q).all()
    loss.backward()
    assert torch.isfinite(encoder.weight.grad).all()
    # the indices are those of an fp32 search on the same (bf16-valued) latent
    q.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ids_autocast = q(z.detach()).indices
    ids_fp32 = q(z.detach().float()).indices
    assert torch.equal(ids_autocast, ids_fp32)
