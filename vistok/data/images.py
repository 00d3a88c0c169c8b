"""Reading and writing single images the way the tokenizers expect them: RGB in [0, 1],
shorter side resized then center-cropped to a square, PNG out with uint8 rounding."""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

PathLike = Union[str, Path]


def load_image(path: PathLike, size: int) -> torch.Tensor:
    """``(3, size, size)`` float tensor in [0, 1]: any mode converted to RGB, the shorter side resized
    to ``size`` (bicubic, antialiased), then a center crop."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            rgb = img.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not an image Pillow can read ({type(err).__name__})") from None
    w, h = rgb.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    rgb = rgb.resize(new, Image.BICUBIC, reducing_gap=None)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    rgb = rgb.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats -> uint8 with the rounding the FID protocols use (clamp, x*255, round)."""
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)


def save_image(image: torch.Tensor, path: PathLike) -> Path:
    """Write a ``(3, H, W)`` [0, 1] tensor as an 8-bit PNG (written whole, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = to_uint8(image).permute(1, 2, 0).cpu().numpy()
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(array).save(tmp, format="PNG")
    tmp.replace(path)
    return path
