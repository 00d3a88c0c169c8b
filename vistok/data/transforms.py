"""The training-time image transform shared by folder and shard datasets: shorter side resized
to the target size, a random (or center) square crop, an optional horizontal flip."""
from __future__ import annotations

from typing import Optional

import torch
from PIL import Image

from vistok.data.images import pil_to_tensor, resize_shorter


def crop_and_flip(img: Image.Image, size: int, generator: Optional[torch.Generator] = None,
                  random_crop: bool = True, random_flip: bool = True) -> torch.Tensor:
    """``(3, size, size)`` float tensor in [0, 1] from an RGB image.

    The shorter side is resized to ``size`` (bicubic, antialiased, as ``load_image``); the square
    crop is at a random offset when ``random_crop`` (else centered), and the result is mirrored
    left-right with probability 1/2 when ``random_flip``. All randomness comes from ``generator``
    (three draws, always in the same order, whatever the flags), which is required when either flag
    is set. With both flags off this equals ``vistok.data.images.load_image``."""
    if (random_crop or random_flip) and generator is None:
        raise ValueError("crop_and_flip: random_crop/random_flip need a torch.Generator")
    img = resize_shorter(img, size)
    w, h = img.size
    if generator is not None:
        dx = int(torch.randint(0, w - size + 1, (1,), generator=generator))
        dy = int(torch.randint(0, h - size + 1, (1,), generator=generator))
        flip = bool(torch.rand((1,), generator=generator) < 0.5)
    if random_crop:
        left, top = dx, dy
    else:
        left, top = (w - size) // 2, (h - size) // 2
    out = pil_to_tensor(img.crop((left, top, left + size, top + size)))
    if random_flip and flip:
        out = out.flip(-1)
    return out
