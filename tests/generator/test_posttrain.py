"""RobusTok post-training pairs: generated PNGs mirror the real folder; the paired dataset."""
import pytest
import torch

from tests.generator.conftest import tiny_generator
from vistok.data.images import load_image
from vistok.data.posttrain_pairs import PostTrainPairs, pick_subset, write_posttrain_pairs
from vistok.hub.loading import load_tokenizer

REAL = ["cat/a.png", "cat/b.png", "cat/c.png", "dog/deep/y.jpg", "dog/x.jpg"]


@pytest.fixture
def models(titok_dir):
    return load_tokenizer(titok_dir), tiny_generator(codebook_size=64, num_tokens=8, num_classes=2)


def generated(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_pairs_mirror_the_folder_and_sigma_one_reconstructs(labelled_root, models, tmp_path):
    tokenizer, generator = models
    out = tmp_path / "pairs"
    assert write_posttrain_pairs(tokenizer, generator, labelled_root, out, sigma=1.0, batch_size=2) == 5
    assert generated(out) == sorted(p.rsplit(".", 1)[0] + ".png" for p in REAL)
    # sigma = 1 keeps every teacher token: the PNG is the tokenizer's reconstruction
    real = load_image(labelled_root / "dog/deep/y.jpg", 32)
    with torch.no_grad():
        recon = tokenizer.decode(tokenizer.encode(real[None]))[0].clamp(0, 1)
    torch.testing.assert_close(load_image(out / "dog/deep/y.png", 32), recon, atol=1 / 255 + 1e-6, rtol=0)
    assert write_posttrain_pairs(tokenizer, generator, labelled_root, out, sigma=1.0) == 0  # resumable: all exist


def test_partial_teacher_forcing_and_subset(labelled_root, models, tmp_path):
    tokenizer, generator = models
    out = tmp_path / "pairs"
    count = write_posttrain_pairs(tokenizer, generator, labelled_root, out, sigma=0.5, num_samples=3, seed=2,
                                  cfg_scale=2.0, temperature=1.0)
    assert count == 3 and len(generated(out)) == 3
    assert pick_subset(5, 3, 2) == pick_subset(5, 3, 2) and len(set(pick_subset(5, 3, 2))) == 3


def test_paired_dataset(labelled_root, models, tmp_path):
    tokenizer, generator = models
    out = tmp_path / "pairs"
    write_posttrain_pairs(tokenizer, generator, labelled_root, out, sigma=0.7, batch_size=5)
    pairs = PostTrainPairs(out, labelled_root, 32)
    assert len(pairs) == 5
    assert [(g.relative_to(out).as_posix(), r.relative_to(labelled_root).as_posix()) for g, r in pairs.pairs][3] == \
        ("dog/deep/y.png", "dog/deep/y.jpg")
    fake, real = pairs[3]
    assert fake.shape == real.shape == (3, 32, 32)
    torch.testing.assert_close(real, load_image(labelled_root / "dog/deep/y.jpg", 32))
    flipping = PostTrainPairs(out, labelled_root, 32, random_flip=True, seed=1)
    for i in range(5):
        f, r = flipping[i]
        f0, r0 = pairs[i]
        same = torch.equal(f, f0) and torch.equal(r, r0)
        assert same or (torch.equal(f, f0.flip(-1)) and torch.equal(r, r0.flip(-1)))  # flipped together
    (out / "cat/zzz.png").write_bytes((out / "cat/a.png").read_bytes())
    with pytest.raises(ValueError, match="zzz.png"):
        PostTrainPairs(out, labelled_root, 32)
