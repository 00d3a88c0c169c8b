"""A FlexTok that samples its VAE posterior (``sample_posterior: true``, as the zoo cards set it) is
evaluated repeatably: the posterior noise comes from one generator per image seeded
``(seed, 'posterior', index)``, so ids and reconstructions are the same in every run and batching,
and a pFID pass decodes its clean variant from the very ids it perturbs (pFID at alpha=0 == rFID).
The other FlexTok evaluation tests use the posterior mode, which hides all of this."""
import pytest
import torch

from tests.metrics.fakes import FakeInception
from tests.models.test_flextok import TINY, tiny_model
from vistok.metrics.eval_images import EvalImages
from vistok.metrics.recon import PassSettings
from vistok.metrics.samples import DatasetSource
from vistok.metrics.tokenizer_eval import evaluate_pfid, evaluate_rfid
from vistok.metrics.tokenizer_runner import TokenizerRunner

NUM_IMAGES = 3


@pytest.fixture(scope="module")
def sampling_flextok():
    return tiny_model(vae={**TINY["vae"], "sample_posterior": True})


@pytest.fixture(scope="module")
def three_images(photo_folder):
    source = _source(photo_folder)
    (indices, images), = list(source.batches(0, NUM_IMAGES, NUM_IMAGES))
    return indices, images.float() / 255


def _source(folder):
    return DatasetSource(EvalImages(folder, 16, "titok", NUM_IMAGES))


def _runner(model):
    return TokenizerRunner(model, decode_options={"steps": 2})


def _pfid(model, folder, batch_size=NUM_IMAGES, seed=0, alphas=(0.0, 1.0)):
    settings = PassSettings(batch_size=batch_size, use_cache=False, num_tokens=(4, 256))
    return evaluate_pfid(_runner(model), _source(folder), FakeInception(), alphas=alphas, deltas=(8,),
                         seed=seed, settings=settings)


def test_the_posterior_really_samples(sampling_flextok, three_images):
    """Guards the other tests against passing vacuously: different seeds or image indices give
    different ids; the posterior mode gives the same ids whatever the seed."""
    indices, x = three_images
    runner = _runner(sampling_flextok)
    assert runner.seeded_encoding
    ids = runner.encode(x, indices, seed=0)
    assert (ids != runner.encode(x, indices, seed=1)).float().mean() > 0.1
    assert (ids != runner.encode(x, indices + 100, seed=0)).float().mean() > 0.1
    mode = _runner(tiny_model())
    assert not mode.seeded_encoding
    assert torch.equal(mode.encode(x, indices, seed=0), mode.encode(x, indices, seed=1))


def test_seeded_encoding_repeats_and_leaves_the_global_rng_alone(sampling_flextok, three_images):
    indices, x = three_images
    runner = _runner(sampling_flextok)
    state = torch.get_rng_state()
    first = runner.encode(x, indices, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # no global draw
    torch.manual_seed(1234)  # whatever the global stream
    assert torch.equal(runner.encode(x, indices, seed=3), first)
    _, clean = runner.quantizer_input(x, indices, seed=3)  # pFID's encoding draws the same sample
    assert torch.equal(runner.clean_ids(clean), first)


def test_seeded_encoding_does_not_depend_on_batching(sampling_flextok, three_images):
    indices, x = three_images
    runner = _runner(sampling_flextok)
    together = runner.encode(x, indices)
    one_by_one = torch.cat([runner.encode(x[i : i + 1], indices[i : i + 1]) for i in range(NUM_IMAGES)])
    assert torch.equal(together, one_by_one)


def test_pfid_pass_repeats_exactly(sampling_flextok, photo_folder):
    first, first_grid = _pfid(sampling_flextok, photo_folder)
    second, second_grid = _pfid(sampling_flextok, photo_folder)
    assert first.points == second.points and first.metrics == second.metrics
    assert first_grid.keys() == second_grid.keys()
    for name in first_grid:
        assert torch.equal(first_grid[name], second_grid[name]), name
    third, _ = _pfid(sampling_flextok, photo_folder, seed=1)  # and the seed matters
    assert third.metrics["rfid"] != first.metrics["rfid"]


def test_pass_does_not_depend_on_batch_size(sampling_flextok, photo_folder):
    """The same ids and noise at batch size 1 and 3; the numbers differ only by float blocking.
    (alpha > 0 is left out: FSQ ranks near-tied neighbour codes by the encoder output, whose last
    bits depend on the batch, with or without a sampled posterior.)"""
    (together, grid3), (one_by_one, grid1) = (_pfid(sampling_flextok, photo_folder, b, alphas=(0.0,)) for b in (3, 1))
    assert together.points == [pytest.approx(p, rel=1e-4, abs=1e-5) for p in one_by_one.points]
    assert together.metrics["codebook"] == one_by_one.metrics["codebook"]  # exact counts of the clean ids
    assert together.metrics["rfid_by_k"] == pytest.approx(one_by_one.metrics["rfid_by_k"], rel=1e-4)
    for name in grid3:  # the report grid keeps the first batch: image 0 at batch size 1
        assert grid1[name].shape[0] == 1
        assert (grid3[name][:1].int() - grid1[name].int()).abs().max() <= 1, name


def test_pfid_at_alpha_zero_is_the_rfid_of_the_same_sample(sampling_flextok, photo_folder):
    result, grid = _pfid(sampling_flextok, photo_folder)
    rows = {(p["num_tokens"], p["alpha"]): p for p in result.points}
    for k in (4, 256):
        clean, zero = grid[f"clean@k={k}"], grid[f"alpha=0,delta=8@k={k}"]
        assert torch.equal(clean, zero)  # the same ids decoded with the same noise
        assert rows[(k, 0.0)]["pfid"] == result.metrics["rfid_by_k"][str(k)]
        assert rows[(k, 0.0)]["replaced_fraction"] == 0 and rows[(k, 1.0)]["replaced_fraction"] > 0
    # an rFID pass encodes the same posterior sample as the pFID pass (both seed 0)
    settings = PassSettings(batch_size=NUM_IMAGES, use_cache=False, num_tokens=(4, 256))
    rfid, rfid_grid = evaluate_rfid(_runner(sampling_flextok), _source(photo_folder), FakeInception(),
                                    settings=settings)
    assert rfid.metrics["rfid_by_k"] == result.metrics["rfid_by_k"]
    assert torch.equal(rfid_grid["clean@k=256"], grid["clean@k=256"])
    assert rfid.protocol.seed == 0 and "posterior_noise" in rfid.protocol.tokenizer
