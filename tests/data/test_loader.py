"""The resume contract: after n batches, a new loader built at position n (``start_step=n`` or
``load_state_dict``) returns the same batch n+1 as the uninterrupted loader, across epochs."""
import pytest
import torch
from torch.utils.data import IterableDataset

from vistok.data import ImageFolder, ImageShards, ResumableLoader, build_image_loader, default_num_workers
from vistok.data.loader import _resume_plan


def same(a, b):
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def take(loader, n):
    return [next(loader) for _ in range(n)]


def check_resume(make, reference, positions):
    for n in positions:
        interrupted = make(0)
        take(interrupted, n)
        state = interrupted.state_dict()
        interrupted.close()
        restored = make(0)
        restored.load_state_dict(state)
        started = make(n)
        assert restored.step == started.step == n
        for i in range(n, min(n + 2, len(reference))):
            assert same(next(restored), reference[i]), f"load_state_dict at {n}: batch {i + 1} differs"
            assert same(next(started), reference[i]), f"start_step={n}: batch {i + 1} differs"
        restored.close()
        started.close()


@pytest.mark.parametrize("workers", [0, 2])
def test_map_style_resume(image_dir, workers):
    ds = ImageFolder(image_dir, 6, seed=11)  # 10 images, batch 3: 3 batches per epoch

    def make(start):
        return ResumableLoader(ds, 3, seed=4, num_workers=workers, start_step=start)

    ref_loader = ResumableLoader(ImageFolder(image_dir, 6, seed=11), 3, seed=4, num_workers=0)
    assert ref_loader.batches_per_epoch() == 3
    reference = take(ref_loader, 8)
    assert (ref_loader.epoch, ref_loader.position, ref_loader.step) == (2, 2, 8)
    assert all(b.shape == (3, 3, 6, 6) for b in reference)
    if workers:
        assert all(same(a, b) for a, b in zip(take(make(0), 8), reference))  # workers do not change the stream
    # epochs differ (order and crops), but the same image comes back each epoch
    assert not same(reference[0], reference[3])
    check_resume(make, reference, [0, 2, 3, 4, 7] if workers == 0 else [2, 5])


def test_map_style_ranks_are_disjoint(image_dir):
    ds = ImageFolder(image_dir, 6, random_crop=False, random_flip=False)
    batches = [take(ResumableLoader(ds, 2, seed=0, rank=r, world_size=2), 2) for r in range(2)]
    images = [img.numpy().tobytes() for rank in batches for batch in rank for img in batch]
    assert len(images) == len(set(images)) == 8


@pytest.mark.parametrize("workers", [0, 2])
def test_shard_resume_across_epochs(shard_dir, workers):
    def make(start, rank=0, world_size=1):
        ds = ImageShards(str(shard_dir / "train-{0000..0002}.tar"), 6, shuffle_buffer=3, seed=2, return_key=True)
        return ResumableLoader(ds, 2, seed=2, rank=rank, world_size=world_size, num_workers=workers,
                               start_step=start)

    ref_loader = make(0)
    reference = take(ref_loader, 13)
    assert ref_loader.epoch >= 2  # 12 samples: at most 6 batches an epoch
    keys = [k for batch in reference for k in batch[1]]
    assert len(set(keys[:8])) == 8
    check_resume(make, reference, range(13) if workers == 0 else [1, 5, 6])
    if workers == 0:  # ranks' epochs differ in length; rank 0's saved state still resumes rank 1 exactly
        rank1 = take(make(0, 1, 2), 9)
        check_resume(lambda n: make(n, 1, 2), rank1, [1, 2, 4])
        for n in (3, 7):
            rank0 = make(0, 0, 2)
            take(rank0, n)
            restored = make(0, 1, 2)
            restored.load_state_dict(rank0.state_dict())
            assert same(next(restored), rank1[n])


class Counting(IterableDataset):
    """An iterable dataset with no sample counts: the loader must replay to resume."""

    def __init__(self):
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        return iter([torch.tensor([self.epoch, i]) for i in range(5 + self.epoch % 2)])


def test_iterable_without_counts_is_replayed():
    def make(start):
        return ResumableLoader(Counting(), 2, seed=0, start_step=start)

    reference = take(make(0), 9)
    assert reference[2].tolist() == [[1, 0], [1, 1]]  # epoch 0: 5 samples -> 2 full batches
    check_resume(make, reference, range(9))


def test_resume_plan_follows_the_round_robin():
    # workers with 3 and 1 batches: the stream is w0 w1 | w0 | w0
    assert _resume_plan([3, 1], 1) == ([0, 0], 1)
    assert _resume_plan([3, 1], 2) == ([1, 1], 0)
    assert _resume_plan([3, 1], 3) == ([2, 1], 0)
    assert _resume_plan([0, 2, 2], 3) == ([0, 1, 1], 1)
    with pytest.raises(ValueError):
        _resume_plan([1, 1], 3)


def test_global_rng_untouched(image_dir, shard_dir):
    state = torch.get_rng_state()
    take(ResumableLoader(ImageFolder(image_dir, 6), 3, seed=0, num_workers=2), 4)
    take(ResumableLoader(ImageShards(shard_dir, 6), 3, seed=0), 5)
    assert torch.equal(state, torch.get_rng_state())


def test_helpers():
    assert 0 <= default_num_workers(1) <= 8
    assert default_num_workers(10_000) == 0
    loader = build_image_loader(list(range(10)), 4, seed=0, num_workers=0, start_step=3)
    assert (loader.epoch, loader.position) == (1, 1) and loader.batches_per_epoch() == 2
    assert len(next(loader)) == 4
