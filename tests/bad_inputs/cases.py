"""The bad-input cases: malformed, empty, truncated, mislabelled and extreme images, audio, token-id
arrays, recipes and checkpoints, as a clumsy user or an attacker would pick them.

Nothing here is a stored blob: every file is made at test time from a fixed seed (``SEED`` and the
case's name), with Pillow, soundfile, numpy, safetensors and torch, and the byte mutations of valid
files (flip, truncate, zero, splice) draw their offsets from the same seeded generator, so a case
writes the same bytes on every run and machine. ``test_bad_inputs.py`` runs each through the real
command line.

A case is a name, the command it exercises and a ``make(ws) -> Prepared`` function that writes its
files under ``ws.dir`` and returns the arguments, where the command would write, which names a
refusal must mention, and what outcome is required (``accept``, ``refuse`` or ``either``).
"""
from __future__ import annotations

import io
import json
import os
import random
import shutil
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

SEED = 16


@dataclass
class Prepared:
    argv: List[str]
    output: Path  # what the command writes (file or directory): unchanged when it refuses
    names: List[str]  # a refusal's first line names one of these (the file or argument at fault)
    expect: str = "either"  # accept | refuse | either
    outputs: Optional[int] = None  # files an accepted run leaves in ``output`` (a directory)
    nonfinite: bool = False  # the input holds NaN/Inf: an accepted run says so or writes only finite values


@dataclass(frozen=True)
class Case:
    id: str
    command: str  # image | audio | decode | audio-decode | recipe | train | model | audio-model
    make: Callable[["Workspace"], Prepared]
    isolate: bool = False  # run in a subprocess with a timeout: a hang is possible


@dataclass
class Workspace:
    """What a case may use: its own directory, its seeded generators and the shared tiny models."""

    dir: Path
    case_id: str
    titok: Path  # a tiny TiTok save_pretrained directory (never modify: copy it)
    wavtok: Path  # a tiny WavTokenizer save_pretrained directory (never modify: copy it)
    image: Path  # a valid photo
    speech: Path  # a valid speech FLAC
    images_root: Path  # train/ and val/ folders of valid images
    fixture: Callable[[str], Path] = field(repr=False, default=None)  # lazily built shared inputs

    def __post_init__(self):
        self.rng = random.Random(f"{SEED}:{self.case_id}")
        self.np = np.random.RandomState(self.rng.randrange(2**31))

    @property
    def marker(self) -> Path:
        """The file a planted pickle creates when it is unpickled; it must never appear."""
        return self.dir / "PICKLE-RAN"

    def write(self, name: str, data) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(bytes(data))
        return path


CASES: List[Case] = []


def add(case_id: str, command: str, make: Callable[[Workspace], Prepared], isolate: bool = False) -> None:
    assert all(c.id != case_id for c in CASES), case_id
    CASES.append(Case(case_id, command, make, isolate))


# ---------------------------------------------------------------- byte mutations

def flip_bits(data: bytes, rng: random.Random, count: int, start: int = 0, stop: Optional[int] = None) -> bytes:
    out = bytearray(data)
    stop = len(out) if stop is None else min(stop, len(out))
    for _ in range(count):
        i = rng.randrange(start, stop)
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def zero_range(data: bytes, start: int, length: int) -> bytes:
    out = bytearray(data)
    out[start:start + length] = bytes(len(out[start:start + length]))
    return bytes(out)


