"""REPA (Yu et al., 2024): align intermediate decoder patch features with a frozen vision encoder.

The projector has the layout of the release's ``MLPHead`` (a parameter-free LayerNorm slot, then
Linear-SiLU layers, then ``out_proj``) so that official projector weights load by name. The
teacher is any timm model; it is never a submodule of the tokenizer (not saved, not trained).
"""
from __future__ import annotations

import os
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from vistok.models.flextok.blocks import fp32_norm


class ParameterFreeNorm(nn.Module):
    """:func:`fp32_norm` as a module, holding the release's ``MLPHead`` norm slot (index 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fp32_norm(x)


class RepaHead(nn.Module):
    """``(B, P, dim)`` decoder features -> ``(B, P, out_dim)`` in the teacher's feature space."""

    def __init__(self, dim: int, out_dim: int, layers: int = 3, hidden_ratio: float = 4.0, norm: bool = True):
        super().__init__()
        if layers < 2:
            raise ValueError(f"the REPA projector needs at least 2 layers, got {layers}")
        hidden = int(hidden_ratio * dim)
        mods = [ParameterFreeNorm()] if norm else []
        mods += [nn.Linear(dim, hidden), nn.SiLU()]
        for _ in range(layers - 2):
            mods += [nn.Linear(hidden, hidden), nn.SiLU()]
        self.mlp = nn.Sequential(*mods)
        self.out_proj = nn.Linear(hidden, out_dim)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.mlp(x))


class RepaTeacher:
    """A frozen timm backbone giving patch features ``(B, C, h, w)`` for images in [0, 1]."""

    def __init__(self, name: str, input_size: int, pretrained: bool = True, weights: Optional[str] = None):
        """``weights``: a local file (safetensors or a torch state dict) of ``name``'s timm weights,
        read instead of the hub."""
        import timm

        kwargs = dict(pretrained=pretrained, num_classes=0)
        if weights is not None:
            if not os.path.isfile(weights):
                raise FileNotFoundError(f"REPA: repa_weights {weights!r} is not a file")
            kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": weights})
        try:
            try:  # ViTs take the input size; other backbones do not
                self.model = timm.create_model(name, img_size=input_size, **kwargs)
            except TypeError:
                self.model = timm.create_model(name, **kwargs)
        except Exception as err:  # timm raises many kinds (hub offline, missing file, unknown name)
            where = f"from {weights}" if weights is not None else "from the Hugging Face hub"
            raise RuntimeError(
                f"REPA: cannot build the teacher {name!r} with its pretrained weights {where} "
                f"({type(err).__name__}: {err}). timm fetches them from the hub on first use: run once where the "
                "hub is reachable (or copy its HF_HUB_CACHE here), or save the weights where it is reachable "
                "(timm.create_model(NAME, pretrained=True).state_dict() as .safetensors) and set "
                "model.config.repa_weights=FILE; else choose another repa_encoder, or set repa_weight=0 to "
                "train without REPA.") from None
        self.model.eval().requires_grad_(False)
        cfg = self.model.pretrained_cfg or {}
        self.mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406))).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225))).view(1, 3, 1, 1)
        self.input_size = input_size
        self.prefix = int(getattr(self.model, "num_prefix_tokens", 0))

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        device = images.device
        if self.mean.device != device:  # moved once, with the model, on first use
            self.model.to(device)
            self.mean, self.std = self.mean.to(device), self.std.to(device)
        x = F.interpolate(images.float(), size=(self.input_size, self.input_size), mode="bicubic", align_corners=False)
        x = (x - self.mean) / self.std
        out = self.model.forward_features(x)
        if out.dim() == 4:  # a convolutional backbone: already a grid
            return out.float()
        tokens = out[:, self.prefix:]
        side = int(round(tokens.shape[1] ** 0.5))
        if side * side != tokens.shape[1]:
            raise ValueError(f"REPA: teacher gives {tokens.shape[1]} patch tokens, not a square grid")
        return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, side, side).float()


def repa_loss(projected: torch.Tensor, target: torch.Tensor, grid: Optional[tuple] = None) -> torch.Tensor:
    """``1 - cos`` between projected decoder patches ``(B, P, C)`` (a ``grid`` of patches) and teacher
    features ``(B, C, h, w)`` resized to that grid; mean over patches and batch."""
    b, p, c = projected.shape
    gh, gw = grid if grid is not None else (int(round(p ** 0.5)),) * 2
    if target.shape[1] != c:
        raise ValueError(f"REPA: projector gives {c} channels, the teacher {target.shape[1]} (set repa_dim)")
    target = F.interpolate(target, size=(gh, gw), mode="bilinear", align_corners=False).flatten(2).transpose(1, 2)
    return (1 - F.cosine_similarity(projected.float(), target, dim=-1)).mean()
