"""What every evaluation result carries: the numbers and the protocol that produced them."""
from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from vistok.fileio import atomic_write_text


@dataclass
class Protocol:
    """Everything that changes an FID-family number.

    dataset: the evaluated images (path, count, preprocessing, content hash where known).
    reference: where the reference statistics came from (computed from the dataset, a cache file,
        or an imported ``.npz`` with its sha256).
    feature_network: name, layer, weights path / sha256 / source, precision.
    tokenizer: the model evaluated (name or path, family, config) when there is one.
    precision: autocast dtype the tokenizer actually ran in (``fp32`` on the CPU).
    seed: the perturbation / sampling seed (None when nothing is random). Every draw is per image
        from a generator seeded ``(seed, purpose, image index)``: ``'posterior'`` (a sampled VAE
        posterior), ``'decode'`` (a sampling decoder's noise), ``'pfid'`` with alpha and delta
        (perturbations), so the numbers do not depend on batch size or process count;
        ``tokenizer`` says which apply.
    definition: for pFID, which definition and parameters are implemented.
    """

    metric: str
    dataset: Dict[str, Any]
    reference: Dict[str, Any]
    feature_network: Dict[str, Any]
    fid_method: str = "auto"
    tokenizer: Optional[Dict[str, Any]] = None
    precision: Optional[str] = None
    seed: Optional[int] = None
    definition: Optional[Dict[str, Any]] = None
    environment: Dict[str, Any] = field(default_factory=lambda: environment())


def environment() -> Dict[str, Any]:
    import torch
    import torch_fidelity

    from vistok._version import __version__
    from vistok.metrics.gather import process_info

    return {"tokzoo_version": __version__, "torch": torch.__version__, "torch_fidelity": torch_fidelity.__version__,
            "python": platform.python_version(), "num_processes": process_info()[1],
            "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


@dataclass
class EvalResult:
    """One evaluation run: headline ``metrics``, per-point results (the pFID grid), its protocol."""

    metrics: Dict[str, Any]
    protocol: Protocol
    points: List[Dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {"metrics": self.metrics, "points": self.points, "protocol": asdict(self.protocol)}

    def save(self, path: Union[str, Path]) -> Path:
        """Write the result as JSON (whole, then renamed)."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=str) + "\n")


def protocol_line(**facts: Any) -> str:
    """One ``protocol: key=value; ...`` line for a command's printed numbers, ending with the tokzoo
    version, so a number copied from a terminal still says how it was measured."""
    from vistok._version import __version__

    parts = [f"{key.replace('_', ' ')}={value}" for key, value in facts.items() if value is not None]
    return "protocol: " + "; ".join(parts + [f"tokzoo={__version__}"])


