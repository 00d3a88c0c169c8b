import math

import pytest
import torch

from vistok.quant import CodebookUsage


def test_uniform_usage_has_full_perplexity():
    usage = CodebookUsage(16)
    usage.update(torch.arange(16).repeat(10))
    s = usage.compute()
    assert s["utilization"] == 1.0 and s["perplexity"] == pytest.approx(16)
    assert s["entropy_bits"] == pytest.approx(4.0) and s["dead_codes"] == 0 and s["tokens"] == 160


def test_exact_counts_accumulate_over_updates():
    usage = CodebookUsage(8)
    usage.update(torch.tensor([0, 0, 1]))
    usage.update(torch.tensor([[1, 2], [3, 3]]))
    s = usage.compute()
    p = torch.tensor([2, 2, 1, 2]) / 7.0
    assert s["utilization"] == 0.5 and s["dead_codes"] == 4
    assert s["perplexity"] == pytest.approx(math.exp(-(p * p.log()).sum().item()))


def test_groups_for_residual_levels_ignore_dropped():
    usage = CodebookUsage(4, num_groups=2)
    usage.update(torch.tensor([[0, -1], [1, -1], [2, 3], [3, 3]]))
    s = usage.compute()
    assert s["group0/utilization"] == 1.0 and s["group1/utilization"] == 0.25
    assert s["group1/tokens"] == 2 and s["utilization"] == pytest.approx(0.625)


def test_out_of_range_index_is_an_error():
    with pytest.raises(ValueError, match="out of range"):
        CodebookUsage(4).update(torch.tensor([4]))
