import pytest
import torch
from torch.utils.data import DataLoader

from tests.data.conftest import image_bytes, noise_image, write_tar
from vistok.data import ImageShards, ResumableLoader, load_image, resolve_shards
from vistok.data.tar_samples import iter_tar_samples, split_name

ALL_KEYS = {f"part{s}/{n:05d}" for s, n in [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 5), (1, 6), (1, 7),
                                             (2, 8), (2, 9), (2, 10), (2, 11)]}


def keys_of(dataset, **loader_kwargs):
    loader = DataLoader(dataset, batch_size=None, **loader_kwargs)
    return [key for _, key in loader]


def test_resolve_patterns_folders_and_lists(shard_dir):
    pattern = str(shard_dir / "train-{0000..0002}.tar")
    shards = resolve_shards(pattern)
    assert shards == [str(shard_dir / f"train-{i:04d}.tar") for i in range(3)]
    assert resolve_shards(shard_dir) == shards
    assert resolve_shards(["file:" + shards[0], shards[1]]) == shards[:2]
    with pytest.raises(FileNotFoundError, match="train-0003.tar"):
        resolve_shards(str(shard_dir / "train-{0000..0003}.tar"))


def test_samples_grouped_by_key():
    assert split_name("a/b/0001.seg.PNG") == ("a/b/0001", "seg.png")


def test_every_sample_once_with_image_preprocessing(shard_dir):
    ds = ImageShards(str(shard_dir / "train-{0000..0002}.tar"), 6, shuffle_buffer=4, return_key=True)
    items = list(ds)
    assert sorted(key for _, key in items) == sorted(ALL_KEYS)
    for image, _ in items:
        assert image.shape == (3, 6, 6) and image.dtype == torch.float32
        assert 0 <= float(image.min()) and float(image.max()) <= 1


def test_same_pixels_as_load_image_when_not_random(shard_dir, tmp_path):
    img = noise_image(42, size=(30, 20))
    (tmp_path / "x.png").write_bytes(image_bytes(img, "PNG"))
    write_tar(tmp_path / "one.tar", [("k/0.png", image_bytes(img, "PNG"))])
    ds = ImageShards(str(tmp_path / "one.tar"), 16, random_crop=False, random_flip=False)
    assert torch.equal(next(iter(ds)), load_image(tmp_path / "x.png", 16))


def test_split_across_ranks_and_workers(shard_dir):
    per_rank = []
    for rank in range(2):
        ds = ImageShards(shard_dir, 6, rank=rank, world_size=2, return_key=True, seed=3)
        ds.set_epoch(1)
        keys = keys_of(ds, num_workers=2)
        assert len(keys) == len(set(keys))
        per_rank.append(set(keys))
    assert not per_rank[0] & per_rank[1]
    assert per_rank[0] | per_rank[1] == ALL_KEYS
    with pytest.raises(ValueError, match="3 tar shards cannot feed 4 ranks"):
        ImageShards(shard_dir, 6, rank=0, world_size=4)


def test_epochs_reshuffle_deterministically(shard_dir):
    a = ImageShards(shard_dir, 6, seed=5, return_key=True)
    b = ImageShards(shard_dir, 6, seed=5, return_key=True)
    orders = set()
    for epoch in range(6):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        assert a.shard_order() == b.shard_order()
        orders.add(tuple(a.shard_order()))
        first, second = list(a), list(b)
        assert [k for _, k in first] == [k for _, k in second]
        assert all(torch.equal(x, y) for (x, _), (y, _) in zip(first, second))
    assert len(orders) > 1


def test_counts_match_the_stream(shard_dir):
    ds = ImageShards(shard_dir, 6, rank=1, world_size=2)
    assert ds.num_samples() == 12
    for workers in (0, 2):
        counts = ds.worker_sample_counts(workers)
        assert sum(counts) == len(keys_of(ImageShards(shard_dir, 6, rank=1, world_size=2, return_key=True),
                                          num_workers=workers))


def test_corrupt_shards_name_the_shard(shard_dir, tmp_path):
    raw = (shard_dir / "train-0001.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(raw[:1000])  # inside the first member's data
    (tmp_path / "noend.tar").write_bytes(raw[:1024 * 3])  # at a member boundary, no end marker
    (tmp_path / "junk.tar").write_bytes(b"\x00garbage" * 300)
    for name in ("cut.tar", "noend.tar", "junk.tar"):
        with pytest.raises(ValueError, match=name):
            list(iter_tar_samples(tmp_path / name))
    ds = ImageShards([shard_dir / "train-0000.tar", tmp_path / "cut.tar"], 6, shuffle_shards=False)
    loader = ResumableLoader(ds, 2, num_workers=1)
    with pytest.raises(ValueError, match="cut.tar"):
        for _ in range(10):
            next(loader)
    write_tar(tmp_path / "badimg.tar", [("k/0.jpg", b"not a jpeg")])
    with pytest.raises(ValueError, match=r"badimg.tar: sample k/0.jpg"):
        list(ImageShards(tmp_path / "badimg.tar", 6))
