"""FID and friends: equal to torch-fidelity on the same images, ~0 against itself, and the same
through imported ``.npz`` statistics as from the images."""
import shutil

import numpy as np
import pytest
import torch

from vistok.metrics import fid as F
from vistok.metrics.eval_images import EvalImages
from vistok.metrics.extract import extract_features
from vistok.metrics.reference_stats import Reference, load_npz, save_npz
from vistok.metrics.samples import DatasetSource

# Our Inception runs channels-last (features within ~1e-5 of torch-fidelity's NCHW run); on these
# 8-image sets that moves FID by < 1e-4 relative. A different formula or preprocessing moves it by %.
RTOL_VS_TORCH_FIDELITY = 1e-4


@pytest.fixture(scope="module")
def halves(photo_folder, tmp_path_factory):
    """The 16 photo crops split into two folders of 8."""
    root = tmp_path_factory.mktemp("halves")
    files = sorted(photo_folder.iterdir())
    for name, part in (("a", files[:8]), ("b", files[8:])):
        (root / name).mkdir()
        for f in part:
            shutil.copy(f, root / name / f.name)
    return root / "a", root / "b"


@pytest.fixture(scope="module")
def features(halves, inception):
    return [extract_features(DatasetSource(EvalImages(d, None, "none")), inception, batch_size=8)["2048"]
            for d in halves]


def test_fid_and_kid_equal_a_direct_torch_fidelity_call(halves, features, inception_weights):
    import torch_fidelity

    expected = torch_fidelity.calculate_metrics(
        input1=str(halves[0]), input2=str(halves[1]), fid=True, kid=True, kid_subset_size=8, cuda=False,
        feature_extractor_weights_path=str(inception_weights.path), cache=False, verbose=False,
        save_cpu_ram=True, samples_find_ext="png")
    a, b = features
    fid = F.frechet_distance(F.FeatureStats.from_features(a), F.FeatureStats.from_features(b))
    assert fid == pytest.approx(expected["frechet_inception_distance"], rel=RTOL_VS_TORCH_FIDELITY)
    assert fid > 10  # different photos: a real distance, so the relative check means something
    kid = F.kernel_inception_distance(a, b, subset_size=8)
    assert kid["kid_mean"] == pytest.approx(expected["kernel_inception_distance_mean"], rel=1e-3)


def test_fid_of_a_set_against_itself_is_zero(features):
    both = torch.cat(features)
    stats = F.FeatureStats.from_features(both)
    assert abs(F.frechet_distance(stats, stats)) < 1e-3
    other = F.FeatureStats.from_features(features[0])
    assert F.frechet_distance(stats, other) > 1.0


def test_npz_statistics_give_the_fid_of_the_images(features, tmp_path):
    a, b = features
    ours = F.frechet_distance(F.FeatureStats.from_features(a), F.FeatureStats.from_features(b))
    ref = Reference(F.FeatureStats.from_features(b), {"source": "test"}, b)
    loaded = load_npz(save_npz(ref, tmp_path / "ref.npz"))
    assert F.frechet_distance(F.FeatureStats.from_features(a), loaded.stats) == ours
    assert torch.equal(loaded.features, b) and loaded.stats.count == 8
    # an ADM reference batch: only mu and sigma, both float64
    stats = F.FeatureStats.from_features(b)
    np.savez(tmp_path / "adm.npz", mu=stats.mu.astype(np.float64), sigma=stats.sigma)
    adm = load_npz(tmp_path / "adm.npz")
    assert adm.features is None and adm.description["sha256"]
    assert F.frechet_distance(F.FeatureStats.from_features(a), adm.stats) == pytest.approx(ours, rel=1e-9)


def test_npz_without_statistics_is_refused_by_name(tmp_path):
    np.savez(tmp_path / "samples.npz", arr_0=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="samples.npz.*mu or sigma"):
        load_npz(tmp_path / "samples.npz")


def test_the_three_fid_formulas_agree():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(400, 32, generator=gen)  # more images than dims: full-rank covariances
    b = torch.randn(400, 32, generator=gen) * 1.3 + 0.2
    sa, sb = F.FeatureStats.from_features(a), F.FeatureStats.from_features(b)
    assert sa.factor is None
    reference = F.frechet_distance(sa, sb, "torch-fidelity")
    assert F.frechet_distance(sa, sb) == reference  # auto = torch-fidelity's code here
    assert F.frechet_distance(sa, sb, "scipy") == pytest.approx(reference, rel=1e-6)
    # fewer images than dims: auto uses the exact n x n form
    small_a, small_b = F.FeatureStats.from_features(a[:20]), F.FeatureStats.from_features(b[:12])
    assert small_a.factor.shape == (20, 32)
    exact = F.frechet_distance(small_a, small_b, "torch-fidelity")
    assert F.frechet_distance(small_a, small_b) == pytest.approx(exact, rel=1e-6)
    assert F.frechet_distance(small_b, sb) == pytest.approx(F.frechet_distance(small_b, sb, "scipy"), rel=1e-6)
    with pytest.raises(ValueError, match="unknown FID method"):
        F.frechet_distance(sa, sb, "pytorch")


def test_kid_precision_recall_and_inception_score_sanity():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(64, 16, generator=gen)
    same = F.precision_recall(real, real)
    assert same["precision"] == same["recall"] == 1.0
    far = F.precision_recall(real + 100, real)
    assert far["precision"] == 0.0 and far["recall"] == 0.0
    near = F.kernel_inception_distance(real, real, subsets=10, subset_size=32)["kid_mean"]
    shifted = F.kernel_inception_distance(real + 1, real, subsets=10, subset_size=32)["kid_mean"]
    assert abs(near) < 0.1 * shifted
    assert F.inception_score(torch.zeros(40, 10), splits=2)["inception_score_mean"] == pytest.approx(1.0)
    confident = torch.eye(10).repeat(4, 1) * 50
    assert F.inception_score(confident, splits=1)["inception_score_mean"] == pytest.approx(10.0, rel=1e-3)
    few = F.inception_score(torch.zeros(6, 10))  # fewer images than the 10 default splits: capped, not NaN
    assert few["inception_score_splits"] == 6 and few["inception_score_mean"] == pytest.approx(1.0)


@pytest.mark.parametrize("imaginary,refused", [(1e-7, False), (5e-4, False), (2e-2, True)])
def test_scipy_fid_refuses_a_square_root_with_a_large_imaginary_diagonal(monkeypatch, imaginary, refused):
    """Round-off imaginary parts are dropped; one above the reference tolerance (1e-3) is an error,
    not a silently wrong trace."""
    from scipy import linalg

    gen = torch.Generator().manual_seed(1)
    sa = F.FeatureStats.from_features(torch.randn(200, 8, generator=gen))
    sb = F.FeatureStats.from_features(torch.randn(200, 8, generator=gen) + 0.5)
    clean = F.frechet_distance(sa, sb, "scipy")
    real_sqrtm = linalg.sqrtm
    monkeypatch.setattr(linalg, "sqrtm", lambda m: real_sqrtm(m).real + 1j * imaginary * np.eye(len(m)))
    if refused:
        with pytest.raises(F.FIDNumericalError, match=r"imaginary diagonal part of 0\.02 .*--fid-method torch-fidelity"):
            F.frechet_distance(sa, sb, "scipy")
    else:
        assert F.frechet_distance(sa, sb, "scipy") == pytest.approx(clean, rel=1e-12)
