import pytest
import torch

from tests.data.conftest import SAMPLES, image_bytes, noise_image
from vistok.data import ImageFolder, load_image
from vistok.data.images import pil_to_tensor, resize_shorter


def test_lists_images_recursively_sorted_case_insensitive(image_dir):
    ds = ImageFolder(image_dir, 8)
    names = [p.relative_to(image_dir).as_posix() for p in ds.paths]
    assert names == ["a.png", "b.JPG", "c.jpeg", "d.webp", "e.bmp", "j.png", "sub/deeper/h.png", "sub/f.PNG",
                     "sub/g.png", "sub/i.jpg"]
    assert len(ds) == 10


def test_items_are_rgb_floats_in_unit_range(image_dir):
    ds = ImageFolder(image_dir, 8)
    for i in range(len(ds)):
        x = ds[i]
        assert x.shape == (3, 8, 8) and x.dtype == torch.float32
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_without_randomness_equals_load_image(tmp_path):
    (tmp_path / "s").mkdir()
    target = tmp_path / "s" / SAMPLES[0].name
    target.write_bytes(SAMPLES[0].read_bytes())
    ds = ImageFolder(tmp_path / "s", 24, random_crop=False, random_flip=False)
    assert torch.equal(ds[0], load_image(target, 24))


def test_crops_depend_on_seed_epoch_index_not_global_rng(image_dir):
    a = ImageFolder(image_dir, 6, seed=7)
    b = ImageFolder(image_dir, 6, seed=7)
    torch.manual_seed(123)
    first = a[3]
    torch.manual_seed(456)
    torch.rand(10)
    assert torch.equal(first, b[3])
    seen = set()
    for epoch in range(8):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        assert torch.equal(a[3], b[3])
        seen.add(a[3].numpy().tobytes())
    assert len(seen) > 2  # 12x8 -> 9x6: crop offsets 0..3 and flips vary with the epoch
    other_seed = ImageFolder(image_dir, 6, seed=8)
    assert any(not torch.equal(other_seed[i], a[i]) for i in range(len(a)))


def test_random_crop_and_flip_are_crops_of_the_resized_image(tmp_path):
    (tmp_path / "r").mkdir()
    img = noise_image(5, size=(20, 10))
    (tmp_path / "r" / "x.png").write_bytes(image_bytes(img, "PNG"))
    ds = ImageFolder(tmp_path / "r", 10, seed=1)
    full = pil_to_tensor(resize_shorter(img, 10))
    offsets, flips = set(), set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        x = ds[0]
        for dx in range(11):
            crop = full[:, :, dx:dx + 10]
            if torch.allclose(x, crop):
                offsets.add(dx), flips.add(False)
            elif torch.allclose(x, crop.flip(-1)):
                offsets.add(dx), flips.add(True)
    assert len(offsets) > 2 and flips == {False, True}


def test_missing_root_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ImageFolder(tmp_path / "nowhere", 8)


def test_no_images_names_root_and_extensions(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match=r"empty.*\.jpg.*\.webp"):
        ImageFolder(tmp_path / "empty", 8)


def test_unreadable_file_names_it(image_dir):
    (image_dir / "broken.png").write_bytes(b"definitely not a png")
    ds = ImageFolder(image_dir, 8)
    index = [p.name for p in ds.paths].index("broken.png")
    with pytest.raises(ValueError, match="broken.png"):
        ds[index]
    with pytest.raises(IndexError):
        ds[len(ds)]
