"""Everything that defines a FlexTok tokenizer: architecture, training options, sampling defaults."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Union

from vistok.models.flextok.vae import FlexTokVAEConfig

NESTED_DROPOUT_MODES = ("uniform", "pow2", "uniform_pow2")
REGISTER_OPS = ("posemb", "nested_dropout", "null_cond")
TIMESTEP_SAMPLING = ("logit_normal", "stratified_logit_normal", "uniform")


@dataclass
class FlexTokConfig:
    """FlexTok (Bachmann et al., 2025) as released: VAE latents -> 2x2 patches + registers ->
    block-causal encoder -> FSQ ids; rectified-flow decoder conditioned on the first k registers.

    Widths follow the release (``dim = 64 * depth`` for d12/d18/d28). Options marked "training"
    change nothing at inference. ``register_ops`` is the order in which the decoder applies, to
    the projected registers, the positional embedding, the nested-dropout mask token and the
    classifier-free-guidance null condition (the release's module order).
    """

    image_size: int = 256
    vae: Union[FlexTokVAEConfig, Dict[str, Any]] = field(default_factory=FlexTokVAEConfig)
    patch_size: int = 2
    num_registers: int = 256
    fsq_levels: List[int] = field(default_factory=lambda: [8, 8, 8, 5, 5, 5])
    encoder_dim: int = 768
    encoder_depth: int = 12
    decoder_dim: int = 768
    decoder_depth: int = 12
    head_dim: int = 64
    mlp_ratio: float = 4.0
    gated_mlp: bool = True
    qkv_bias: bool = False
    proj_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = True
    patch_posemb: str = "sincos"
    posemb_scaling: str = "absolute"
    register_posemb: Optional[str] = "learnable_sum"  # None: the decoder's registers get no positions
    register_ops: List[str] = field(default_factory=lambda: list(REGISTER_OPS))
    null_cond: str = "learned"  # "learned" vector or "zero"
    null_cond_single_token: bool = False  # the null condition is one token instead of a full sequence
    adaln_expansion: int = 2  # 2: patches and registers modulated separately; 1: shared
    time_frequency_dim: int = 256
    time_max_timestep: float = 1000.0
    encoder_head_norm: bool = True
    decoder_head_norm: bool = True
    # training
    nested_dropout: str = "uniform"
    cfg_dropout: float = 0.0  # probability that a sample's registers are replaced by the null condition
    fsq_drop_quant_p: float = 0.0  # per-sample probability to skip FSQ rounding
    corrupt_tokens_p: float = 0.0  # max fraction of tokens replaced by random codes
    min_corrupt_tokens_p: Optional[float] = None
    apply_corrupt_tokens_p: float = 0.2  # per-sample probability that corruption is applied
    timestep_sampling: str = "logit_normal"
    timestep_mode_scale: float = 0.0  # SD3 mode sampling, with timestep_sampling="uniform"
    repa_layer: Optional[int] = None  # decoder block whose patch features are aligned (0-based)
    repa_encoder: str = "vit_large_patch14_dinov2.lvd142m"  # a timm model name
    repa_weights: Optional[str] = None  # a local file of the teacher's timm weights (else the hub)
    repa_dim: int = 1024  # the REPA encoder's feature width
    repa_weight: float = 0.0
    repa_head_layers: int = 3
    repa_head_ratio: float = 4.0
    repa_head_norm: bool = True
    repa_input_size: int = 224
    # sampling defaults (decode arguments override them)
    decode_steps: int = 25
    decode_guidance: float = 1.0
    decode_apg: bool = False
    eval_decode_steps: Optional[int] = None  # forward() in eval mode (held-out checks); None: decode_steps

    def __post_init__(self):
        if not isinstance(self.vae, FlexTokVAEConfig):
            self.vae = FlexTokVAEConfig(**dict(self.vae))
        self.fsq_levels = [int(v) for v in self.fsq_levels]
        self.register_ops = list(self.register_ops)
        checks = [
            (self.nested_dropout in NESTED_DROPOUT_MODES, f"nested_dropout must be one of {NESTED_DROPOUT_MODES}"),
            (sorted(self.register_ops) == sorted(REGISTER_OPS), f"register_ops must order {REGISTER_OPS}"),
            (self.null_cond in ("learned", "zero"), "null_cond must be 'learned' or 'zero'"),
            (self.adaln_expansion in (1, 2), "adaln_expansion must be 1 or 2"),
            (self.timestep_sampling in TIMESTEP_SAMPLING, f"timestep_sampling must be one of {TIMESTEP_SAMPLING}"),
            (self.latent_size % self.patch_size == 0,
             f"the VAE latent size {self.latent_size} is not a multiple of patch_size {self.patch_size}"),
            (self.repa_layer is None or 0 <= self.repa_layer < self.decoder_depth,
             f"repa_layer must be a decoder block index in 0..{self.decoder_depth - 1}"),
            (self.repa_weight == 0 or self.repa_layer is not None, "repa_weight > 0 needs repa_layer (a decoder block)"),
            (self.eval_decode_steps is None or self.eval_decode_steps >= 1, "eval_decode_steps must be >= 1 (or None)"),
            (self.nested_dropout != "pow2" or self.num_registers & (self.num_registers - 1) == 0,
             "nested_dropout='pow2' needs a power-of-two num_registers"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"FlexTokConfig: {message}")

    @property
    def latent_size(self) -> int:
        return self.image_size // self.vae.downsample_factor

    @property
    def grid_size(self) -> int:
        return self.latent_size // self.patch_size

    @property
    def token_dim(self) -> int:
        return len(self.fsq_levels)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels)

    @property
    def bottleneck(self) -> str:  # discrete ids (read by `tokzoo encode`)
        return "fsq"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
