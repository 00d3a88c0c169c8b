"""Reading and writing single images the way the tokenizers expect them: RGB in [0, 1],
shorter side resized then center-cropped to a square, PNG out with uint8 rounding."""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Optional, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vistok.errors import UnreadableFileError

PathLike = Union[str, Path]


def open_rgb(source: Union[PathLike, BinaryIO], name: Optional[object] = None) -> Image.Image:
    """Decode ``source`` (a path or a binary file object) into an RGB Pillow image. Errors name
    ``name`` (default: ``source``): FileNotFoundError when a path is missing, ValueError when Pillow
    cannot read the bytes."""
    label = source if name is None else name
    if isinstance(source, (str, Path)) and os.path.exists(source) and not os.path.isdir(source) \
            and not os.path.isfile(source):  # a FIFO or a device: opening it could block forever
        raise UnreadableFileError(f"{label}: not a regular file")
    try:
        with Image.open(source) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"{label}: no such file") from None
    except Image.DecompressionBombError as err:  # declared size above twice Pillow's pixel limit
        raise UnreadableFileError(f"{label}: refused, the image is too large to decode ({err})") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise UnreadableFileError(f"{label}: not an image Pillow can read ({type(err).__name__})") from None


def resize_shorter(img: Image.Image, size: int) -> Image.Image:
    """Resize so the shorter side is ``size`` (bicubic, antialiased; the longer side rounded, never
    below ``size``)."""
    w, h = img.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return img.resize(new, Image.BICUBIC, reducing_gap=None)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB Pillow image -> ``(3, H, W)`` float tensor in [0, 1]."""
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0


def load_image(path: PathLike, size: int) -> torch.Tensor:
    """``(3, size, size)`` float tensor in [0, 1]: any mode converted to RGB, the shorter side resized
    to ``size`` (bicubic, antialiased), then a center crop."""
    path = Path(path)
    rgb = resize_shorter(open_rgb(path), size)
    w, h = rgb.size
    left, top = (w - size) // 2, (h - size) // 2
    return pil_to_tensor(rgb.crop((left, top, left + size, top + size)))


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
