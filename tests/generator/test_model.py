"""ARGenerator's teacher-forced pass: alignment, causality, learning, files."""
import pytest
import torch

from tests.generator.conftest import tiny_generator
from vistok.models.generator import ARGenerator, next_token_loss


def pattern(labels: torch.Tensor, length: int, vocab: int) -> torch.Tensor:
    """Class c -> the deterministic sequence (7c + 5i + i*i) mod vocab."""
    i = torch.arange(length)
    return (7 * labels[:, None] + 5 * i + i * i) % vocab


def test_logits_align_with_ids_and_are_causal(generator):
    ids = torch.randint(0, 32, (3, 8))
    labels = torch.tensor([0, 1, 4])  # 4 = the null class
    logits = generator(ids, labels)
    assert logits.shape == (3, 8, 32)
    changed = ids.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 32
    other = generator(changed, labels)
    torch.testing.assert_close(other[:, :6], logits[:, :6], rtol=0, atol=0)  # position 5 only sees ids[:, :5]
    assert not torch.allclose(other[:, 6:], logits[:, 6:])
    assert not torch.allclose(generator(ids, torch.tensor([1, 1, 4]))[0], logits[0])  # the label conditions


def test_class_dropout_only_in_training():
    model = tiny_generator(class_dropout=0.5)
    labels = torch.zeros(4000, dtype=torch.long)
    dropped = model.drop_labels(labels)
    assert 0.45 < (dropped == model.config.null_class).float().mean() < 0.55
    ids = torch.randint(0, 32, (2, 8))
    torch.testing.assert_close(model(ids, labels[:2]), model(ids, labels[:2]))  # eval: no dropout


def test_loss_falls_and_greedy_sampling_recovers_the_pattern():
    torch.manual_seed(0)
    model = tiny_generator(class_dropout=0.1).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        labels = torch.randint(0, 4, (32,))
        loss, stats = model.loss(pattern(labels, 8, 32), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 3.0  # ~ln 32 at initialisation
    assert sum(losses[-10:]) / 10 < 0.3, losses[-10:]
    assert 0.0 <= stats["token_accuracy"] <= 1.0
    model.eval()
    labels = torch.arange(4)
    assert torch.equal(model.generate(labels, top_k=1), pattern(labels, 8, 32))
    assert torch.equal(model.generate(labels, temperature=0), pattern(labels, 8, 32))


def test_next_token_loss_matches_cross_entropy(generator):
    ids, labels = torch.randint(0, 32, (2, 8)), torch.tensor([1, 2])
    logits = generator(ids, labels)
    loss, _ = next_token_loss(logits, ids)
    expected = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(generator.loss(ids, labels)[0], expected)


def test_save_and_load_round_trip(tmp_path, generator):
    generator.save_pretrained(tmp_path / "gen")
    loaded = ARGenerator.from_pretrained(tmp_path / "gen")
    assert loaded.config == generator.config
    ids, labels = torch.randint(0, 32, (2, 8)), torch.tensor([0, 3])
    torch.testing.assert_close(loaded(ids, labels), generator(ids, labels), rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match="config.json"):
        ARGenerator.from_pretrained(tmp_path)


@pytest.mark.parametrize("norm", ["rmsnorm", "layernorm"])
def test_config_checks(norm):
    assert tiny_generator(norm=norm).config.norm == norm
    with pytest.raises(ValueError, match="norm"):
        tiny_generator(norm="batchnorm")
    with pytest.raises(ValueError, match="multiple of heads"):
        tiny_generator(size=dict(width=30, depth=1, heads=4))
