"""Class-labelled image folders in the ImageNet layout: ``root/<class name>/.../<image>``."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch.utils.data import Dataset

from vistok.data.image_folder import ImageFolder
from vistok.errors import InputError

PathLike = Union[str, Path]


def class_folders(root: PathLike) -> List[str]:
    """The non-hidden subfolders of ``root``, sorted: class ``i`` is the ``i``-th name (as
    torchvision's ImageFolder numbers them, so the ImageNet synset folders give the usual indices)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


class LabelledImageFolder(Dataset):
    """Every image under ``root/<class>/`` as ``(image, class index)``; images are read by
    :class:`ImageFolder` (same resizing, crops and flips, same sorted order).

    ``classes``: the class names in index order (default :func:`class_folders`); pass the full
    list when ``root`` holds only some classes, so indices keep their meaning. Raises ValueError
    naming the file for an image directly under ``root`` or under a folder not in ``classes``.
    ``flat``: a folder without class subfolders; every image under it is class 0, named after
    ``root`` (a one-class generator, e.g. on the project corpus)."""

    def __init__(self, root: PathLike, image_size: int, random_crop: bool = False, random_flip: bool = False,
                 seed: int = 0, classes: Optional[Sequence[str]] = None, flat: bool = False):
        self.root = Path(root)
        self.images = ImageFolder(root, image_size, random_crop=random_crop, random_flip=random_flip, seed=seed)
        self.relative_paths: List[Path] = [p.relative_to(self.root) for p in self.images.paths]
        if flat:
            if classes is not None and len(classes) != 1:
                raise InputError(f"{self.root}: a flat folder is one class; got {len(classes)} class names")
            self.classes: List[str] = list(classes) if classes is not None else [self.root.name]
            self.labels: List[int] = [0] * len(self.relative_paths)
            return
        self.classes = list(classes) if classes is not None else class_folders(root)
        index = {name: i for i, name in enumerate(self.classes)}
        self.labels = []
        for rel in self.relative_paths:
            if len(rel.parts) < 2:
                raise InputError(f"{self.root / rel}: image directly under {self.root}; a labelled folder keeps "
                                 "each image under a class subfolder (root/<class>/<image>, the ImageNet layout)")
            if rel.parts[0] not in index:
                raise InputError(f"{self.root / rel}: folder {rel.parts[0]!r} is not one of the "
                                 f"{len(self.classes)} classes given")
            self.labels.append(index[rel.parts[0]])

    @property
    def paths(self) -> List[Path]:
        return self.images.paths

    def set_epoch(self, epoch: int) -> None:
        self.images.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        return f"LabelledImageFolder({str(self.root)!r}, {len(self)} images, {len(self.classes)} classes)"
