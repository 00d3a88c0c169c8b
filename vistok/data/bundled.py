"""The sample photos shipped inside the package (``vistok/assets/samples``): real images for the
demo, tests, parity and benchmark scripts, readable with no data set at hand."""
from __future__ import annotations

from importlib import resources
from typing import List

import numpy as np
import torch
from PIL import Image


def sample_names() -> List[str]:
    """File names of the bundled photos, sorted."""
    folder = resources.files("vistok") / "assets" / "samples"
    return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".jpg"))


def load_samples(size: int = 256) -> torch.Tensor:
    """The bundled photos as a ``(N, 3, size, size)`` float tensor in [0, 1] (files are 256x256;
    other sizes are resized bicubic with antialiasing)."""
    folder = resources.files("vistok") / "assets" / "samples"
    images = []
    for name in sample_names():
        with resources.as_file(folder / name) as path:
            img = Image.open(path).convert("RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.BICUBIC, reducing_gap=None)
        images.append(torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255)
    return torch.stack(images)
