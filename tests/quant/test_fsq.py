import pytest
import torch

from vistok.quant import FSQ


def test_flextok_levels_codebook_and_values():
    fsq = FSQ([8, 8, 8, 5, 5, 5])
    assert fsq.codebook_size == 64000 and fsq.dim == 6
    codes = fsq.decode_indices(torch.arange(64000))
    assert torch.equal(codes[0], -torch.ones(6))  # id 0 is the all-minimum code
    assert sorted(codes[:, 0].unique().tolist()) == [-1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75]
    assert sorted(codes[:, 5].unique().tolist()) == [-1, -0.5, 0, 0.5, 1]
    # mixed radix, first channel least significant: basis 1, 8, 64, 512, 2560, 12800
    assert torch.equal(fsq.decode_indices(torch.tensor(1))[0], torch.tensor(-0.75))
    assert torch.equal(fsq.decode_indices(torch.tensor(12800))[5], torch.tensor(-0.5))


@pytest.mark.parametrize("levels,symmetric", [([8, 8, 8, 5, 5, 5], False), ([7, 5, 5, 5, 5], False),
                                             ([3, 4, 6], False), ([2, 3, 4], True)])
def test_index_round_trip(levels, symmetric):
    fsq = FSQ(levels, symmetric=symmetric)
    every = torch.arange(fsq.codebook_size)
    assert torch.equal(fsq.codes_to_indices(fsq.decode_indices(every)), every)
    out = fsq(torch.randn(4, 1000, len(levels)))
    assert out.indices.min() >= 0 and out.indices.max() < fsq.codebook_size
    assert torch.equal(fsq.decode_indices(out.indices), out.z_q)
    if fsq.codebook_size <= 100:  # every code is reachable from a wide input range
        assert out.indices.unique().numel() == fsq.codebook_size


def test_straight_through_gradient_and_no_loss():
    fsq = FSQ([5, 5, 5])
    z = torch.randn(10, 3, requires_grad=True)
    out = fsq(z)
    out.z_q.sum().backward()
    assert out.loss.item() == 0 and (z.grad > 0).all()
    assert fsq.state_dict() == {}


def test_level_two_needs_the_symmetric_grid():
    with pytest.raises(ValueError, match="symmetric=True"):
        FSQ([2, 5])
    fsq = FSQ([2, 2, 5], symmetric=True)
    assert sorted(fsq.decode_indices(torch.arange(20))[:, 0].unique().tolist()) == [-1.0, 1.0]
    assert sorted(fsq.decode_indices(torch.arange(20))[:, 2].unique().tolist()) == [-1, -0.5, 0, 0.5, 1]