def mutations(data: bytes, same: bytes, other: bytes, rng: random.Random) -> Dict[str, bytes]:
    """Eleven damaged copies of ``data``; ``same`` is another valid file of its format, ``other`` one
    of another format (for the splices)."""
    n = len(data)
    head = min(64, n)
    return {
        "empty": b"",
        "trunc-8": data[:8],
        "trunc-half": data[: n // 2],
        "trunc-last": data[:-1],
        "trunc-random": data[: rng.randrange(1, n)],
        "flip-header": flip_bits(data, rng, 1, 0, head),
        "flip-8": flip_bits(data, rng, 8),
        "flip-1pct": flip_bits(data, rng, max(1, n // 100)),
        "zero-header": zero_range(data, rng.randrange(0, max(1, head - 16)), 16),
        "zero-quarter": zero_range(data, n // 2 - n // 8, n // 4),
        "splice-same": data[: n // 2] + same[len(same) // 2:],
        "splice-other": data[: n // 2] + other[len(other) // 2:],
    }


MUST_REFUSE = {"empty", "trunc-8"}


# ---------------------------------------------------------------- planted pickles

class Plant:
    """Unpickling this calls ``open(marker, "w")``: the marker file appears if anything unpickles it
    without restrictions (``pickle.load``, ``torch.load(weights_only=False)``)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def raw_pickle(marker: Path) -> bytes:
    import pickle

    return pickle.dumps({"state_dict": {"weight": Plant(marker)}})


def torch_pickle(marker: Path, path: Path) -> Path:
    import torch

    torch.save({"state_dict": {"weight": torch.zeros(2)}, "hook": Plant(marker)}, path)
    return path


# ---------------------------------------------------------------- images

IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "gif": "GIF", "webp": "WEBP", "tif": "TIFF"}


def picture(rs: np.random.RandomState, w: int = 48, h: int = 40) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255.0 / w, y * 255.0 / h, (x + y) * 127.0 / (w + h)], -1) + rs.normal(0, 20, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def encode_image(image, fmt: str, **kwargs) -> bytes:
    from PIL import Image

    img = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_declaring(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB pixels, with whatever data ``idat`` holds."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(idat))
            + png_chunk(b"IEND", b""))


def image_run(ws: Workspace, *paths: Path, expect: str = "either", names=None, nonfinite: bool = False) -> Prepared:
    out = ws.dir / "out"
    return Prepared(["reconstruct", *map(str, paths), "--model", str(ws.titok), "-o", str(out), "--device", "cpu"],
                    out, names or [str(p) for p in paths], expect, outputs=len(paths), nonfinite=nonfinite)


def _image_mutation(ext: str, name: str):
    def make(ws: Workspace) -> Prepared:
        fmt = IMAGE_FORMATS[ext]
        data = encode_image(picture(ws.np), fmt)
        same = encode_image(picture(ws.np), fmt)
        other_ext = sorted(IMAGE_FORMATS)[(sorted(IMAGE_FORMATS).index(ext) + 1) % len(IMAGE_FORMATS)]
        other = encode_image(picture(ws.np), IMAGE_FORMATS[other_ext])
        path = ws.write(f"{ext}-{name}.{ext}", mutations(data, same, other, ws.rng)[name])
        return image_run(ws, path, expect="refuse" if name in MUST_REFUSE else "either")
    return make


for _ext in IMAGE_FORMATS:
    add(f"image-{_ext}-valid", "image",
        lambda ws, e=_ext: image_run(ws, ws.write(f"ok.{e}", encode_image(picture(ws.np), IMAGE_FORMATS[e])),
                                     expect="accept"))
    for _name in mutations(b"0123456789" * 10, b"x" * 10, b"y" * 10, random.Random(0)):
        add(f"image-{_ext}-{_name}", "image", _image_mutation(_ext, _name))


def _pil(ws: Workspace, name: str, build, fmt: str, expect: str = "accept", nonfinite: bool = False, **kwargs):
    return image_run(ws, ws.write(name, encode_image(build(ws), fmt, **kwargs)), expect=expect, nonfinite=nonfinite)


def _mode(mode: str):
    def build(ws):
        from PIL import Image

        return Image.fromarray(picture(ws.np)).convert(mode)
    return build


def _sized(w: int, h: int):
    def build(ws):
        return picture(ws.np, w, h)
    return build


def _float_image(values: Optional[float]):
    def build(ws):
        from PIL import Image

        f = picture(ws.np)[..., 0].astype(np.float32)
        if values is not None:
            f[::3, ::5] = values
        return Image.fromarray(f, mode="F")
    return build


def _uint16(ws):
    from PIL import Image

    return Image.fromarray(picture(ws.np)[..., 0].astype(np.uint16) * 257)


def _int32(ws):
    from PIL import Image

    return Image.fromarray(picture(ws.np)[..., 0].astype(np.int32) * 65536)


IMAGE_VARIANTS = [
    ("gray-L.png", _mode("L"), "PNG"), ("gray-alpha-LA.png", _mode("LA"), "PNG"), ("palette-P.png", _mode("P"), "PNG"),
    ("palette-P.gif", _mode("P"), "GIF"), ("rgba.png", _mode("RGBA"), "PNG"), ("rgba.webp", _mode("RGBA"), "WEBP"),
    ("bilevel-1.png", _mode("1"), "PNG"), ("bilevel-1.tif", _mode("1"), "TIFF"), ("cmyk.jpg", _mode("CMYK"), "JPEG"),
    ("cmyk.tif", _mode("CMYK"), "TIFF"), ("ycbcr.jpg", _mode("YCbCr"), "JPEG"), ("lab.tif", _mode("LAB"), "TIFF"),
    ("gray-16bit.png", _uint16, "PNG"), ("gray-16bit.tif", _uint16, "TIFF"), ("gray-32bit-I.tif", _int32, "TIFF"),
    ("float-F.tif", _float_image(None), "TIFF"), ("one-pixel.png", _sized(1, 1), "PNG"),
    ("one-pixel.jpg", _sized(1, 1), "JPEG"), ("two-by-two.bmp", _sized(2, 2), "BMP"),
    ("row-1x10000.png", _sized(10000, 1), "PNG"), ("column-10000x1.png", _sized(1, 10000), "PNG"),
    ("wide-3x1000.jpg", _sized(1000, 3), "JPEG"), ("large-2048.png", _sized(2048, 2048), "PNG"),
]
for _name, _build, _fmt in IMAGE_VARIANTS:
    add(f"image-{_name}", "image", lambda ws, n=_name, b=_build, f=_fmt: _pil(ws, n, b, f))

add("image-float-F-nan.tif", "image", lambda ws: _pil(ws, "nan.tif", _float_image(float("nan")), "TIFF",
                                                      expect="either", nonfinite=True))
add("image-float-F-inf.tif", "image", lambda ws: _pil(ws, "inf.tif", _float_image(float("inf")), "TIFF",
                                                      expect="either", nonfinite=True))
add("image-float-F-neginf.tif", "image", lambda ws: _pil(ws, "neginf.tif", _float_image(float("-inf")), "TIFF",
                                                         expect="either", nonfinite=True))


def _frames(ws):
    from PIL import Image

    return [Image.fromarray(picture(ws.np)) for _ in range(3)]


def _animated(fmt: str, ext: str):
    def make(ws):
        frames = _frames(ws)
        buf = io.BytesIO()
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=40, loop=0)
        return image_run(ws, ws.write(f"animated.{ext}", buf.getvalue()), expect="accept")
    return make


add("image-animated-gif", "image", _animated("GIF", "gif"))
add("image-animated-webp", "image", _animated("WEBP", "webp"))
add("image-animated-apng", "image", _animated("PNG", "png"))
add("image-multipage-tiff", "image", _animated("TIFF", "tif"))
add("image-progressive-jpeg", "image", lambda ws: _pil(ws, "progressive.jpg", _sized(48, 40), "JPEG", progressive=True))
add("image-jpeg-quality-1", "image", lambda ws: _pil(ws, "q1.jpg", _sized(48, 40), "JPEG", quality=1))
add("image-png-interlaced-flag", "image",  # Adam7 flag set on a non-interlaced stream: a lie in the header
    lambda ws: image_run(ws, ws.write("interlace-lie.png", _set_png_interlace(encode_image(picture(ws.np), "PNG")))))


def _set_png_interlace(data: bytes) -> bytes:
    body = bytearray(data[16:29])
    body[12] = 1
    return data[:16] + bytes(body) + struct.pack(">I", zlib.crc32(b"IHDR" + bytes(body)) & 0xFFFFFFFF) + data[33:]


def _exif_rotated(ws):
    from PIL import Image

    img = Image.fromarray(picture(ws.np))
    exif = img.getexif()
    exif[0x0112] = 6  # orientation: rotate 90
    return image_run(ws, ws.write("exif-rotated.jpg", encode_image(img, "JPEG", exif=exif.tobytes())), expect="accept")


add("image-exif-orientation", "image", _exif_rotated)


def _bomb(name: str, data_fn, expect: str = "refuse"):
    return lambda ws: image_run(ws, ws.write(name, data_fn(ws)), expect=expect)


add("image-bomb-png-100000x100000", "image", _bomb("bomb.png", lambda ws: png_declaring(100000, 100000)))
add("image-bomb-png-10000x9000-no-data", "image", _bomb("bomb-warn.png", lambda ws: png_declaring(10000, 9000)))
add("image-bomb-png-2^31", "image", _bomb("bomb-max.png", lambda ws: png_declaring(2**31 - 1, 2**31 - 1)))
add("image-png-zero-size", "image", _bomb("zero.png", lambda ws: png_declaring(0, 0)))
add("image-bomb-bmp-header", "image", _bomb("bomb.bmp", lambda ws: _bmp_declaring(60000, 60000)))
add("image-bomb-gif-header", "image", _bomb("bomb.gif", lambda ws: _gif_declaring(65535, 65535)))
add("image-bomb-jpeg-header", "image", _bomb("bomb.jpg", lambda ws: _jpeg_declaring(
    encode_image(picture(ws.np), "JPEG"), 65000, 65000)))
add("image-bomb-tiff-header", "image", _bomb("bomb.tif", lambda ws: _tiff_declaring(
    encode_image(picture(ws.np), "TIFF"), 2**31, 2**31)))
add("image-png-zeros-4096x4096", "image",  # a legitimately large, highly compressed picture: accepted
    _bomb("zeros.png", lambda ws: encode_image(np.zeros((4096, 4096, 3), np.uint8), "PNG"), expect="accept"))


def _bmp_declaring(w: int, h: int) -> bytes:
    header = struct.pack("<2sIHHI", b"BM", 54 + 16, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 16, 2835, 2835, 0, 0)
    return header + info + bytes(16)


def _gif_declaring(w: int, h: int) -> bytes:
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0) + b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0)
            + b"\x02\x02\x44\x01\x00\x3b")


def _jpeg_declaring(data: bytes, w: int, h: int) -> bytes:
    out = bytearray(data)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        i = out.find(marker)
        if i >= 0:
            out[i + 5:i + 9] = struct.pack(">HH", h, w)
    return bytes(out)


def _tiff_declaring(data: bytes, w: int, h: int) -> bytes:
    out = bytearray(data)
    order = "<" if out[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", out[4:8])
    (count,) = struct.unpack(order + "H", out[ifd:ifd + 2])
    for k in range(count):
        at = ifd + 2 + 12 * k
        tag, kind = struct.unpack(order + "HH", out[at:at + 4])
        if tag in (256, 257):
            out[at + 2:at + 12] = struct.pack(order + "HII", 4, 1, w if tag == 256 else h)
    return bytes(out)


def _wav_bytes(ws: Workspace) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, tone(ws.np, 2400, 24000), 24000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


MISLABELLED_IMAGES = {
    "wav-named.png": lambda ws: _wav_bytes(ws),
    "text-named.jpg": lambda ws: "a holiday photo, honest\n",
    "html-named.png": lambda ws: "<html><body><img src=x onerror=alert(1)></body></html>",
    "svg-named.png": lambda ws: '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "npy-named.png": lambda ws: _npy_bytes(np.zeros((4, 4), np.float32)),
    "zip-named.png": lambda ws: _zip_bytes(),
    "pdf-named.jpg": lambda ws: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
    "random-bytes.png": lambda ws: bytes(ws.rng.randrange(256) for _ in range(4096)),
    "png-magic-only.png": lambda ws: b"\x89PNG\r\n\x1a\n",
    "nul-bytes.jpg": lambda ws: bytes(1024),
    "pickle-named.png": lambda ws: raw_pickle(ws.marker),
}
for _name, _data in MISLABELLED_IMAGES.items():
    add(f"image-{_name}", "image", lambda ws, n=_name, d=_data: image_run(ws, ws.write(n, d(ws)), expect="refuse"))

add("image-jpeg-named.png", "image",  # the content decides, not the extension
    lambda ws: image_run(ws, ws.write("photo.png", encode_image(picture(ws.np), "JPEG")), expect="accept"))
add("image-png-named.gif", "image",
    lambda ws: image_run(ws, ws.write("photo.gif", encode_image(picture(ws.np), "PNG")), expect="accept"))
add("image-no-extension", "image",
    lambda ws: image_run(ws, ws.write("photo", encode_image(picture(ws.np), "PNG")), expect="accept"))


def _directory_named(ws):
    (ws.dir / "folder.png").mkdir()
    return image_run(ws, ws.dir / "folder.png", expect="refuse")


def _symlink_loop(name: str, run):
    def make(ws):
        a, b = ws.dir / name, ws.dir / f"other-{name}"
        os.symlink(b, a)
        os.symlink(a, b)
        return run(ws, a, expect="refuse")
    return make


def _dangling(name: str, run):
    def make(ws):
        link = ws.dir / name
        os.symlink(ws.dir / "gone" / name, link)
        return run(ws, link, expect="refuse")
    return make


def _fifo(name: str, run):
    def make(ws):
        os.mkfifo(ws.dir / name)
        return run(ws, ws.dir / name, expect="refuse")
    return make


def _unicode_name(ws):
    return image_run(ws, ws.write("фото 写真 ☃.png", encode_image(picture(ws.np), "PNG")), expect="accept")


def _same_stem(ws):
    a = ws.write("a/photo.png", encode_image(picture(ws.np), "PNG"))
    b = ws.write("b/photo.png", encode_image(picture(ws.np), "PNG"))
    c = ws.write("photo.jpg", encode_image(picture(ws.np), "JPEG"))
    return image_run(ws, a, b, c, expect="accept")


def _valid_then_broken(ws):
    good = ws.write("good.png", encode_image(picture(ws.np), "PNG"))
    bad = ws.write("bad.png", encode_image(picture(ws.np), "PNG")[:100])
    return image_run(ws, good, bad, expect="refuse", names=[str(bad)])


def _output_is_a_file(ws):
    prep = image_run(ws, ws.write("ok.png", encode_image(picture(ws.np), "PNG")), expect="refuse")
    ws.write("out", "I am a file, not a folder\n")
    prep.names = [str(prep.output)]
    return prep


def _output_holds_old_files(ws):
    prep = image_run(ws, ws.write("ok.png", encode_image(picture(ws.np), "PNG")), expect="accept")
    ws.write("out/keep.txt", "from an earlier run\n")
    prep.outputs = 2
    return prep


add("image-directory-named.png", "image", _directory_named)
add("image-symlink-loop", "image", _symlink_loop("loop.png", image_run))
add("image-dangling-symlink", "image", _dangling("dangling.png", image_run))
add("image-missing-file", "image", lambda ws: image_run(ws, ws.dir / "never-made.png", expect="refuse"))
add("image-fifo", "image", _fifo("pipe.png", image_run), isolate=True)
add("image-unicode-name", "image", _unicode_name)
add("image-same-stem-three-files", "image", _same_stem)
add("image-valid-then-truncated", "image", _valid_then_broken)
add("image-output-is-a-file", "image", _output_is_a_file)
add("image-output-holds-old-files", "image", _output_holds_old_files)
add("image-dev-null", "image", lambda ws: image_run(ws, Path("/dev/null"), expect="refuse"))
if os.geteuid() != 0:  # root reads any file
    def _unreadable(ws):
        path = ws.write("locked.png", encode_image(picture(ws.np), "PNG"))
        path.chmod(0)
        return image_run(ws, path, expect="refuse")

    add("image-unreadable-permissions", "image", _unreadable)


def _encode_case(ws):
    path = ws.write("ok.png", encode_image(picture(ws.np), "PNG"))
    out = ws.dir / "ids.npy"
    return Prepared(["encode", str(path), "--model", str(ws.titok), "-o", str(out), "--device", "cpu"], out,
                    [str(path)], "accept")


def _encode_broken(ws):
    good = ws.write("ok.png", encode_image(picture(ws.np), "PNG"))
    bad = ws.write("broken.webp", encode_image(picture(ws.np), "WEBP")[:30])
    out = ws.dir / "ids.npy"
    return Prepared(["encode", str(good), str(bad), "--model", str(ws.titok), "-o", str(out), "--device", "cpu"],
                    out, [str(bad)], "refuse")


def _encode_into_directory(ws):
    path = ws.write("ok.png", encode_image(picture(ws.np), "PNG"))
    out = ws.dir / "ids.npy"
    out.mkdir()
    return Prepared(["encode", str(path), "--model", str(ws.titok), "-o", str(out), "--device", "cpu"], out,
                    [str(out)], "refuse")


def _too_many_tokens(command: str):
    def make(ws):
        path = ws.write("ok.png", encode_image(picture(ws.np), "PNG"))
        out = ws.dir / ("ids.npy" if command == "encode" else "out")
        return Prepared([command, str(path), "--model", str(ws.titok), "-o", str(out), "--num-tokens", "99",
                         "--device", "cpu"], out, ["--num-tokens"], "refuse")
    return make


def _name_collision(ws):
    a = ws.write("a/photo.png", encode_image(picture(ws.np), "PNG"))
    b = ws.write("b/photo.png", encode_image(picture(ws.np), "PNG"))
    c = ws.write("photo-2.png", encode_image(picture(ws.np), "PNG"))
    return image_run(ws, a, b, c, expect="accept")


add("image-output-name-collision", "image", _name_collision)
add("reconstruct-num-tokens-too-many", "image", _too_many_tokens("reconstruct"))
add("encode-num-tokens-too-many", "image", _too_many_tokens("encode"))
add("encode-valid", "image", _encode_case)
add("encode-valid-then-truncated-webp", "image", _encode_broken)
add("encode-output-is-a-directory", "image", _encode_into_directory)


# ---------------------------------------------------------------- audio

AUDIO_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}


def tone(rs: np.random.RandomState, n: int = 12000, rate: int = 24000, channels: int = 1) -> np.ndarray:
    t = np.arange(n) / rate
    wave = 0.3 * np.sin(2 * np.pi * (180 + 40 * rs.rand()) * t) + 0.05 * rs.randn(n)
    wave = wave.astype(np.float32)
    return wave if channels == 1 else np.stack([wave * (0.5 + 0.5 * k / channels) for k in range(channels)], -1)


def encode_audio(data: np.ndarray, rate: int, fmt: str, subtype: Optional[str] = None) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, data, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def audio_run(ws: Workspace, *paths: Path, expect: str = "either", names=None, nonfinite: bool = False) -> Prepared:
    out = ws.dir / "out"
    return Prepared(["audio", "reconstruct", *map(str, paths), "--model", str(ws.wavtok), "-o", str(out),
                     "--device", "cpu"], out, names or [str(p) for p in paths], expect, outputs=len(paths),
                    nonfinite=nonfinite)


def _audio_mutation(ext: str, name: str):
    def make(ws: Workspace) -> Prepared:
        fmt, subtype = AUDIO_FORMATS[ext]
        data = encode_audio(tone(ws.np), 24000, fmt, subtype)
        same = encode_audio(tone(ws.np), 24000, fmt, subtype)
        other_ext = sorted(AUDIO_FORMATS)[(sorted(AUDIO_FORMATS).index(ext) + 1) % len(AUDIO_FORMATS)]
        other = encode_audio(tone(ws.np), 24000, *AUDIO_FORMATS[other_ext])
        path = ws.write(f"{ext}-{name}.{ext}", mutations(data, same, other, ws.rng)[name])
        return audio_run(ws, path, expect="refuse" if name in MUST_REFUSE else "either")
    return make


for _ext in AUDIO_FORMATS:
    add(f"audio-{_ext}-valid", "audio",
        lambda ws, e=_ext: audio_run(ws, ws.write(f"ok.{e}", encode_audio(tone(ws.np), 24000, *AUDIO_FORMATS[e])),
                                     expect="accept"))
    for _name in mutations(b"0123456789" * 10, b"x" * 10, b"y" * 10, random.Random(0)):
        add(f"audio-{_ext}-{_name}", "audio", _audio_mutation(_ext, _name))


def _audio_file(name: str, data_fn, rate: int = 24000, fmt: str = "WAV", subtype: Optional[str] = None,
                expect: str = "accept", nonfinite: bool = False):
    return lambda ws: audio_run(ws, ws.write(name, encode_audio(data_fn(ws), rate, fmt, subtype)), expect=expect,
                                nonfinite=nonfinite)


def _with(value: float, every: int = 97, dtype=np.float32):
    def build(ws):
        wave = tone(ws.np).astype(dtype)
        wave[::every] = value
        return wave
    return build


AUDIO_VARIANTS = [
    ("u8.wav", lambda ws: tone(ws.np), 24000, "WAV", "PCM_U8", "accept"),
    ("pcm24.wav", lambda ws: tone(ws.np), 24000, "WAV", "PCM_24", "accept"),
    ("pcm32.wav", lambda ws: tone(ws.np), 24000, "WAV", "PCM_32", "accept"),
    ("float32.wav", lambda ws: tone(ws.np), 24000, "WAV", "FLOAT", "accept"),
    ("float64.wav", lambda ws: tone(ws.np).astype(np.float64), 24000, "WAV", "DOUBLE", "accept"),
    ("ulaw.wav", lambda ws: tone(ws.np), 24000, "WAV", "ULAW", "accept"),
    ("adpcm.wav", lambda ws: tone(ws.np), 24000, "WAV", "IMA_ADPCM", "accept"),
    ("s8.flac", lambda ws: tone(ws.np), 24000, "FLAC", "PCM_S8", "accept"),
    ("pcm24.flac", lambda ws: tone(ws.np), 24000, "FLAC", "PCM_24", "accept"),
    ("opus.ogg", lambda ws: tone(ws.np, 24000, 48000), 48000, "OGG", "OPUS", "accept"),
    ("stereo.wav", lambda ws: tone(ws.np, channels=2), 24000, "WAV", None, "accept"),
    ("eight-channels.wav", lambda ws: tone(ws.np, channels=8), 24000, "WAV", None, "accept"),
    ("eight-channels.flac", lambda ws: tone(ws.np, channels=8), 24000, "FLAC", None, "accept"),
    ("8khz.wav", lambda ws: tone(ws.np, 4000, 8000), 8000, "WAV", None, "accept"),
    ("11025hz.flac", lambda ws: tone(ws.np, 5512, 11025), 11025, "FLAC", None, "accept"),
    ("192khz.wav", lambda ws: tone(ws.np, 96000, 192000), 192000, "WAV", None, "accept"),
    ("1hz.wav", lambda ws: tone(ws.np, 3, 1), 1, "WAV", "FLOAT", "either"),
    ("one-sample.wav", lambda ws: tone(ws.np, 1), 24000, "WAV", None, "refuse"),
    ("five-samples.wav", lambda ws: tone(ws.np, 5), 24000, "WAV", None, "refuse"),
    ("six-samples.wav", lambda ws: tone(ws.np, 6), 24000, "WAV", None, "accept"),
    ("all-zeros.wav", lambda ws: np.zeros(12000, np.float32), 24000, "WAV", "FLOAT", "accept"),
    ("all-zeros-pcm16.flac", lambda ws: np.zeros(12000, np.float32), 24000, "FLAC", None, "accept"),
    ("dc-offset.wav", lambda ws: np.full(12000, 0.9, np.float32), 24000, "WAV", "FLOAT", "accept"),
    ("clipped-square.wav", lambda ws: np.sign(tone(ws.np)), 24000, "WAV", "PCM_16", "accept"),
    ("loud-100.wav", lambda ws: tone(ws.np) * 300, 24000, "WAV", "FLOAT", "accept"),
    ("loud-1e30.wav", lambda ws: tone(ws.np) * 1e30, 24000, "WAV", "FLOAT", "either"),
    ("loud-float-max.wav", lambda ws: np.sign(tone(ws.np)) * np.finfo(np.float32).max, 24000, "WAV", "FLOAT",
     "either"),
    ("loud-1e300-double.wav", lambda ws: tone(ws.np).astype(np.float64) * 1e300, 24000, "WAV", "DOUBLE", "either"),
    ("denormal.wav", lambda ws: tone(ws.np) * 1e-42, 24000, "WAV", "FLOAT", "accept"),
]
for _name, _data, _rate, _fmt, _sub, _expect in AUDIO_VARIANTS:
    add(f"audio-{_name}", "audio", _audio_file(_name, _data, _rate, _fmt, _sub, _expect))

for _name, _value, _sub, _dtype in [("nan", float("nan"), "FLOAT", np.float32),
                                    ("inf", float("inf"), "FLOAT", np.float32),
                                    ("neginf", float("-inf"), "FLOAT", np.float32),
                                    ("nan-double", float("nan"), "DOUBLE", np.float64)]:
    add(f"audio-{_name}.wav", "audio", _audio_file(f"{_name}.wav", _with(_value, dtype=_dtype), subtype=_sub,
                                                   expect="either", nonfinite=True))
add("audio-single-nan.wav", "audio", _audio_file("single-nan.wav", _with(float("nan"), every=10**9), subtype="FLOAT",
                                                 expect="either", nonfinite=True))
add("audio-all-nan.wav", "audio", _audio_file("all-nan.wav", lambda ws: np.full(12000, np.nan, np.float32),
                                              subtype="FLOAT", expect="either", nonfinite=True))


def _wav_header(rate: int = 24000, channels: int = 1, bits: int = 16, data_size: int = 0, fmt_code: int = 1,
                payload: bytes = b"", riff_size: Optional[int] = None) -> bytes:
    block = channels * bits // 8 & 0xFFFF
    fmt = struct.pack("<HHIIHH", fmt_code, channels, rate, rate * block & 0xFFFFFFFF, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_size) + payload
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


WAV_HEADERS = {
    "header-only.wav": lambda ws: _wav_header(),
    "rate-zero.wav": lambda ws: _wav_header(rate=0, data_size=2000, payload=bytes(2000)),
    "channels-zero.wav": lambda ws: _wav_header(channels=0, data_size=2000, payload=bytes(2000)),
    "channels-65535.wav": lambda ws: _wav_header(channels=65535, bits=8, data_size=2000, payload=bytes(2000)),
    "bits-zero.wav": lambda ws: _wav_header(bits=0, data_size=2000, payload=bytes(2000)),
    "bits-64-int.wav": lambda ws: _wav_header(bits=64, data_size=2000, payload=bytes(2000)),
    "format-code-unknown.wav": lambda ws: _wav_header(fmt_code=0x1234, data_size=2000, payload=bytes(2000)),
    "data-size-lies-4gib.wav": lambda ws: _wav_header(data_size=0xFFFFFFFF, payload=encode_audio(
        tone(ws.np), 24000, "RAW", "PCM_16")),
    "riff-size-lies.wav": lambda ws: _wav_header(riff_size=0xFFFFFFFF, data_size=24000, payload=encode_audio(
        tone(ws.np), 24000, "RAW", "PCM_16")),
    "rate-2^32-1.wav": lambda ws: _wav_header(rate=0xFFFFFFFF, data_size=24000, payload=encode_audio(
        tone(ws.np), 24000, "RAW", "PCM_16")),
}
for _name, _data in WAV_HEADERS.items():
    add(f"audio-{_name}", "audio", lambda ws, n=_name, d=_data: audio_run(
        ws, ws.write(n, d(ws)), expect="refuse" if n == "header-only.wav" else "either"))

MISLABELLED_AUDIO = {
    "text-named.wav": lambda ws: "RIFF? no: a shopping list\n",
    "png-named.wav": lambda ws: encode_image(picture(ws.np), "PNG"),
    "npy-named.flac": lambda ws: _npy_bytes(tone(ws.np)),
    "pickle-named.wav": lambda ws: raw_pickle(ws.marker),
    "riff-only.wav": lambda ws: b"RIFF",
    "random-bytes.ogg": lambda ws: bytes(ws.rng.randrange(256) for _ in range(4096)),
    "nul-bytes.wav": lambda ws: bytes(4096),
}
for _name, _data in MISLABELLED_AUDIO.items():
    add(f"audio-{_name}", "audio", lambda ws, n=_name, d=_data: audio_run(ws, ws.write(n, d(ws)), expect="refuse"))

add("audio-flac-named.wav", "audio",
    lambda ws: audio_run(ws, ws.write("speech.wav", encode_audio(tone(ws.np), 24000, "FLAC")), expect="accept"))
add("audio-aiff-named.wav", "audio",
    lambda ws: audio_run(ws, ws.write("speech2.wav", encode_audio(tone(ws.np), 24000, "AIFF", "PCM_16")),
                         expect="accept"))
add("audio-directory-named.wav", "audio",
    lambda ws: ((ws.dir / "folder.wav").mkdir(), audio_run(ws, ws.dir / "folder.wav", expect="refuse"))[1])
add("audio-symlink-loop", "audio", _symlink_loop("loop.wav", audio_run))
add("audio-dangling-symlink", "audio", _dangling("dangling.wav", audio_run))
add("audio-missing-file", "audio", lambda ws: audio_run(ws, ws.dir / "never-made.wav", expect="refuse"))
add("audio-fifo", "audio", _fifo("pipe.wav", audio_run), isolate=True)
add("audio-dev-null", "audio", lambda ws: audio_run(ws, Path("/dev/null"), expect="refuse"))


def _audio_valid_then_nan(ws):
    good = ws.write("good.wav", encode_audio(tone(ws.np), 24000, "WAV", "FLOAT"))
    bad = ws.write("bad.wav", encode_audio(_with(float("nan"))(ws), 24000, "WAV", "FLOAT"))
    return audio_run(ws, good, bad, expect="refuse", names=[str(bad)])


def _audio_same_stem(ws):
    a = ws.write("a/clip.wav", encode_audio(tone(ws.np), 24000, "WAV"))
    b = ws.write("b/clip.flac", encode_audio(tone(ws.np), 24000, "FLAC"))
    return audio_run(ws, a, b, expect="accept")


def _audio_name_collision(ws):
    a = ws.write("a/clip.wav", encode_audio(tone(ws.np), 24000, "WAV"))
    b = ws.write("b/clip.wav", encode_audio(tone(ws.np), 24000, "WAV"))
    c = ws.write("clip-2.flac", encode_audio(tone(ws.np), 24000, "FLAC"))
    return audio_run(ws, a, b, c, expect="accept")


add("audio-output-name-collision", "audio", _audio_name_collision)
add("audio-valid-then-nan", "audio", _audio_valid_then_nan)
add("audio-same-stem", "audio", _audio_same_stem)
add("audio-real-speech", "audio", lambda ws: audio_run(ws, ws.speech, expect="accept"))


# ---------------------------------------------------------------- token ids

def _npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def _zip_bytes() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "hello")
    return buf.getvalue()


def _npz_bytes(ws) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, ids=ws.np.randint(0, 32, (2, 8)))
    return buf.getvalue()


def _object_array(ws) -> bytes:
    return _npy_bytes(np.array([Plant(ws.marker), 1], dtype=object), allow_pickle=True)


def _npy_huge_shape(ws) -> bytes:
    """A valid .npy header claiming 10^12 x 8 int32 values, followed by 64 bytes."""
    header = "{'descr': '<i4', 'fortran_order': False, 'shape': (1000000000000, 8), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(64)


def _npy_truncated(ws) -> bytes:
    data = _npy_bytes(ws.np.randint(0, 32, (64, 8)).astype(np.int32))
    return data[: len(data) - 100]


# (name, bytes or array maker, rows when accepted, expected outcome) for tokzoo decode (codebook 32, 8 tokens)
IMAGE_IDS = [
    ("int32.npy", lambda ws: ws.np.randint(0, 32, (2, 8)).astype(np.int32), 2, "accept"),
    ("int64.npy", lambda ws: ws.np.randint(0, 32, (2, 8)).astype(np.int64), 2, "accept"),
    ("uint8.npy", lambda ws: ws.np.randint(0, 32, (2, 8)).astype(np.uint8), 2, "accept"),
    ("big-endian.npy", lambda ws: ws.np.randint(0, 32, (2, 8)).astype(">i4"), 2, "accept"),
    ("fortran-order.npy", lambda ws: np.asfortranarray(ws.np.randint(0, 32, (3, 8))), 3, "accept"),
    ("float-whole.npy", lambda ws: ws.np.randint(0, 32, (2, 8)).astype(np.float32), 2, "either"),
    ("float-fraction.npy", lambda ws: ws.np.randint(0, 32, (2, 8)) + 0.5, 2, "refuse"),
    ("float-nan.npy", lambda ws: np.full((2, 8), np.nan), 2, "refuse"),
    ("float-inf.npy", lambda ws: np.full((2, 8), np.inf), 2, "refuse"),
    ("float16.npy", lambda ws: ws.np.randint(0, 32, (2, 8)).astype(np.float16), 2, "either"),
    ("bool.npy", lambda ws: np.ones((2, 8), bool), 2, "either"),
    ("complex.npy", lambda ws: np.ones((2, 8), np.complex64), 2, "refuse"),
    ("string.npy", lambda ws: np.full((2, 8), "7"), 2, "refuse"),
    ("datetime.npy", lambda ws: np.zeros((2, 8), "datetime64[s]"), 2, "refuse"),
    ("structured.npy", lambda ws: np.zeros((2, 8), [("a", "i4"), ("b", "f4")]), 2, "refuse"),
    ("negative.npy", lambda ws: -ws.np.randint(1, 32, (2, 8)), 2, "refuse"),
    ("codebook-size.npy", lambda ws: np.full((2, 8), 32), 2, "refuse"),
    ("int64-max.npy", lambda ws: np.full((2, 8), np.iinfo(np.int64).max), 2, "refuse"),
    ("int64-min.npy", lambda ws: np.full((2, 8), np.iinfo(np.int64).min), 2, "refuse"),
    ("uint64-huge.npy", lambda ws: np.full((2, 8), np.iinfo(np.uint64).max, np.uint64), 2, "refuse"),
    ("scalar.npy", lambda ws: np.array(3), 0, "refuse"),
    ("one-d.npy", lambda ws: ws.np.randint(0, 32, 8), 0, "refuse"),
    ("three-d.npy", lambda ws: ws.np.randint(0, 32, (2, 8, 2)), 2, "either"),
    ("empty-rows.npy", lambda ws: np.zeros((0, 8), np.int32), 0, "refuse"),
    ("empty-tokens.npy", lambda ws: np.zeros((2, 0), np.int32), 0, "refuse"),
    ("too-many-tokens.npy", lambda ws: ws.np.randint(0, 32, (2, 9)), 2, "either"),
    ("fewer-tokens.npy", lambda ws: ws.np.randint(0, 32, (2, 3)), 2, "either"),
    ("one-token.npy", lambda ws: ws.np.randint(0, 32, (1, 1)), 1, "either"),
    ("many-rows.npy", lambda ws: ws.np.randint(0, 32, (40, 8)), 40, "accept"),
    ("object-pickle.npy", _object_array, 0, "refuse"),
    ("raw-pickle.npy", lambda ws: raw_pickle(ws.marker), 0, "refuse"),
    ("npz-archive.npy", _npz_bytes, 0, "either"),
    ("text.npy", lambda ws: "1 2 3 4 5 6 7 8\n", 0, "refuse"),
    ("empty-file.npy", lambda ws: b"", 0, "refuse"),
    ("magic-only.npy", lambda ws: b"\x93NUMPY", 0, "refuse"),
    ("truncated.npy", _npy_truncated, 0, "refuse"),
    ("header-huge-shape.npy", _npy_huge_shape, 0, "refuse"),
]

# the same inputs for tokzoo audio decode (codebook 32, any length; -1 pads the end of a row)
AUDIO_IDS = [
    ("int32.npy", lambda ws: ws.np.randint(0, 32, (2, 20)).astype(np.int32), 2, "accept"),
    ("int16.npy", lambda ws: ws.np.randint(0, 32, (2, 20)).astype(np.int16), 2, "accept"),
    ("padded.npy", lambda ws: np.concatenate([ws.np.randint(0, 32, (2, 12)), np.full((2, 8), -1)], 1), 2, "accept"),
    ("all-padding.npy", lambda ws: np.full((2, 20), -1), 2, "either"),
    ("pad-in-the-middle.npy", lambda ws: np.array([[1, -1, 2, 3]]), 1, "refuse"),
    ("minus-two.npy", lambda ws: np.full((1, 20), -2), 1, "refuse"),
    ("codebook-size.npy", lambda ws: np.full((1, 20), 32), 1, "refuse"),
    ("int64-max.npy", lambda ws: np.full((1, 20), np.iinfo(np.int64).max), 1, "refuse"),
    ("uint64-huge.npy", lambda ws: np.full((1, 20), np.iinfo(np.uint64).max, np.uint64), 1, "refuse"),
    ("float.npy", lambda ws: ws.np.randint(0, 32, (2, 20)).astype(np.float32), 2, "refuse"),
    ("float-nan.npy", lambda ws: np.full((2, 20), np.nan), 2, "refuse"),
    ("bool.npy", lambda ws: np.ones((2, 20), bool), 2, "either"),
    ("scalar.npy", lambda ws: np.array(3), 0, "refuse"),
    ("one-d.npy", lambda ws: ws.np.randint(0, 32, 20), 0, "refuse"),
    ("three-d.npy", lambda ws: ws.np.randint(0, 32, (2, 3, 20)), 2, "either"),
    ("empty-rows.npy", lambda ws: np.zeros((0, 20), np.int32), 0, "either"),
    ("empty-tokens.npy", lambda ws: np.zeros((2, 0), np.int32), 2, "either"),
    ("one-token.npy", lambda ws: np.array([[5]]), 1, "accept"),
    ("object-pickle.npy", _object_array, 0, "refuse"),
    ("raw-pickle.npy", lambda ws: raw_pickle(ws.marker), 0, "refuse"),
    ("text.npy", lambda ws: "1 2 3\n", 0, "refuse"),
    ("empty-file.npy", lambda ws: b"", 0, "refuse"),
    ("truncated.npy", _npy_truncated, 0, "refuse"),
    ("header-huge-shape.npy", _npy_huge_shape, 0, "refuse"),
]


def _ids_run(command: List[str], model_attr: str, name: str, maker, rows: int, expect: str):
    def make(ws):
        data = maker(ws)
        path = ws.write(name, _npy_bytes(data) if isinstance(data, np.ndarray) else data)
        out = ws.dir / "out"
        return Prepared([*command, str(path), "--model", str(getattr(ws, model_attr)), "-o", str(out),
                         "--device", "cpu"], out, [str(path)], expect, outputs=rows)
    return make


for _name, _maker, _rows, _expect in IMAGE_IDS:
    add(f"decode-{_name}", "decode", _ids_run(["decode"], "titok", _name, _maker, _rows, _expect))
for _name, _maker, _rows, _expect in AUDIO_IDS:
    add(f"audio-decode-{_name}", "audio-decode", _ids_run(["audio", "decode"], "wavtok", _name, _maker, _rows, _expect))


def _ids_directory(ws):
    (ws.dir / "ids.npy").mkdir()
    return Prepared(["decode", str(ws.dir / "ids.npy"), "--model", str(ws.titok), "-o", str(ws.dir / "out")],
                    ws.dir / "out", [str(ws.dir / "ids.npy")], "refuse")


add("decode-ids-is-a-directory", "decode", _ids_directory)
add("decode-ids-missing", "decode", lambda ws: Prepared(
    ["decode", str(ws.dir / "none.npy"), "--model", str(ws.titok), "-o", str(ws.dir / "out")], ws.dir / "out",
    [str(ws.dir / "none.npy")], "refuse"))


# ---------------------------------------------------------------- recipes

TINY_RECIPE = """\
experiment:
  name: bad-input
  seed: 0
model:
  family: titok
  config:
    image_size: 32
    patch_size: 8
    encoder_size: {width: 32, depth: 1, heads: 2}
    decoder_size: {width: 32, depth: 1, heads: 2}
    num_latent_tokens: 8
    codebook_size: 64
    token_size: 8
    decoder: pixels
    legacy_reshape: false
data:
  kind: images
  train: TRAIN
  val: VAL
  image_size: 32
  batch_size: 2
  num_workers: 0
  val_batches: 1
optimizer:
  lr: 1.0e-3
schedule:
  name: constant
training:
  max_steps: 1
logging:
  log_every: 1
  eval_every: 1
  save_every: 1
  tensorboard: false
  progress: false
"""


def tiny_recipe(ws: Workspace) -> str:
    return (TINY_RECIPE.replace("TRAIN", str(ws.images_root / "train"))
            .replace("VAL", str(ws.images_root / "val")))


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _recipe_run(text_fn, expect: str = "either", overrides=(), names=None, print_recipe: bool = True,
                suffix: str = ".yaml"):
    def make(ws):
        body = text_fn(ws)
        path = ws.write(f"recipe{suffix}", body)
        out = ws.dir / "run"
        argv = ["train", str(path), f"experiment.output_dir={out}", *overrides]
        return Prepared(argv + (["--print-recipe"] if print_recipe else []), out,
                        [str(path)] + list(names or []), expect)
    return make


def _billion_laughs(ws):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for k in range(1, 10):
        lines.append(f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]")
    return tiny_recipe(ws) + "\n".join("lol_" + line for line in lines) + "\n"


def _billion_laughs_in_config(ws):
    lines = ['x0: &x0 {a: 1, b: 1, c: 1, d: 1, e: 1, f: 1, g: 1, h: 1, i: 1}']
    for k in range(1, 10):
        lines.append(f"x{k}: &x{k} {{" + ", ".join(f"k{j}: *x{k - 1}" for j in range(9)) + "}")
    body = "\n".join("    " + line for line in lines)
    return _edit(tiny_recipe(ws), "    legacy_reshape: false\n", "    legacy_reshape: false\n" + body + "\n")


RECIPE_TEXTS = {  # name: (text maker, expected outcome)
    "valid": (lambda ws: tiny_recipe(ws), "accept"),
    "empty-file": (lambda ws: "", "either"),
    "only-comments": (lambda ws: "# nothing here\n# at all\n", "either"),
    "only-whitespace": (lambda ws: "\n\n   \n\t\n", "either"),
    "binary-garbage": (lambda ws: bytes(ws.rng.randrange(256) for _ in range(2048)), "refuse"),
    "nul-bytes": (lambda ws: b"experiment:\x00\x00\n  name: x\n", "refuse"),
    "latin-1-bytes": (lambda ws: "experiment:\n  name: caf\xe9\n".encode("latin-1"), "refuse"),
    "utf-16": (lambda ws: tiny_recipe(ws).encode("utf-16"), "either"),
    "utf-8-bom": (lambda ws: "\ufeff" + tiny_recipe(ws), "either"),
    "unicode-values": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input", "name: \"训练 ☃ 🚀 \\u202e\""), "accept"),
    "unicode-key": (lambda ws: tiny_recipe(ws) + "тренировка: 1\n", "refuse"),
    "tab-indent": (lambda ws: tiny_recipe(ws).replace("  seed: 0", "\tseed: 0"), "refuse"),
    "unclosed-bracket": (lambda ws: _edit(tiny_recipe(ws), "{width: 32, depth: 1, heads: 2}\n",
                                          "{width: 32, depth: 1, heads: 2\n"), "refuse"),
    "unclosed-quote": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input", "name: \"bad-input"), "refuse"),
    "bad-indentation": (lambda ws: _edit(tiny_recipe(ws), "  seed: 0", "    seed: 0"), "refuse"),
    "duplicate-key": (lambda ws: tiny_recipe(ws) + "training:\n  max_steps: 2\n", "either"),
    "top-level-list": (lambda ws: "- experiment\n- model\n", "refuse"),
    "top-level-scalar": (lambda ws: "just a sentence\n", "refuse"),
    "top-level-number": (lambda ws: "42\n", "refuse"),
    "top-level-null": (lambda ws: "~\n", "either"),
    "mapping-is-a-number": (lambda ws: _edit(tiny_recipe(ws), "experiment:\n  name: bad-input\n  seed: 0\n",
                                             "experiment: 5\n"), "refuse"),
    "data-is-a-string": (lambda ws: tiny_recipe(ws) + "data: images\n", "refuse"),
    "model-config-is-a-string": (lambda ws: tiny_recipe(ws).replace(
        "model:\n  family: titok\n  config:\n", "model:\n  family: titok\n  config: large\n  x:\n"), "refuse"),
    "model-config-is-a-list": (lambda ws: tiny_recipe(ws) + "model:\n  config: [1, 2]\n", "refuse"),
    "training-is-a-list": (lambda ws: _edit(tiny_recipe(ws), "training:\n  max_steps: 1\n",
                                            "training: [1, 2]\n"), "refuse"),
    "batch-size-string": (lambda ws: _edit(tiny_recipe(ws), "batch_size: 2", "batch_size: two"), "refuse"),
    "batch-size-fraction": (lambda ws: _edit(tiny_recipe(ws), "batch_size: 2", "batch_size: 2.5"), "refuse"),
    "batch-size-bool": (lambda ws: _edit(tiny_recipe(ws), "batch_size: 2", "batch_size: true"), "either"),
    "batch-size-null": (lambda ws: _edit(tiny_recipe(ws), "batch_size: 2", "batch_size: null"), "refuse"),
    "batch-size-zero": (lambda ws: _edit(tiny_recipe(ws), "batch_size: 2", "batch_size: 0"), "refuse"),
    "batch-size-negative": (lambda ws: _edit(tiny_recipe(ws), "batch_size: 2", "batch_size: -4"), "refuse"),
    "batch-size-huge": (lambda ws: _edit(tiny_recipe(ws), "batch_size: 2", "batch_size: 1000000000000000000000000"),
                        "either"),
    "image-size-negative": (lambda ws: _edit(tiny_recipe(ws), "  image_size: 32\n  batch",
                                             "  image_size: -32\n  batch"), "refuse"),
    "max-steps-zero": (lambda ws: _edit(tiny_recipe(ws), "max_steps: 1", "max_steps: 0"), "refuse"),
    "max-steps-negative": (lambda ws: _edit(tiny_recipe(ws), "max_steps: 1", "max_steps: -1"), "refuse"),
    "max-steps-float": (lambda ws: _edit(tiny_recipe(ws), "max_steps: 1", "max_steps: 1.0e3"), "either"),
    "lr-string": (lambda ws: _edit(tiny_recipe(ws), "lr: 1.0e-3", "lr: fast"), "refuse"),
    "lr-nan": (lambda ws: _edit(tiny_recipe(ws), "lr: 1.0e-3", "lr: .nan"), "refuse"),
    "lr-inf": (lambda ws: _edit(tiny_recipe(ws), "lr: 1.0e-3", "lr: .inf"), "refuse"),
    "lr-1e400": (lambda ws: _edit(tiny_recipe(ws), "lr: 1.0e-3", "lr: 1.0e400"), "refuse"),
    "lr-negative": (lambda ws: _edit(tiny_recipe(ws), "lr: 1.0e-3", "lr: -1.0e-3"), "refuse"),
    "weight-nan": (lambda ws: tiny_recipe(ws) + "loss:\n  reconstruction_weight: .nan\n", "refuse"),
    "grad-norm-inf": (lambda ws: _edit(tiny_recipe(ws), "max_steps: 1", "max_steps: 1\n  max_grad_norm: .inf"),
                      "refuse"),
    "ema-decay-nan": (lambda ws: _edit(tiny_recipe(ws), "max_steps: 1", "max_steps: 1\n  ema_decay: .nan"), "refuse"),
    "betas-scalar": (lambda ws: _edit(tiny_recipe(ws), "lr: 1.0e-3", "lr: 1.0e-3\n  betas: 0.9"), "refuse"),
    "betas-strings": (lambda ws: _edit(tiny_recipe(ws), "lr: 1.0e-3", "lr: 1.0e-3\n  betas: [a, b]"), "refuse"),
    "freeze-string": (lambda ws: _edit(tiny_recipe(ws), "  family: titok\n", "  family: titok\n  freeze: encoder\n"),
                      "either"),
    "init-parts-string": (lambda ws: _edit(tiny_recipe(ws), "  family: titok\n", "  family: titok\n  init_parts: x\n"),
                          "refuse"),
    "unknown-top-key": (lambda ws: tiny_recipe(ws) + "trainig:\n  max_steps: 3\n", "refuse"),
    "unknown-nested-key": (lambda ws: _edit(tiny_recipe(ws), "max_steps: 1", "max_steps: 1\n  lr: 0.1"), "refuse"),
    "unknown-model-config-key": (lambda ws: _edit(tiny_recipe(ws), "patch_size: 8", "patch_size: 8\n    widht: 3"),
                                 "refuse"),
    "long-unknown-key": (lambda ws: tiny_recipe(ws) + "k" * 5000 + ": 1\n", "refuse"),
    "many-unknown-keys": (lambda ws: tiny_recipe(ws) + "junk:\n" + "".join(f"  k{i}: {i}\n" for i in range(20000)),
                          "refuse"),
    "unknown-family": (lambda ws: _edit(tiny_recipe(ws), "family: titok", "family: titokk"), "refuse"),
    "family-is-a-list": (lambda ws: _edit(tiny_recipe(ws), "family: titok", "family: [titok]"), "refuse"),
    "data-kind-unknown": (lambda ws: _edit(tiny_recipe(ws), "kind: images", "kind: video"), "refuse"),
    "missing-sections": (lambda ws: "experiment:\n  name: only-this\n", "accept"),
    "empty-sections": (lambda ws: "experiment:\nmodel:\ndata:\ntraining:\n", "either"),
    "billion-laughs": (_billion_laughs, "refuse"),
    "billion-laughs-in-model-config": (_billion_laughs_in_config, "refuse"),
    "anchors-used-sensibly": (lambda ws: _edit(_edit(tiny_recipe(ws), "encoder_size: {width: 32, depth: 1, heads: 2}",
                                                     "encoder_size: &size {width: 32, depth: 1, heads: 2}"),
                                               "decoder_size: {width: 32, depth: 1, heads: 2}", "decoder_size: *size"),
                              "accept"),
    "merge-key": (lambda ws: _edit(tiny_recipe(ws), "logging:\n", "logging:\n  <<: {log_every: 2}\n"), "either"),
    "python-object-apply": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input",
                                             f"name: !!python/object/apply:builtins.open [{ws.marker}, w]"), "refuse"),
    "python-object-new": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input",
                                           "name: !!python/object/new:os.system [echo pwned]"), "refuse"),
    "python-name": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input", "name: !!python/name:os.system"), "refuse"),
    "python-module": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input", "name: !!python/module:os"), "refuse"),
    "binary-tag": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input", "name: !!binary aGVsbG8="), "either"),
    "set-tag": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input", "name: !!set {a, b}"), "refuse"),
    "custom-tag": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input", "name: !evil x"), "refuse"),
    "timestamp-value": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input", "name: 2024-01-01"), "either"),
    "deep-nesting-list": (lambda ws: tiny_recipe(ws) + "deep: " + "[" * 20000 + "]" * 20000 + "\n", "refuse"),
    "deep-nesting-mapping": (lambda ws: tiny_recipe(ws) + "deep: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
                             "refuse"),
    "interpolation-missing": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input", "name: ${nope.nothing}"), "refuse"),
    "interpolation-self": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input", "name: ${experiment.name}"),
                           "refuse"),
    "interpolation-cycle": (lambda ws: _edit(_edit(tiny_recipe(ws), "name: bad-input", "name: ${data.train}"),
                                             f"train: {ws.images_root / 'train'}", "train: ${experiment.name}"),
                            "refuse"),
    "interpolation-env-unset": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input",
                                                 "name: ${oc.env:TOKZOO_BAD_INPUT_NEVER_SET}"), "refuse"),
    "interpolation-env-home": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input", "name: ${oc.env:HOME}"), "accept"),
    "interpolation-unknown-resolver": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input", "name: ${evil:rm -rf}"),
                                       "refuse"),
    "interpolation-type-mismatch": (lambda ws: _edit(tiny_recipe(ws), "batch_size: 2",
                                                     "batch_size: ${experiment.name}"), "refuse"),
    "interpolation-unclosed": (lambda ws: _edit(tiny_recipe(ws), "name: bad-input", "name: ${experiment.seed"),
                               "refuse"),
    "json-recipe": (lambda ws: json.dumps({"experiment": {"name": "json"}, "training": {"max_steps": 3}}), "accept"),
    "resume-missing-dir-printed": (lambda ws: _edit(tiny_recipe(ws), "seed: 0", "seed: 0\n  resume: /nonexistent/ck"),
                                   "accept"),
}
for _name, (_text, _expect) in RECIPE_TEXTS.items():
    add(f"recipe-{_name}", "recipe", _recipe_run(_text, _expect))

RECIPE_OVERRIDES = {  # name: (overrides, expected outcome, the argument a refusal names)
    "override-string-for-int": (["data.batch_size=abc"], "refuse", "data.batch_size"),
    "override-unknown-key": (["nokey=1"], "refuse", "nokey"),
    "override-unknown-nested": (["training.lr=0.1"], "refuse", "training.lr"),
    "override-no-key": (["=1"], "refuse", "=1"),
    "override-no-equals": (["training.max_steps"], "refuse", "training.max_steps"),
    "override-lr-nan": (["optimizer.lr=nan"], "refuse", "optimizer.lr"),
    "override-lr-inf": (["optimizer.lr=inf"], "refuse", "optimizer.lr"),
    "override-steps-1e999": (["training.max_steps=1e999"], "refuse", "training.max_steps"),
    "override-bad-mapping": (["model.config={"], "refuse", "model.config"),
    "override-unset-env": (["experiment.name=${oc.env:TOKZOO_BAD_INPUT_NEVER_SET}"], "refuse", "experiment.name"),
    "override-model-config-unknown": (["model.config.widht=3"], "refuse", "model.config.widht"),
    "override-weight-negative-inf": (["loss.perceptual_weight=-inf"], "refuse", "loss.perceptual_weight"),
    "override-unicode-value": (["experiment.name=☃"], "accept", "experiment.name"),
}
for _name, (_over, _expect, _named) in RECIPE_OVERRIDES.items():
    add(f"recipe-{_name}", "recipe", _recipe_run(lambda ws: tiny_recipe(ws), _expect, overrides=_over, names=[_named]))

add("recipe-billion-laughs-isolated", "recipe", _recipe_run(_billion_laughs, "refuse"), isolate=True)
add("recipe-is-a-directory", "recipe", lambda ws: (ws.write("recipe.yaml/x", "x"), Prepared(
    ["train", str(ws.dir / "recipe.yaml"), f"experiment.output_dir={ws.dir / 'run'}", "--print-recipe"],
    ws.dir / "run", [str(ws.dir / "recipe.yaml")], "refuse"))[1])
add("recipe-missing", "recipe", lambda ws: Prepared(
    ["train", str(ws.dir / "nope.yaml"), "--print-recipe"], ws.dir / "run", [str(ws.dir / "nope.yaml")], "refuse"))
add("recipe-symlink-loop", "recipe", _symlink_loop("loop.yaml", lambda ws, path, expect: Prepared(
    ["train", str(path), f"experiment.output_dir={ws.dir / 'run'}", "--print-recipe"], ws.dir / "run", [str(path)],
    expect)))


# ---------------------------------------------------------------- real (1-step) training runs

def _train_run(edit=lambda ws, text: text, overrides=lambda ws: [], expect: str = "either", names=lambda ws: [],
               prepare=lambda ws: None):
    def make(ws):
        prepare(ws)
        path = ws.write("recipe.yaml", edit(ws, tiny_recipe(ws)))
        out = ws.dir / "run"
        argv = ["train", str(path), f"experiment.output_dir={out}", *overrides(ws)]
        return Prepared(argv, out, [str(path), *names(ws)], expect)
    return make


def _checkpoint_copy(ws) -> Path:
    target = ws.dir / "ckpt"
    shutil.copytree(ws.fixture("checkpoint"), target)
    return target


def _resume(mutate, expect: str = "refuse"):
    def make(ws):
        ckpt = _checkpoint_copy(ws)
        mutate(ws, ckpt)
        return _train_run(overrides=lambda w: [f"experiment.resume={ckpt}", "training.max_steps=2"],
                          expect=expect, names=lambda w: [str(ckpt)])(ws)
    return make


def _plant(name: str):
    def mutate(ws, ckpt):
        (ckpt / name).unlink()
        torch_pickle(ws.marker, ckpt / name)
    return mutate


def _truncate(name: str):
    def mutate(ws, ckpt):
        data = (ckpt / name).read_bytes()
        (ckpt / name).write_bytes(data[: len(data) // 2])
    return mutate


def _resume_auto_planted(ws):
    out = ws.dir / "run"
    ckpt = out / "checkpoints" / "step-00000001"
    shutil.copytree(ws.fixture("checkpoint"), ckpt)
    _plant("custom_checkpoint_1.pkl")(ws, ckpt)
    path = ws.write("recipe.yaml", tiny_recipe(ws))
    return Prepared(["train", str(path), f"experiment.output_dir={out}", "training.max_steps=2"], out,
                    [str(ckpt)], "refuse")


def _init_from(kind: str):
    def make(ws):
        if kind == "pickle-file":
            target = torch_pickle(ws.marker, ws.dir / "weights.ckpt")
        elif kind == "pickle-in-dir":
            target = ws.dir / "tok"
            shutil.copytree(ws.titok, target)
            (target / "model.safetensors").unlink()
            torch_pickle(ws.marker, target / "model.safetensors")
        else:  # truncated weights
            target = ws.dir / "tok"
            shutil.copytree(ws.titok, target)
            data = (target / "model.safetensors").read_bytes()
            (target / "model.safetensors").write_bytes(data[: len(data) // 3])
        return _train_run(overrides=lambda w: [f"model.init={target}"], expect="refuse",
                          names=lambda w: [str(target)])(ws)
    return make


def _init_parts_pickle(ws):
    target = torch_pickle(ws.marker, ws.dir / "parts.pt")
    return _train_run(edit=lambda w, t: _edit(t, "  family: titok\n", "  family: titok\n  init_parts:\n"
                                                                      f"    decoder: '{target}:decoder'\n"),
                      expect="refuse", names=lambda w: [str(target)])(ws)


def _data_folder(kind: str):
    def make(ws):
        folder = ws.dir / "images"
        folder.mkdir()
        for i in range(2):  # a whole batch of them
            if kind.startswith("broken"):
                (folder / f"broken{i}.png").write_bytes(encode_image(picture(ws.np), "PNG")[:60])
            elif kind == "text":
                (folder / f"notes{i}.jpg").write_text("not a photo\n")
        if kind == "one-image":
            (folder / "only.png").write_bytes(encode_image(picture(ws.np), "PNG"))
        val = ws.images_root / "val" if kind.endswith("train-only") else folder
        workers = ["data.num_workers=1"] if "worker" in kind else []
        return _train_run(overrides=lambda w: [f"data.train={folder}", f"data.val={val}", *workers], expect="refuse",
                          names=lambda w: [str(folder)])(ws)
    return make


add("train-valid-one-step", "train", _train_run(expect="accept"))
add("train-resume-valid", "train", _resume(lambda ws, ckpt: None, expect="accept"))
add("train-resume-planted-custom-state", "train", _resume(_plant("custom_checkpoint_0.pkl")))
add("train-resume-planted-optimizer", "train", _resume(_plant("optimizer.bin")))
add("train-resume-planted-rng-state", "train", _resume(_plant("random_states_0.pkl")))
add("train-resume-truncated-optimizer", "train", _resume(_truncate("optimizer.bin")))
add("train-resume-truncated-weights", "train", _resume(_truncate("model.safetensors")))
add("train-resume-not-complete", "train", _resume(lambda ws, ckpt: (ckpt / "COMPLETE").unlink()))
add("train-resume-missing-dir", "train", _train_run(overrides=lambda ws: [f"experiment.resume={ws.dir / 'nope'}"],
                                                    expect="refuse", names=lambda ws: [str(ws.dir / "nope")]))
add("train-resume-auto-planted-run-dir", "train", _resume_auto_planted)
add("train-init-pickle-file", "train", _init_from("pickle-file"))
add("train-init-pickle-as-safetensors", "train", _init_from("pickle-in-dir"))
add("train-init-truncated-weights", "train", _init_from("truncated"))
add("train-init-parts-pickle", "train", _init_parts_pickle)
add("train-data-empty-folder", "train", _data_folder("empty"))
add("train-data-only-a-broken-image", "train", _data_folder("broken"))
add("train-data-text-named-jpg", "train", _data_folder("text"))
add("train-data-broken-images-valid-val", "train", _data_folder("broken-train-only"))
add("train-data-broken-images-in-a-worker", "train", _data_folder("broken-worker-train-only"))
add("train-data-fewer-images-than-a-batch", "train", _data_folder("one-image"))
add("train-data-missing", "train", _train_run(overrides=lambda ws: [f"data.train={ws.dir / 'nowhere'}"],
                                              expect="refuse", names=lambda ws: [str(ws.dir / "nowhere")]))
add("train-model-config-wrong-type", "train",
    _train_run(edit=lambda ws, t: _edit(t, "patch_size: 8", "patch_size: '8'"), expect="refuse",
               names=lambda ws: ["patch_size"]))
add("train-model-config-not-a-divisor", "train",
    _train_run(edit=lambda ws, t: _edit(t, "patch_size: 8", "patch_size: 7"), expect="refuse",
               names=lambda ws: ["patch_size"]))


# ---------------------------------------------------------------- model directories (--model DIR)

def _model_copy(ws, attr: str = "titok") -> Path:
    target = ws.dir / "model"
    shutil.copytree(getattr(ws, attr), target)
    return target


def _model_run(ws, model: Path, expect: str, audio: bool = False, names=None) -> Prepared:
    out = ws.dir / "out"
    names = names or [str(model)]
    if audio:
        speech = ws.write("in.wav", encode_audio(tone(ws.np), 24000, "WAV"))
        argv = ["audio", "reconstruct", str(speech)]
    else:
        argv = ["reconstruct", str(ws.write("in.png", encode_image(picture(ws.np), "PNG")))]
    return Prepared([*argv, "--model", str(model), "-o", str(out), "--device", "cpu"], out, names, expect, outputs=1)


def _config_edit(fn, expect: str = "refuse", attr: str = "titok"):
    def make(ws):
        model = _model_copy(ws, attr)
        path = model / "config.json"
        record = json.loads(path.read_text())
        result = fn(record)
        path.write_text(result if isinstance(result, str) else json.dumps(record if result is None else result))
        return _model_run(ws, model, expect, audio=attr == "wavtok")
    return make


def _config_bytes(data, expect: str = "refuse"):
    def make(ws):
        model = _model_copy(ws)
        (model / "config.json").write_bytes(data if isinstance(data, bytes) else data.encode())
        return _model_run(ws, model, expect)
    return make


def _set(*path_value):
    *keys, value = path_value

    def fn(record):
        node = record
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return fn


def _drop(key):
    def fn(record):
        record["config"].pop(key)
    return fn


def _weights(fn, expect: str = "refuse", attr: str = "titok"):
    """Rewrite model.safetensors with ``fn(tensors) -> tensors``."""
    def make(ws):
        from safetensors.torch import load_file, save_file

        model = _model_copy(ws, attr)
        tensors = load_file(str(model / "model.safetensors"))
        save_file(fn(tensors, ws), str(model / "model.safetensors"))
        return _model_run(ws, model, expect, audio=attr == "wavtok")
    return make


def _first_float(tensors):
    return next(k for k, v in sorted(tensors.items()) if v.is_floating_point() and v.numel() > 4)


def _poison_shaped(value):
    def fn(tensors, ws):
        key = _first_float(tensors)
        flat = tensors[key].clone().reshape(-1)
        flat[ws.rng.randrange(flat.numel())] = value
        tensors[key] = flat.reshape(tensors[key].shape)
        return tensors
    return fn


def _reshape_one(tensors, ws):
    import torch

    key = _first_float(tensors)
    tensors[key] = torch.zeros(*tensors[key].shape[:-1], tensors[key].shape[-1] + 1)
    return tensors


def _drop_one(tensors, ws):
    tensors.pop(sorted(tensors)[ws.rng.randrange(len(tensors))])
    return tensors


def _extra_one(tensors, ws):
    import torch

    tensors["backdoor.weight"] = torch.zeros(3)
    return tensors


def _as_dtype(dtype_name: str):
    def fn(tensors, ws):
        import torch

        dtype = getattr(torch, dtype_name)
        return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in tensors.items()}
    return fn


def _safetensors_bytes(fn, expect: str = "refuse"):
    def make(ws):
        model = _model_copy(ws)
        path = model / "model.safetensors"
        path.write_bytes(fn(path.read_bytes(), ws))
        return _model_run(ws, model, expect)
    return make


def _header_len(data: bytes, ws) -> bytes:
    return struct.pack("<Q", 2**62) + data[8:]


def _header_offsets_beyond(data: bytes, ws) -> bytes:
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    key = sorted(k for k in header if k != "__metadata__")[0]
    header[key]["data_offsets"] = [0, 2**40]
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data[8 + n:]


def _header_shape_huge(data: bytes, ws) -> bytes:
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    key = sorted(k for k in header if k != "__metadata__")[0]
    header[key]["shape"] = [2**31, 2**31]
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data[8 + n:]


def _header_garbage(data: bytes, ws) -> bytes:
    (n,) = struct.unpack("<Q", data[:8])
    return data[:8] + b"{" + bytes(n - 1) + data[8 + n:]


def _with_planted_extra(name: str, drop_weights: bool = False, expect: str = "accept"):
    def make(ws):
        model = _model_copy(ws)
        torch_pickle(ws.marker, model / name)
        if drop_weights:
            (model / "model.safetensors").unlink()
        return _model_run(ws, model, expect)
    return make


def _model_path(fn, expect: str = "refuse", audio: bool = False):
    def make(ws):
        model, names = fn(ws)
        return _model_run(ws, model, expect, audio=audio, names=names)
    return make


def _planted_file(ws):
    path = torch_pickle(ws.marker, ws.dir / "tokenizer.ckpt")
    return path, [str(path)]


def _planted_bin(ws):
    path = torch_pickle(ws.marker, ws.dir / "pytorch_model.bin")
    return path, [str(path)]


def _config_file_as_model(ws):
    model = _model_copy(ws)
    return model / "config.json", [str(model / "config.json")]


def _empty_dir(ws):
    (ws.dir / "model").mkdir()
    return ws.dir / "model", [str(ws.dir / "model")]


def _missing(name):
    def fn(ws):
        model = _model_copy(ws)
        (model / name).unlink()
        return model, [str(model)]
    return fn


def _model_symlink_loop(ws):
    a, b = ws.dir / "model-a", ws.dir / "model-b"
    os.symlink(b, a)
    os.symlink(a, b)
    return a, [str(a)]


def _weights_to_dev_zero(ws):
    model = _model_copy(ws)
    (model / "model.safetensors").unlink()
    os.symlink("/dev/zero", model / "model.safetensors")
    return model, [str(model)]


MODEL_CASES = {
    "valid": _config_edit(lambda r: None, expect="accept"),
    "empty-directory": _model_path(_empty_dir),
    "missing-config": _model_path(_missing("config.json")),
    "missing-weights": _model_path(_missing("model.safetensors")),
    "config-empty": _config_bytes(b""),
    "config-invalid-json": _config_bytes('{"family": "titok", "config": {'),
    "config-latin-1": _config_bytes('{"family": "titok", "name": "caf\xe9"}'.encode("latin-1")),
    "config-utf-16": _config_bytes('{"family": "titok"}'.encode("utf-16")),
    "config-deep-nesting": _config_bytes("[" * 100000 + "]" * 100000),
    "config-list": _config_bytes("[1, 2, 3]"),
    "config-null": _config_bytes("null"),
    "config-nan-literal": _config_edit(lambda r: json.dumps(r).replace('"image_size": 32', '"image_size": NaN')),
    "family-unknown": _config_edit(_set("family", "titokk")),
    "family-wavtokenizer": _config_edit(_set("family", "wavtokenizer")),
    "family-generator": _config_edit(_set("family", "generator")),
    "family-is-a-list": _config_edit(_set("family", ["titok"])),
    "family-is-null": _config_edit(_set("family", None)),
    "config-is-a-string": _config_edit(_set("config", "large")),
    "config-is-null": _config_edit(_set("config", None)),
    "config-is-a-list": _config_edit(_set("config", [1, 2])),
    "config-is-empty": _config_edit(_set("config", {})),
    "config-unknown-key": _config_edit(_set("config", "widht", 3)),
    "config-patch-size-string": _config_edit(_set("config", "patch_size", "8")),
    "config-patch-size-not-divisor": _config_edit(_set("config", "patch_size", 7)),
    "config-patch-size-zero": _config_edit(_set("config", "patch_size", 0)),
    "config-image-size-negative": _config_edit(_set("config", "image_size", -32)),
    "config-image-size-float": _config_edit(_set("config", "image_size", 32.0), expect="either"),
    "config-image-size-bool": _config_edit(_set("config", "image_size", True)),
    "config-tokens-zero": _config_edit(_set("config", "num_latent_tokens", 0)),
    "config-tokens-negative": _config_edit(_set("config", "num_latent_tokens", -8)),
    "config-codebook-huge": _config_edit(_set("config", "codebook_size", 10**12)),
    "config-width-huge": _config_edit(_set("config", "encoder_size", {"width": 10**6, "depth": 1, "heads": 1})),
    "config-depth-huge": _config_edit(_set("config", "encoder_size", {"width": 64, "depth": 10**5, "heads": 4})),
    "config-size-preset-unknown": _config_edit(_set("config", "encoder_size", "gigantic")),
    "config-size-missing-field": _config_edit(_set("config", "encoder_size", {"width": 64})),
    "config-decoder-other-kind": _config_edit(_set("config", "decoder", "pixels")),
    "config-decoder-unknown": _config_edit(_set("config", "decoder", "diffusion")),
    "config-quantizer-options-evil": _config_edit(_set("config", "quantizer_options", {"__class__": "os.system"})),
    "config-missing-field": _config_edit(_drop("patch_size")),
    "config-extra-top-level-field": _config_edit(_set("evil", "x"), expect="either"),
    "config-future-version": _config_edit(_set("tokzoo_version", "999.0"), expect="either"),
    "weights-empty": _safetensors_bytes(lambda d, ws: b""),
    "weights-trunc-8": _safetensors_bytes(lambda d, ws: d[:8]),
    "weights-trunc-header": _safetensors_bytes(lambda d, ws: d[:200]),
    "weights-trunc-half": _safetensors_bytes(lambda d, ws: d[: len(d) // 2]),
    "weights-trunc-last": _safetensors_bytes(lambda d, ws: d[:-1]),
    "weights-flip-header": _safetensors_bytes(lambda d, ws: flip_bits(d, ws.rng, 4, 8, 400), expect="either"),
    "weights-flip-data": _safetensors_bytes(lambda d, ws: flip_bits(d, ws.rng, 64, len(d) // 2), expect="either"),
    "weights-zero-data": _safetensors_bytes(lambda d, ws: zero_range(d, len(d) // 2, len(d) // 4), expect="either"),
    "weights-header-length-huge": _safetensors_bytes(_header_len),
    "weights-header-offsets-beyond-file": _safetensors_bytes(_header_offsets_beyond),
    "weights-header-shape-huge": _safetensors_bytes(_header_shape_huge),
    "weights-header-garbage": _safetensors_bytes(_header_garbage),
    "weights-random-bytes": _safetensors_bytes(lambda d, ws: bytes(ws.rng.randrange(256) for _ in range(len(d)))),
    "weights-wrong-shape": _weights(_reshape_one),
    "weights-missing-key": _weights(_drop_one),
    "weights-extra-key": _weights(_extra_one),
    "weights-nan": _weights(_poison_shaped(float("nan"))),
    "weights-inf": _weights(_poison_shaped(float("inf"))),
    "weights-float16": _weights(_as_dtype("float16"), expect="accept"),
    "weights-bfloat16": _weights(_as_dtype("bfloat16"), expect="accept"),
    "weights-float64": _weights(_as_dtype("float64"), expect="either"),
    "weights-are-a-pickle": _with_planted_extra("model.safetensors", expect="refuse"),
    "planted-pytorch-model-bin-beside": _with_planted_extra("pytorch_model.bin"),
    "planted-model-pt-instead": _with_planted_extra("model.pt", drop_weights=True, expect="refuse"),
    "planted-ckpt-as-model": _model_path(_planted_file),
    "planted-bin-as-model": _model_path(_planted_bin),
    "config-json-as-model": _model_path(_config_file_as_model),
    "nonexistent-path": _model_path(lambda ws: (ws.dir / "no" / "model", [str(ws.dir / "no" / "model")])),
    "offline-hub-repo": _model_path(lambda ws: (Path("tokzoo-bad-input/no-such-repo"),
                                                ["tokzoo-bad-input/no-such-repo"])),
    "unknown-zoo-name": _model_path(lambda ws: (Path("titok-s129"), ["titok-s129"])),
    "symlink-loop": _model_path(_model_symlink_loop),
    "weights-link-to-dev-zero": _model_path(_weights_to_dev_zero),
    "audio-codec-for-images": _model_path(lambda ws: (ws.wavtok, [str(ws.wavtok)])),
    "image-tokenizer-for-audio": _model_path(lambda ws: (ws.titok, [str(ws.titok)]), audio=True),
}
for _name, _make in MODEL_CASES.items():
    add(f"model-{_name}", "model", _make)

AUDIO_MODEL_CASES = {
    "valid": _config_edit(lambda r: None, expect="accept", attr="wavtok"),
    "config-unknown-key": _config_edit(_set("config", "hop", 3), attr="wavtok"),
    "config-strides-string": _config_edit(_set("config", "strides", "23"), attr="wavtok", expect="either"),
    "config-strides-zero": _config_edit(_set("config", "strides", [0, 3]), attr="wavtok"),
    "config-sample-rate-zero": _config_edit(_set("config", "sample_rate", 0), attr="wavtok"),
    "config-sample-rate-negative": _config_edit(_set("config", "sample_rate", -24000), attr="wavtok"),
    "config-codebook-huge": _config_edit(_set("config", "codebook_size", 10**12), attr="wavtok"),
    "family-titok": _config_edit(_set("family", "titok"), attr="wavtok"),
    "weights-nan": _weights(_poison_shaped(float("nan")), attr="wavtok"),
    "weights-wrong-shape": _weights(_reshape_one, attr="wavtok"),
    "weights-missing-key": _weights(_drop_one, attr="wavtok"),
}
for _name, _make in AUDIO_MODEL_CASES.items():
    add(f"audio-model-{_name}", "audio-model", _make)
