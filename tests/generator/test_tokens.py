"""Token shards (writer, reader) and the labelled image folder."""
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vistok.data.labelled_folder import LabelledImageFolder
from vistok.data.tokens import TokenShards, TokenShardWriter, read_meta


def write(root, ids, labels, flip=None, **kwargs):
    with TokenShardWriter(root, ids.shape[1], 64, {"tokenizer": "tiny"}, **kwargs) as writer:
        for lo in range(0, len(ids), 3):  # batches that straddle shard boundaries
            writer.add(ids[lo:lo + 3], labels[lo:lo + 3], None if flip is None else flip[lo:lo + 3])
    return root


def test_round_trip_across_shards(tmp_path):
    ids, labels = torch.randint(0, 64, (11, 5)), torch.arange(11) % 4
    root = write(tmp_path / "tok", ids, labels, shard_size=4)
    meta = read_meta(root)
    assert meta["count"] == 11 and meta["shards"] == [4, 4, 3] and meta["tokenizer"] == "tiny"
    assert meta["dtype"] == "uint16" and meta["views"] == ["ids"]
    assert np.load(root / "ids-00001.npy").dtype == np.uint16
    data = TokenShards(root)
    assert len(data) == 11 and not data.flip
    got = torch.stack([data[i][0] for i in range(11)])
    assert got.dtype == torch.long and torch.equal(got, ids)
    assert [int(data[i][1]) for i in range(11)] == labels.tolist()
    assert torch.equal(data[-1][0], ids[-1])
    batch_ids, batch_labels = next(iter(DataLoader(data, batch_size=6)))
    assert batch_ids.shape == (6, 5) and batch_labels.shape == (6,) and batch_labels.dtype == torch.long
    with pytest.raises(IndexError):
        data[11]


def test_flip_views_are_chosen_per_epoch(tmp_path):
    ids = torch.randint(0, 64, (40, 5))
    flipped = (ids + 1) % 64
    root = write(tmp_path / "tok", ids, torch.zeros(40, dtype=torch.long), flip=flipped)
    data = TokenShards(root, seed=3)
    chosen = torch.stack([data[i][0] for i in range(40)])
    is_flip = (chosen == flipped).all(1)
    assert ((chosen == ids).all(1) | is_flip).all() and 5 < is_flip.sum() < 35
    again = torch.stack([data[i][0] for i in range(40)])
    assert torch.equal(chosen, again)  # a pure function of (seed, epoch, index)
    data.set_epoch(1)
    assert not torch.equal(torch.stack([data[i][0] for i in range(40)]), chosen)
    assert torch.equal(torch.stack([TokenShards(root, flip=False)[i][0] for i in range(40)]), ids)


def test_writer_is_all_or_nothing(tmp_path):
    root = tmp_path / "tok"
    with pytest.raises(RuntimeError):
        with TokenShardWriter(root, 5, 64) as writer:
            writer.add(torch.zeros(2, 5, dtype=torch.long), [0, 1])
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    write(root, torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    with pytest.raises(FileExistsError):
        TokenShardWriter(root, 5, 64)
    write(root, torch.ones(3, 5, dtype=torch.long), torch.zeros(3, dtype=torch.long), overwrite=True)
    assert len(TokenShards(root)) == 3 and [p.name for p in tmp_path.iterdir()] == ["tok"]


def test_writer_and_reader_checks(tmp_path):
    writer = TokenShardWriter(tmp_path / "tok", 5, 64)
    with pytest.raises(ValueError, match="outside"):
        writer.add(torch.full((1, 5), 64), [0])
    with pytest.raises(ValueError, match=r"\(n, 5\)"):
        writer.add(torch.zeros(1, 4, dtype=torch.long), [0])
    with pytest.raises(ValueError, match="labels"):
        writer.add(torch.zeros(2, 5, dtype=torch.long), [0])
    writer.abort()
    with pytest.raises(FileNotFoundError, match="meta.json"):
        TokenShards(tmp_path)
    root = write(tmp_path / "ok", torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    meta = json.loads((root / "meta.json").read_text())
    meta["shards"] = [3]
    (root / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="ids-00000.npy"):
        TokenShards(root)


def test_int32_for_large_codebooks(tmp_path):
    with TokenShardWriter(tmp_path / "tok", 2, 100_000) as writer:
        writer.add([[99_999, 0]], [7])
    assert read_meta(tmp_path / "tok")["dtype"] == "int32"
    assert TokenShards(tmp_path / "tok")[0][0].tolist() == [99_999, 0]


def test_labelled_folder(labelled_root, tmp_path):
    data = LabelledImageFolder(labelled_root, 16)
    assert data.classes == ["cat", "dog"]
    assert [p.as_posix() for p in data.relative_paths] == ["cat/a.png", "cat/b.png", "cat/c.png", "dog/deep/y.jpg",
                                                          "dog/x.jpg"]
    assert data.labels == [0, 0, 0, 1, 1]
    image, label = data[3]
    assert image.shape == (3, 16, 16) and label == 1
    assert LabelledImageFolder(labelled_root, 16, classes=["ant", "cat", "dog"]).labels == [1, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="not one of"):
        LabelledImageFolder(labelled_root, 16, classes=["cat"])
    (tmp_path / "flat.png").write_bytes((labelled_root / "cat/a.png").read_bytes())
    with pytest.raises(ValueError, match="class subfolder"):
        LabelledImageFolder(tmp_path, 16)
