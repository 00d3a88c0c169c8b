"""A map-style dataset over a folder tree of images, with crops and flips that are a pure
function of (seed, epoch, index) so a resumed run sees exactly the same pixels."""
from __future__ import annotations

import operator
from pathlib import Path
from typing import List, Union

import torch
from torch.utils.data import Dataset

from vistok.data.files import list_files
from vistok.data.images import open_rgb
from vistok.data.seeding import make_generator
from vistok.data.transforms import crop_and_flip
from vistok.errors import InputError

PathLike = Union[str, Path]

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp")


class ImageFolder(Dataset):
    """Every image under ``root`` (recursive; .jpg .jpeg .png .webp .bmp in any case; hidden
    files skipped; sorted by relative path) as ``(3, image_size, image_size)`` float tensors in [0, 1].

    Each item is converted to RGB, its shorter side resized to ``image_size`` (bicubic,
    antialiased), then cropped to a square at a random offset (``random_crop``) or the center, and
    mirrored with probability 1/2 (``random_flip``). The randomness of item ``i`` comes from a
    ``torch.Generator`` seeded with ``(seed, epoch, i)``, never from global RNG state: call
    ``set_epoch`` once per epoch (``ResumableLoader`` does) and the same (seed, epoch, i) always
    gives the same tensor, in any worker and after a resume. With both flags off, item ``i`` equals
    ``load_image(paths[i], image_size)``.

    Raises FileNotFoundError when ``root`` is missing, ValueError (naming ``root`` and the
    extensions) when it holds no images, and ValueError naming the file when an item cannot be
    decoded."""

    def __init__(self, root: PathLike, image_size: int, random_crop: bool = True, random_flip: bool = True,
                 seed: int = 0):
        if int(image_size) <= 0:
            raise InputError(f"image_size must be positive, got {image_size}")
        self.root = Path(root)
        self.image_size = int(image_size)
        self.random_crop = bool(random_crop)
        self.random_flip = bool(random_flip)
        self.seed = int(seed)
        self.epoch = 0
        self.paths: List[Path] = list_files(self.root, IMAGE_EXTENSIONS, what="images")

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops/flips ``__getitem__`` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        index = operator.index(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images under {self.root}")
        index %= len(self)
        random = self.random_crop or self.random_flip
        generator = make_generator(self.seed, self.epoch, index) if random else None
        return crop_and_flip(open_rgb(self.paths[index]), self.image_size, generator,
                             self.random_crop, self.random_flip)

    def __repr__(self) -> str:
        return (f"ImageFolder({str(self.root)!r}, {len(self)} images, image_size={self.image_size}, "
                f"random_crop={self.random_crop}, random_flip={self.random_flip}, seed={self.seed})")
