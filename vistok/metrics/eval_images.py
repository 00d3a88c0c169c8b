"""Evaluation images exactly as the published protocols prepare them, as uint8 tensors.

- ``"titok"`` (TiTok / RobusTok rFID, torch-fidelity folders with resize): torchvision
  ``Resize(size, bicubic, antialias=True)`` on the shorter side, then ``CenterCrop(size)``.
- ``"adm"`` (ADM reference batches, LlamaGen): ``center_crop_arr`` - halve with a BOX filter while
  the shorter side is at least twice the size, bicubic to the size, then a floor-offset crop.
- ``"none"``: the file as it is (generated samples that already have the evaluation size).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from vistok.data.files import list_files
from vistok.data.image_folder import IMAGE_EXTENSIONS
from vistok.data.images import open_rgb
from vistok.errors import InputError

PREPROCESSING = {
    "titok": "torchvision Resize({size}, bicubic, antialias=True) + CenterCrop({size}) on the RGB PIL image, uint8",
    "adm": "ADM center_crop_arr({size}): BOX halving while short side >= 2*{size}, bicubic to {size}, "
           "floor-offset center crop, uint8",
    "none": "decoded file as is (RGB, uint8), no resize",
}


def _titok(img: Image.Image, size: int) -> np.ndarray:
    from torchvision import transforms as T

    crop = T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC, antialias=True), T.CenterCrop(size)])
    return np.asarray(crop(img))


def _adm(img: Image.Image, size: int) -> np.ndarray:
    while min(*img.size) >= 2 * size:
        img = img.resize(tuple(x // 2 for x in img.size), resample=Image.BOX)
    scale = size / min(*img.size)
    img = img.resize(tuple(round(x * scale) for x in img.size), resample=Image.BICUBIC)
    arr = np.asarray(img)
    y, x = (arr.shape[0] - size) // 2, (arr.shape[1] - size) // 2
    return arr[y : y + size, x : x + size]


_FUNCS: Dict[str, Callable[[Image.Image, int], np.ndarray]] = {"titok": _titok, "adm": _adm,
                                                                  "none": lambda img, size: np.asarray(img)}


def describe_preprocessing(name: str, size: Optional[int]) -> str:
    if name not in PREPROCESSING:
        raise ValueError(f"unknown preprocessing {name!r}; choose one of {sorted(PREPROCESSING)}")
    return PREPROCESSING[name].format(size=size)


class EvalImages(Dataset):
    """The first ``limit`` images under ``root`` (sorted by relative path, recursive, as
    ``vistok.data.ImageFolder`` lists them) as ``(index, uint8 (3, S, S))`` items."""

    def __init__(self, root: Union[str, Path], size: Optional[int] = 256, preprocessing: str = "titok",
                 limit: Optional[int] = None):
        describe_preprocessing(preprocessing, size)
        if preprocessing != "none" and not size:
            raise ValueError(f"preprocessing {preprocessing!r} needs an image size")
        self.root = Path(root)
        self.size = size
        self.preprocessing = preprocessing
        self.paths: List[Path] = list_files(self.root, IMAGE_EXTENSIONS, what="images")
        if limit is not None:
            if limit > len(self.paths):
                raise InputError(f"{self.root}: asked for {limit} images, found only {len(self.paths)}")
            self.paths = self.paths[:limit]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tuple[int, torch.Tensor]:
        arr = _FUNCS[self.preprocessing](open_rgb(self.paths[index]), self.size)
        return index, torch.from_numpy(np.array(arr, dtype=np.uint8)).permute(2, 0, 1).contiguous()

    def content_sha256(self) -> str:
        """sha256 over every file's relative path and bytes: the reference-statistics cache key."""
        digest = hashlib.sha256()
        for path in self.paths:
            digest.update(path.relative_to(self.root).as_posix().encode() + b"\0")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            digest.update(b"\0")
        return digest.hexdigest()

    def describe(self) -> Dict[str, object]:
        return {"path": str(self.root), "count": len(self), "preprocessing": self.preprocessing,
                "preprocessing_detail": describe_preprocessing(self.preprocessing, self.size), "image_size": self.size}
