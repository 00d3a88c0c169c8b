import pytest
import torch
import torch.nn as nn

from vistok.losses import PatchDiscriminator, hinge_d_loss


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
@pytest.mark.parametrize("size,out", [(32, 2), (64, 6)])
def test_output_shape(norm, size, out):
    disc = PatchDiscriminator(channels=8, norm=norm)
    assert disc(torch.rand(2, 3, size, size)).shape == (2, 1, out, out)


def test_layout_and_init():
    torch.manual_seed(0)
    disc = PatchDiscriminator(channels=64, num_layers=3)
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert all(c.kernel_size == (4, 4) for c in convs)
    assert [c.bias is not None for c in convs] == [True, False, False, False, True]
    weights = torch.cat([c.weight.flatten() for c in convs])
    assert abs(weights.mean().item()) < 1e-3 and abs(weights.std().item() - 0.02) < 1e-3
    norms = torch.cat([m.weight for m in disc.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(norms.mean().item() - 1.0) < 5e-3 and 0.01 < norms.std().item() < 0.03
    slopes = {m.negative_slope for m in disc.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2}
    with pytest.raises(ValueError):
        PatchDiscriminator(norm="layer")


def test_learns_real_vs_constant():
    torch.manual_seed(0)
    disc = PatchDiscriminator(channels=8, norm="batch")
    opt = torch.optim.Adam(disc.parameters(), lr=2e-3, betas=(0.5, 0.9))
    real = torch.rand(8, 3, 32, 32)
    fake = torch.full((8, 3, 32, 32), 0.5)
    losses = []
    for _ in range(10):
        loss = hinge_d_loss(disc(real), disc(fake))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
