"""X-Codec 2 (Ye et al., 2025, the codec of Llasa): 16 kHz mono speech to one stream of FSQ ids
(65,536 codes, 50 tokens/s, 0.8 kbps) and back. Inference only (see below).

Native: every part is written here on the shared layers, the semantic encoder included.
Wav2Vec2-BERT (:mod:`audiotok.nn.w2v_bert`, the first 16 of facebook/w2v-bert-2.0's 24 conformer
layers, ~0.4 B parameters) and its log-mel input (:mod:`audiotok.nn.kaldi_fbank`, transformers'
``SeamlessM4TFeatureExtractor`` reproduced) were written natively rather than taken from transformers'
``Wav2Vec2BertModel``: the family then needs no optional extra, its CI tests run where transformers is
not installed, and the modules are ours to train later. The acoustic encoder is DAC's block layout
with BigVGAN's anti-aliased SnakeBeta (:mod:`audiotok.nn.alias_free`); the decoder a Vocos-style
transformer backbone (:mod:`.decoder`) and the shared iSTFT head; the quantizer
:class:`vistok.quant.FSQ`.

Encoding, as the official ``XCodec2Model.encode_code`` (and transformers' feature extractor): the
waveform is zero-padded on the right to the next multiple of 320 samples *strictly above* its length
(a length that is already a multiple gains a whole extra frame), so ``L = T // 320 + 1`` tokens. The
log-mel features are taken from that padded waveform with 160 more zeros on each side and normalised
over it; the w2v-BERT hidden state after layer 16 goes through the semantic adapter; the acoustic
encoder reads the padded waveform; both are concatenated, mixed by a linear layer, projected to 8
channels, bounded by FSQ's tanh *twice* (the release's residual FSQ bounds once before its only level,
which bounds again) and rounded to 4 levels per channel.

A batch with ``lengths``: each item is padded and normalised as if alone, items of the same token
count are coded together (so ids equal each item's own), and ids past an item's tokens are
``PAD_ID`` (-1). The official ``encode_code`` computes the semantic features of the first item only
and uses them for the whole batch; that is not reproduced. ``decode`` returns ``L * 320`` samples.

**Inference only.** Training (the semantic reconstruction loss, the discriminators and the frozen
w2v-BERT of the paper) is not implemented; ``prepare_training`` (which ``tokzoo train`` calls) refuses.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from audiotok.models.codec import PAD_ID, AudioCodec, group_by_length
from audiotok.models.xcodec2.config import XCodec2Config
from audiotok.models.xcodec2.decoder import TransformerBackbone
from audiotok.models.xcodec2.encoder import AcousticEncoder, SemanticAdapter
from audiotok.nn.heads import ISTFTHead
from audiotok.nn.kaldi_fbank import FRAME_SHIFT, w2v_bert_features
from audiotok.nn.w2v_bert import W2vBertEncoder
from vistok.errors import InputError
from vistok.models.base import ReconOut
from vistok.quant.fsq import FSQ


class XCodec2(AudioCodec):
    """The X-Codec 2 family: ``encode(wav) -> ids (B, 1, L)``, ``decode(ids) -> wav (B, L * 320)``.

    Waveforms are mono, ``(T,)``, ``(B, T)`` or ``(B, 1, T)``, at 16 kHz unless ``sample_rate`` says
    otherwise (then resampled). ``forward`` reconstructs in eval mode (no training: see the module
    docstring).
    """

    family = "xcodec2"
    config_class = XCodec2Config

    def __init__(self, config: Union[XCodec2Config, Dict[str, Any]]):
        super().__init__()
        cfg = config if isinstance(config, XCodec2Config) else XCodec2Config(**config)
        self.config = cfg
        self.semantic = W2vBertEncoder(160, cfg.semantic_dim, cfg.semantic_layers, cfg.semantic_heads,
                                       cfg.semantic_ffn_dim, cfg.semantic_kernel, cfg.semantic_left_max,
                                       cfg.semantic_right_max)
        self.semantic_adapter = SemanticAdapter(cfg.semantic_dim)
        self.acoustic = AcousticEncoder(cfg.encoder_dim, cfg.strides, cfg.hidden_dim)
        self.fuse = nn.Linear(cfg.fused_dim, cfg.fused_dim)
        self.project_in = nn.Linear(cfg.fused_dim, len(cfg.fsq_levels))
        self.quantizer = FSQ(cfg.fsq_levels)
        self.project_out = nn.Linear(len(cfg.fsq_levels), cfg.fused_dim)
        self.post = nn.Linear(cfg.fused_dim, cfg.hidden_dim)
        self.backbone = TransformerBackbone(cfg.hidden_dim, cfg.decoder_layers, cfg.decoder_heads,
                                            cfg.decoder_ffn_dim, cfg.rope_base)
        self.head = ISTFTHead(cfg.hidden_dim, 4 * cfg.hop_length, cfg.hop_length)

    # ----- what it is -----

    def num_levels(self, num_quantizers: Optional[int] = None) -> int:
        """Always 1 (one codebook); ``num_quantizers`` may only say 1."""
        if num_quantizers is not None and (isinstance(num_quantizers, bool) or num_quantizers != 1):
            raise ValueError(f"num_quantizers must be 1 for X-Codec 2 (one codebook), got {num_quantizers!r}")
        return 1

    def prepare_training(self) -> None:
        raise InputError("xcodec2 is inference-only in tokzoo: its training (semantic reconstruction loss, "
                         "discriminators, the frozen w2v-BERT teacher) is not implemented; use the released "
                         "weights for encode/decode")

    # ----- encode -----

    def padded_length(self, samples: int) -> int:
        """Samples after the release's padding: the next multiple of 320 strictly above ``samples``."""
        return (int(samples) // self.hop_length + 1) * self.hop_length

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """Padded waveforms ``(B, 1, N)`` -> stacked log-mel features ``(B, N / 320, 160)``, each item alone."""
        return torch.stack([w2v_bert_features(F.pad(item[0], (FRAME_SHIFT, FRAME_SHIFT))) for item in x])

    def quantizer_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Padded waveforms ``(B, 1, N)``, ``N`` a multiple of 320 -> FSQ input ``(B, N / 320, len(fsq_levels))``
        after the release's first bound (the quantizer bounds once more)."""
        semantic = self.semantic_adapter(self.semantic(self._features(x).to(x.dtype)).transpose(1, 2))
        acoustic = self.acoustic(x)
        fused = self.fuse(torch.cat([semantic, acoustic], dim=1).transpose(1, 2))
        return self.quantizer.bound(self.project_in(fused).float())

    def _pad(self, x: torch.Tensor, samples: Optional[int] = None) -> torch.Tensor:
        n = x.shape[-1] if samples is None else samples
        return F.pad(x[..., :n], (0, self.padded_length(n) - n))

    def _codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantizer(self.quantizer_latent(x)).indices[:, None]

    def encode(self, wav: torch.Tensor, sample_rate: Optional[int] = None, num_quantizers: Optional[int] = None,
               lengths: Optional[torch.Tensor] = None, resample: bool = True) -> torch.Tensor:
        """Waveforms -> int64 ids ``(B, 1, L)``, ``L = T // 320 + 1`` (the release's padding).

        ``sample_rate``: the rate of ``wav`` when it is not 16 kHz (resampled here unless
        ``resample=False``, which makes it an error). ``num_quantizers``: 1 or None. ``lengths``:
        valid samples per item of a zero-padded batch; each item is then encoded exactly as if
        alone, and its ids past its own ``length // 320 + 1`` tokens are ``PAD_ID`` (-1).
        """
        self.num_levels(num_quantizers)
        x, lengths = self.prepare_waveform(wav, sample_rate, lengths, 1, resample)
        if x.shape[-1] < 80:
            raise ValueError(f"wav needs at least 80 samples (one log-mel frame after padding), got {x.shape[-1]}")
        if lengths is None:
            return self._codes(self._pad(x))
        if bool((lengths < 80).any()):
            raise ValueError(f"lengths must be at least 80 samples, got {lengths.tolist()}")
        tokens = [int(n) // self.hop_length + 1 for n in lengths.tolist()]
        ids = torch.full((x.shape[0], 1, max(tokens)), PAD_ID, dtype=torch.long, device=x.device)
        for items in group_by_length(tokens).values():
            part = torch.cat([self._pad(x[i: i + 1], int(lengths[i])) for i in items])
            ids[items, :, : part.shape[-1] // self.hop_length] = self._codes(part)
        return ids

    # ----- pFID hooks -----

    def quantizer_input(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        """The FSQ's input for waveforms ``x``, channels last ``(B, L, len(fsq_levels))``."""
        wav, _ = self.prepare_waveform(x, None, None)
        return self.quantizer_latent(self._pad(wav))

    def ids_from_quantizer(self, indices: torch.Tensor) -> torch.Tensor:
        """The FSQ's ``(B, L)`` -> ``(B, 1, L)``."""
        return indices[:, None]

    # ----- decode -----

    def ids_to_latent(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``(B, 1, L)`` (no padding) -> the decoder's input ``(B, L, hidden_dim)``."""
        codes = self.quantizer.decode_indices(self.check_ids(ids)[:, 0])
        return self.post(self.project_out(codes.to(self.project_out.weight.dtype)))

    def _decode_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """``(B, L, hidden_dim)`` -> ``(B, L * 320)``."""
        return self.head(self.backbone(latent))

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``(B, 1, L)`` -> waveform ``(B, L * 320)`` at 16 kHz. An item with ``PAD_ID`` past its
        ``n`` tokens is decoded as if alone from those ``n`` (zeros past ``n * 320``)."""
        return self.decode_each_length(self.check_ids(ids))

    # ----- reconstruction -----

    def forward(self, wav: torch.Tensor, sample_rate: Optional[int] = None,
                num_quantizers: Optional[int] = None) -> ReconOut:
        """Encode and decode (eval only): ``recon`` ``(B, T)`` has the input's length; ``indices``
        ``(B, 1, L)``; ``latent`` the decoder's input; ``loss`` zero."""
        if self.training and torch.is_grad_enabled():
            self.prepare_training()
        ids = self.encode(wav, sample_rate, num_quantizers)
        x, _ = self.prepare_waveform(wav, sample_rate, None)
        latent = self.ids_to_latent(ids)
        recon = self._decode_latent(latent)[:, : x.shape[-1]]
        return ReconOut(recon=recon, indices=ids, loss=recon.new_zeros(()), latent=latent)
