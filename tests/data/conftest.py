"""Tiny generated data for the data-layer tests: image folders and tar shards of noise images
(distinct per file), built in tmp dirs so nothing depends on files outside the repository."""
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "vistok/assets/samples").glob("*.jpg"))


def noise_image(seed, size=(12, 8), mode="RGB"):
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    return img.convert(mode)


def image_bytes(img, fmt):
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def write_tar(path, members):
    """``members``: (name, bytes) pairs, written in order."""
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def image_dir(tmp_path):
    """10 noise images, 12x8, mixed formats and modes, some nested, plus files to ignore."""
    root = tmp_path / "imgs"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    formats = [("a.png", "PNG", "RGB"), ("b.JPG", "JPEG", "RGB"), ("c.jpeg", "JPEG", "L"),
               ("d.webp", "WEBP", "RGB"), ("e.bmp", "BMP", "RGB"), ("sub/f.PNG", "PNG", "RGBA"),
               ("sub/g.png", "PNG", "P"), ("sub/deeper/h.png", "PNG", "RGB"), ("sub/i.jpg", "JPEG", "RGB"),
               ("j.png", "PNG", "RGB")]
    for i, (name, fmt, mode) in enumerate(formats):
        (root / name).write_bytes(image_bytes(noise_image(i, mode=mode), fmt))
    (root / "notes.txt").write_text("not an image")
    (root / ".x.png").write_bytes(image_bytes(noise_image(99), "PNG"))
    (root / ".hidden" / "y.png").write_bytes(image_bytes(noise_image(98), "PNG"))
    return root


@pytest.fixture
def shard_dir(tmp_path):
    """3 shards of uneven size (5, 3, 4 image samples; 12 in all) plus a sample with no image."""
    root = tmp_path / "shards"
    root.mkdir()
    sizes = [5, 3, 4]
    n = 0
    for s, size in enumerate(sizes):
        members = []
        for _ in range(size):
            fmt, ext = [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")][n % 3]
            members.append((f"part{s}/{n:05d}.{ext}", image_bytes(noise_image(n), fmt)))
            members.append((f"part{s}/{n:05d}.cls", str(n).encode()))
            n += 1
        if s == 1:
            members.append((f"part{s}/meta.json", b"{}"))  # a sample without an image: skipped
        write_tar(root / f"train-{s:04d}.tar", members)
    return root
