import pytest

from vistok.data import ResumableSampler


def test_ranks_get_disjoint_equal_slices():
    for drop_last in (True, False):
        samplers = [ResumableSampler(23, 4, seed=1, rank=r, world_size=3, drop_last=drop_last) for r in range(3)]
        batches = [s.epoch_batches(2) for s in samplers]
        assert len({len(b) for b in batches}) == 1 == len({len(s) for s in samplers})
        flat = [[i for batch in b for i in batch] for b in batches]
        if drop_last:
            assert all(len(batch) == 4 for b in batches for batch in b)
            everything = sum(flat, [])
            assert len(everything) == len(set(everything)) == (23 // 12) * 12
        else:
            assert set(sum(flat, [])) == set(range(23))
            assert not set(flat[0]) & set(flat[1]) and not set(flat[1]) & set(flat[2])


def test_permutation_is_a_function_of_seed_and_epoch():
    a, b = ResumableSampler(50, 5, seed=3), ResumableSampler(50, 5, seed=3)
    assert a.epoch_batches(4) == b.epoch_batches(4)
    assert a.epoch_batches(4) != a.epoch_batches(5)
    assert a.epoch_batches(4) != ResumableSampler(50, 5, seed=4).epoch_batches(4)
    assert ResumableSampler(10, 5, seed=0, shuffle=False).epoch_batches(0) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_state_round_trip_and_rollover():
    s = ResumableSampler(10, 3, seed=0)  # 3 batches per epoch
    s.advance(2)
    assert (s.epoch, s.position, s.step) == (0, 2, 2)
    s.advance()
    assert (s.epoch, s.position, s.step) == (1, 0, 3)
    s.advance(4)
    state = s.state_dict()
    t = ResumableSampler(10, 3, seed=0)
    t.load_state_dict(state)
    assert (t.epoch, t.position) == (2, 1)
    assert list(t) == s.epoch_batches(2)[1:]
    t.seek(7)
    assert (t.epoch, t.position) == (2, 1)


def test_changed_settings_warn_and_keep_the_sample_offset():
    s = ResumableSampler(100, 4, seed=0)
    s.advance(10)  # 40 samples into epoch 0
    t = ResumableSampler(100, 8, seed=0)
    with pytest.warns(UserWarning, match="batch_size 4 -> 8"):
        t.load_state_dict(s.state_dict())
    assert (t.epoch, t.position) == (0, 5)


def test_too_small_for_one_global_batch():
    with pytest.raises(ValueError, match="do not fill one global batch"):
        ResumableSampler(7, 4, seed=0, world_size=2)
    with pytest.raises(ValueError, match="bad rank"):
        ResumableSampler(7, 4, seed=0, rank=2, world_size=2)
