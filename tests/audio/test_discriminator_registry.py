"""loss.audio.discriminators names discriminators the families register (Family.discriminators):
a codec with its own discriminator adds it in its folder, and the audio objective trains it."""
import dataclasses

import pytest
import torch
from torch import nn

import vistok.registry as registry
from audiotok.losses import AdversarialTerm
from vistok.engine.recipe import load_recipe


class Toy(nn.Module):
    """One linear layer on 64-sample frames."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(64, 1)

    def forward(self, x, cond=None):
        frames = x[:, : x.shape[-1] // 64 * 64].reshape(len(x), -1, 64)
        logits = self.proj(frames).squeeze(-1)
        return [logits], [[frames]]


def toy(audio):
    return Toy(), AdversarialTerm("hinge", 2.0, 0.0, "mean")


@pytest.fixture
def with_toy(monkeypatch):
    real = registry.families()
    wav = real["wavtokenizer"]
    extra = dataclasses.replace(wav, name="toycodec", objectives={}, recipe_sections={}, data_kinds={}, commands=(),
                                discriminators={"toy": f"{__name__}:toy"})
    monkeypatch.setattr(registry, "families", lambda: {**real, "toycodec": extra})


def _objective(names):
    from audiotok.objective import AudioObjective

    recipe = load_recipe(None, ["model.family=wavtokenizer", "loss.kind=audio", "loss.adversarial.weight=1.0",
                                f"loss.audio.discriminators=[{','.join(names)}]", "data.kind=audio"])
    return AudioObjective(recipe, "cpu")


def test_a_registered_discriminator_is_built_with_its_term(with_toy):
    objective = _objective(["toy", "mpd"])
    assert list(objective.discriminator.keys()) == ["toy", "mpd"]
    assert isinstance(objective.discriminator["toy"], Toy)
    assert objective.adversarial.terms["toy"].loss == "hinge" and objective.adversarial.terms["toy"].weight == 2.0
    real, fake = torch.randn(2, 4096) * 0.1, torch.randn(2, 4096) * 0.1
    loss, stats = objective.adversarial.discriminator_loss(real, fake)
    loss.backward()
    assert objective.discriminator["toy"].proj.weight.grad is not None


def test_an_unknown_discriminator_lists_the_registered_ones():
    with pytest.raises(ValueError, match=r"loss.audio.discriminators: unknown \['nosuch'\]; "
                                         r"choose from \['dac', 'dac_hann', 'mpd', 'mrd', 'msstft'\]"):
        _objective(["nosuch"])
