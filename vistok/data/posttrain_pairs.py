"""RobusTok post-training data: decoder inputs made of generator-sampled tokens, paired with the
real images they were sampled around.

For each real image, the tokenizer's ids are the teacher; the generator samples the image's class
with each position kept from the teacher with probability sigma (0.7 in the paper) and sampled
otherwise; the mixed ids are decoded and saved as a PNG at the real image's relative path (suffix
``.png``). :class:`PostTrainPairs` reads the two folders back as ``(generated, real)`` tensors.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch.utils.data import Dataset

from vistok.data.files import list_files
from vistok.data.image_folder import IMAGE_EXTENSIONS
from vistok.data.images import load_image, save_image
from vistok.data.labelled_folder import LabelledImageFolder
from vistok.data.seeding import derive_seed, make_generator
from vistok.errors import InputError
from vistok.models.generator.images import check_pair, sample_images

PathLike = Union[str, Path]


def pick_subset(count: int, num_samples: Optional[int], seed: int) -> List[int]:
    """``num_samples`` distinct indices of ``range(count)`` drawn with ``seed`` (sorted), or all."""
    if num_samples is None or num_samples >= count:
        return list(range(count))
    generator = torch.Generator().manual_seed(derive_seed(seed, "subset"))
    return sorted(torch.randperm(count, generator=generator)[:num_samples].tolist())


@torch.no_grad()
def write_posttrain_pairs(tokenizer: torch.nn.Module, generator: torch.nn.Module, real_root: PathLike,
                          out_root: PathLike, sigma: float = 0.7, *, batch_size: int = 32, seed: int = 0,
                          num_samples: Optional[int] = None, skip_existing: bool = True,
                          autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                          classes: Optional[Sequence[str]] = None, flat: bool = False, **sampling) -> int:
    """Write the generated half of the pairs under ``out_root`` for the labelled folder
    ``real_root`` (``root/<class>/<image>``; class indices as in :class:`LabelledImageFolder`).

    Images are center-cropped at the tokenizer's ``image_size``; ``num_samples`` picks a seeded
    random subset (RobusTok: 200k of ImageNet train); sample ``i`` draws its randomness from
    ``(seed, i)``; ``flat``: ``real_root`` has no class folders (every image is class 0).
    ``sampling``: ``cfg_scale``, ``cfg_power``, ``temperature``, ``top_k``,
    ``top_p`` for :meth:`ARGenerator.generate` (the paper uses the generator's own gFID settings,
    e.g. RAR-B: temperature 1.02, cfg 6.0, cfg power 1.15). Existing PNGs are skipped with
    ``skip_existing`` (each is written whole, so an interrupted run can be resumed). Returns the
    number of PNGs written."""
    check_pair(generator, tokenizer)
    device = next(generator.parameters()).device
    dataset = LabelledImageFolder(real_root, tokenizer.config.image_size, classes=classes, flat=flat)
    targets = [Path(out_root) / rel.with_suffix(".png") for rel in dataset.relative_paths]
    if len(set(targets)) != len(targets):
        clash = next(t for t in targets if targets.count(t) > 1)
        raise InputError(f"{real_root}: two images map to {clash} (same name, different extension)")
    todo = [i for i in pick_subset(len(dataset), num_samples, seed)
            if not (skip_existing and targets[i].is_file())]
    length = generator.num_tokens
    for lo in range(0, len(todo), batch_size):
        chunk = todo[lo:lo + batch_size]
        items = [dataset[i] for i in chunk]
        images = torch.stack([image for image, _ in items]).to(device)
        labels = torch.tensor([label for _, label in items], device=device)
        with autocast():
            teacher = tokenizer.encode(images)[:, :length]
            streams = [make_generator(seed, "posttrain", i) for i in chunk]
            mixed = sample_images(generator, tokenizer, labels, streams, teacher_ids=teacher,
                                  teacher_keep_prob=sigma, **sampling)
        for i, image in zip(chunk, mixed.cpu()):
            save_image(image, targets[i])
    return len(todo)


class PostTrainPairs(Dataset):
    """``(generated, real)`` ``(3, S, S)`` float tensors in [0, 1]: every PNG under
    ``generated_root`` and the image at the same relative path (any image extension) under
    ``real_root``, both read as ``load_image(path, image_size)`` (shorter side resized, center
    crop; the crop the generated image was made from). With ``random_flip`` both are mirrored
    together, decided per (seed, epoch, index) without global RNG.

    Raises ValueError naming a generated file whose real counterpart is missing."""

    def __init__(self, generated_root: PathLike, real_root: PathLike, image_size: int, random_flip: bool = False,
                 seed: int = 0):
        self.generated_root, self.real_root = Path(generated_root), Path(real_root)
        self.image_size, self.random_flip, self.seed, self.epoch = int(image_size), bool(random_flip), int(seed), 0
        real: Dict[Path, Path] = {}
        for path in list_files(self.real_root, IMAGE_EXTENSIONS, what="images"):
            key = path.relative_to(self.real_root).with_suffix("")
            if key in real:
                raise InputError(f"{path}: {real[key]} has the same name, and pairs are matched by the name "
                                 "without its extension")
            real[key] = path
        self.pairs: List[Tuple[Path, Path]] = []
        for path in list_files(self.generated_root, ("png",), what="generated PNGs"):
            key = path.relative_to(self.generated_root).with_suffix("")
            if key not in real:
                raise InputError(f"{path}: no real image {key}.* under {self.real_root}")
            self.pairs.append((path, real[key]))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        generated_path, real_path = self.pairs[index]
        generated = load_image(generated_path, self.image_size)
        real = load_image(real_path, self.image_size)
        if self.random_flip and derive_seed(self.seed, self.epoch, index % len(self)) & 1:
            generated, real = generated.flip(-1), real.flip(-1)
        return generated, real
