"""Reference statistics are cached by content and protocol, and reused only when both match."""
import shutil

import pytest
import torch

from tests.metrics.fakes import FakeInception
from vistok.data.images import save_image
from vistok.hub.download import cache_root
from vistok.metrics.eval_images import EvalImages
from vistok.metrics.fid import FeatureStats
from vistok.metrics.reference_stats import reference_from_source
from vistok.metrics.samples import DatasetSource


def _source(folder, preprocessing="titok", size=32):
    return DatasetSource(EvalImages(folder, size, preprocessing))


def test_computed_once_then_read_from_the_cache(photo_folder, tmp_path):
    net = FakeInception()
    first = reference_from_source(_source(photo_folder), net, batch_size=5, need_features=True)
    assert net.seen == 16 and first.description["source"] == "computed"
    assert first.description["content_sha256"] and first.stats.count == 16
    files = list((cache_root() / "fid_stats").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"
    again = reference_from_source(_source(photo_folder), net, batch_size=7, need_features=True)
    assert net.seen == 16 and again.description["source"] == "cache"
    assert torch.equal(again.features, first.features)
    assert (again.stats.mu == first.stats.mu).all() and (again.stats.sigma == first.stats.sigma).all()
    assert again.description["content_sha256"] == first.description["content_sha256"]


def test_changed_content_or_protocol_is_recomputed(photo_folder, tmp_path):
    net = FakeInception()
    reference_from_source(_source(photo_folder), net)
    reference_from_source(_source(photo_folder, "adm"), net)  # other preprocessing
    reference_from_source(_source(photo_folder, size=40), net)  # other size
    assert net.seen == 48
    copy = tmp_path / "copy"
    shutil.copytree(photo_folder, copy)
    reference_from_source(_source(copy), net)  # same bytes elsewhere: a hit
    assert net.seen == 48
    save_image(torch.zeros(3, 48, 48), copy / "crop03.png")
    changed = reference_from_source(_source(copy), net)  # one file changed: recomputed
    assert net.seen == 64 and changed.description["source"] == "computed"
    assert reference_from_source(_source(copy), net, use_cache=False).description["source"] == "computed"
    assert net.seen == 80


def test_a_cache_without_features_is_recomputed_when_features_are_needed(photo_folder):
    net = FakeInception()
    plain = reference_from_source(_source(photo_folder), net)
    assert plain.features is not None  # computed features are returned either way
    assert reference_from_source(_source(photo_folder), net).description["source"] == "cache"
    with_features = reference_from_source(_source(photo_folder), net, need_features=True)
    assert with_features.description["source"] == "computed" and net.seen == 32
    assert reference_from_source(_source(photo_folder), net, need_features=True).description["source"] == "cache"


def test_statistics_need_two_images():
    with pytest.raises(ValueError, match="at least 2"):
        FeatureStats.from_features(torch.zeros(1, 8))
