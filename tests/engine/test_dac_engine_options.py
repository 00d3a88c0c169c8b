"""The engine options DAC's recipes need: exponential LR decay per step, weight decay on every
parameter, and the discriminator's own gradient clipping (validated)."""
import pytest
import torch
from torch import nn

from vistok.engine import builders
from vistok.engine.recipe import RecipeError, load_recipe


def test_exponential_schedule_is_torch_exponential_lr():
    recipe = load_recipe(None, ["schedule.name=exponential", "schedule.gamma=0.9", "optimizer.lr=1.0"])
    ours_opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    ref_opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    ours, ref = builders.build_scheduler(ours_opt, recipe), torch.optim.lr_scheduler.ExponentialLR(ref_opt, 0.9)
    for _ in range(5):
        ours_opt.step(), ref_opt.step(), ours.step(), ref.step()
        assert ours.get_last_lr()[0] == pytest.approx(ref.get_last_lr()[0], rel=1e-12)
    assert ours.get_last_lr()[0] == pytest.approx(0.9 ** 5)


def test_gamma_out_of_range_is_refused():
    with pytest.raises(RecipeError, match="schedule.gamma"):
        load_recipe(None, ["schedule.gamma=1.5"])
    with pytest.raises(RecipeError, match="loss.adversarial.max_grad_norm"):
        load_recipe(None, ["loss.adversarial.max_grad_norm=-1"])


def test_exempt_from_decay_false_decays_biases_too():
    model = nn.Linear(4, 3)
    default = builders.build_optimizer(model, load_recipe(None, ["optimizer.weight_decay=0.01"]))
    every = builders.build_optimizer(model, load_recipe(None, ["optimizer.weight_decay=0.01",
                                                                "optimizer.exempt_from_decay=false"]))
    assert sorted(g["weight_decay"] for g in default.param_groups) == [0.0, 0.01]
    assert [(g["weight_decay"], len(g["params"])) for g in every.param_groups] == [(0.01, 2)]
