"""ARGenerator.generate: KV cache, guidance, teacher forcing, filtering, seeding."""
import pytest
import torch

from tests.generator.conftest import tiny_generator
from vistok.models.generator import cfg_scale_at, filter_logits, guide, sample_logits

LABELS = torch.tensor([0, 1, 2, 3, 1, 0])


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("settings", [dict(), dict(cfg_scale=3.0, top_k=8), dict(cfg_scale=2.0, cfg_power=1.15,
                                                                                  top_p=0.9, temperature=1.3)])
def test_kv_cache_gives_the_same_ids(dtype, settings):
    model = tiny_generator().to(dtype)
    cached = model.generate(LABELS, generator=seeded(1), use_cache=True, **settings)
    uncached = model.generate(LABELS, generator=seeded(1), use_cache=False, **settings)
    assert cached.shape == (6, 8) and cached.dtype == torch.long
    assert torch.equal(cached, uncached)
    assert not torch.equal(cached, model.generate(LABELS, generator=seeded(2), **settings))


def test_cfg_scale_one_is_exactly_the_conditional_logits(generator):
    cond, uncond = torch.randn(4, 32), torch.randn(4, 32)
    assert torch.equal(guide(cond, uncond, 1.0), cond)
    torch.testing.assert_close(guide(cond, uncond, 3.0), uncond + 3.0 * (cond - uncond))
    # greedy sampling at scale 1 follows the argmax of the teacher-forced conditional logits
    ids = generator.generate(LABELS, cfg_scale=1.0, top_k=1)
    assert torch.equal(generator(ids, LABELS).argmax(-1), ids)


def test_guided_sampling_uses_the_null_class(generator):
    ids = generator.generate(LABELS, cfg_scale=4.0, temperature=0)
    cond = generator(ids, LABELS)
    uncond = generator(ids, torch.full_like(LABELS, generator.config.null_class))
    assert torch.equal(guide(cond, uncond, 4.0).argmax(-1), ids)


def test_rar_cfg_schedule():
    assert cfg_scale_at(0, 256, 6.0, 1.15) == 1.0
    assert cfg_scale_at(128, 256, 6.0, 1.0) == pytest.approx(3.5)
    assert cfg_scale_at(255, 256, 6.0, 1.15) == pytest.approx(6.0, abs=1e-3)
    assert cfg_scale_at(7, 256, 6.0) == 6.0


def test_teacher_forcing(generator):
    teacher = torch.randint(0, 32, (6, 8))
    kept = generator.generate(LABELS, generator=seeded(3), teacher_ids=teacher, teacher_keep_prob=1.0, cfg_scale=2.0)
    assert torch.equal(kept, teacher)
    plain = generator.generate(LABELS, generator=seeded(3), cfg_scale=2.0)
    never = generator.generate(LABELS, generator=seeded(3), teacher_ids=teacher, teacher_keep_prob=0.0, cfg_scale=2.0)
    assert torch.equal(never, plain)  # sigma = 0 forces nothing and consumes the same random numbers
    with pytest.raises(ValueError, match="teacher_ids"):
        generator.generate(LABELS, teacher_keep_prob=0.5)


def test_teacher_keep_fraction_is_sigma():
    # a model that puts all its mass on id 0 marks every sampled position; teachers never use 0
    model = tiny_generator(codebook_size=32, num_tokens=8, norm="layernorm")
    with torch.no_grad():  # final states are the constant norm bias, and only id 0 reads it
        model.norm.weight.zero_()
        model.norm.bias.fill_(1.0)
        model.head.weight.zero_()
        model.head.weight[0] = 1.0
    labels = torch.zeros(500, dtype=torch.long)
    teacher = torch.randint(1, 32, (500, 8))
    ids = model.generate(labels, generator=seeded(4), teacher_ids=teacher, teacher_keep_prob=0.7, top_k=1)
    kept = ids == teacher
    assert torch.equal(kept, ids != 0)  # every position is either the teacher's or sampled
    assert abs(kept.float().mean().item() - 0.7) < 0.02


def test_top_k_one_is_greedy():
    logits = torch.randn(16, 32)
    uniform = torch.rand(16)
    assert torch.equal(sample_logits(logits, uniform, temperature=1.7, top_k=1), logits.argmax(-1))
    assert torch.equal(sample_logits(logits, uniform, temperature=0), logits.argmax(-1))


def test_filters():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.8)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.81)).tolist() == [[False, False, False, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.3)).tolist() == [[False, True, True, True]]
    assert not torch.isinf(filter_logits(logits)).any()


def test_inverse_cdf_sampling_follows_the_distribution():
    probs = torch.tensor([0.1, 0.0, 0.6, 0.3])
    uniform = torch.rand(20000, generator=seeded(5))
    ids = sample_logits(probs.log().expand(20000, 4), uniform)
    freq = torch.bincount(ids, minlength=4).float() / 20000
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)
    edge = sample_logits(probs.log()[None].expand(2, 4), torch.tensor([0.0, 1.0 - 2**-24]))
    assert edge.tolist() == [0, 3]  # never a zero-probability id


def test_per_sample_generators_make_samples_batch_independent(generator):
    streams = lambda idx: [seeded(100 + i) for i in idx]  # noqa: E731
    whole = generator.generate(LABELS, generator=streams(range(6)), cfg_scale=2.0, top_p=0.95)
    parts = [generator.generate(LABELS[i:i + 2], generator=streams(range(i, i + 2)), cfg_scale=2.0, top_p=0.95)
             for i in (0, 2, 4)]
    assert torch.equal(whole, torch.cat(parts))
    with pytest.raises(ValueError, match="generators"):
        generator.generate(LABELS, generator=streams(range(5)))


def test_argument_checks(generator):
    with pytest.raises(ValueError, match="labels"):
        generator.generate(torch.tensor([5]))
    with pytest.raises(ValueError, match="num_tokens"):
        generator.generate(LABELS, num_tokens=9)
    assert generator.generate(LABELS, num_tokens=3).shape == (6, 3)
    with pytest.raises(ValueError, match="shaped"):
        generator.generate(LABELS, teacher_ids=torch.zeros(6, 7, dtype=torch.long), teacher_keep_prob=0.5)
