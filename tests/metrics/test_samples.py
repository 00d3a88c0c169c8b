"""Sample sources: ADM ``.npz`` files streamed in ranges, folders with the papers' preprocessing."""
import numpy as np
import pytest
import torch
from PIL import Image

from vistok.metrics.eval_images import EvalImages
from vistok.metrics.samples import NpzSource, open_samples


@pytest.fixture
def npz(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (11, 8, 6, 3), dtype=np.uint8)
    np.savez(tmp_path / "samples.npz", arr_0=arr)
    return tmp_path / "samples.npz", arr


def test_npz_batches_stream_any_range(npz):
    path, arr = npz
    source = open_samples(path)
    assert isinstance(source, NpzSource) and len(source) == 11
    got = list(source.batches(3, 10, batch_size=4))
    assert [len(i) for i, _ in got] == [4, 3]
    idx = torch.cat([i for i, _ in got])
    images = torch.cat([x for _, x in got])
    assert idx.tolist() == list(range(3, 10))
    assert images.dtype == torch.uint8 and images.shape == (7, 3, 8, 6)
    assert torch.equal(images, torch.from_numpy(arr[3:10]).permute(0, 3, 1, 2))
    assert len(open_samples(path, limit=5)) == 5
    assert source.fingerprint() == NpzSource(path).fingerprint()


def test_compressed_npz_reads_the_same(npz, tmp_path):
    _, arr = npz
    np.savez_compressed(tmp_path / "c.npz", arr_0=arr)
    images = torch.cat([x for _, x in NpzSource(tmp_path / "c.npz").batches(2, 11, 5)])
    assert torch.equal(images, torch.from_numpy(arr[2:]).permute(0, 3, 1, 2))


def test_bad_npz_files_are_named(tmp_path):
    np.savez(tmp_path / "float.npz", arr_0=np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="float.npz.*uint8"):
        NpzSource(tmp_path / "float.npz")
    np.savez(tmp_path / "stats.npz", mu=np.zeros(3))
    with pytest.raises(ValueError, match="stats.npz.*no 'arr_0'"):
        NpzSource(tmp_path / "stats.npz")
    with pytest.raises(FileNotFoundError, match="nothing"):
        open_samples(tmp_path / "nothing")


def test_titok_and_adm_preprocessing(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (300, 517, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    from torchvision import transforms as T

    img = Image.open(tmp_path / "a.png").convert("RGB")
    titok = T.Compose([T.Resize(64, interpolation=T.InterpolationMode.BICUBIC, antialias=True), T.CenterCrop(64)])
    _, ours = EvalImages(tmp_path, 64, "titok")[0]
    assert torch.equal(ours, torch.from_numpy(np.array(titok(img))).permute(2, 0, 1))
    # ADM: halve with BOX while the short side >= 128 (300 -> 150 -> 75), then bicubic to 64, floor crop
    half = img.resize((258, 150), Image.BOX).resize((129, 75), Image.BOX)
    small = half.resize((round(129 * 64 / 75), 64), Image.BICUBIC)
    x = (small.size[0] - 64) // 2
    _, adm = EvalImages(tmp_path, 64, "adm")[0]
    assert torch.equal(adm, torch.from_numpy(np.array(small)[:, x : x + 64]).permute(2, 0, 1))
    assert not torch.equal(adm, ours)
    with pytest.raises(ValueError, match="asked for 3 images"):
        EvalImages(tmp_path, 64, limit=3)
