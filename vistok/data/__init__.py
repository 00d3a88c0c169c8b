"""Data for tokenizer training: image folders and tar shards with reproducible crops, a resumable
sampler/loader for distributed runs, and single-image helpers. Audio data comes with the audio families."""
from vistok.data.braces import expand_braces
from vistok.data.files import list_files
from vistok.data.image_folder import IMAGE_EXTENSIONS, ImageFolder
from vistok.data.images import load_image, open_rgb, save_image, to_uint8
from vistok.data.loader import ResumableLoader, build_image_loader, default_num_workers
from vistok.data.sampler import ResumableSampler
from vistok.data.seeding import derive_seed, make_generator
from vistok.data.shards import ImageShards, resolve_shards
from vistok.data.transforms import crop_and_flip

__all__ = [
    "IMAGE_EXTENSIONS", "ImageFolder", "ImageShards", "ResumableLoader", "ResumableSampler",
    "build_image_loader", "crop_and_flip", "default_num_workers", "derive_seed", "expand_braces",
    "list_files", "load_image", "make_generator", "open_rgb", "resolve_shards", "save_image", "to_uint8",
]
