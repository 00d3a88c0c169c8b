"""Mimi's decoder as a :class:`audiotok.nn.streaming.Stream`: the depthwise transposed convolution
(overlap-added across chunks), the decoder transformer with a cache of the keys and values of the
frames its attention window still reaches, and the causal SEANet decoder (zero-padded causal
convolutions: every frame's samples come out with the chunk that completes it, nothing waits)."""
from __future__ import annotations

from audiotok.models.mimi.transformer import MimiTransformer
from audiotok.nn.streaming import Chain, Stream, _has, register_stream, stream_of


class TransformerStream(Stream):
    """A :class:`MimiTransformer` over successive chunks of frames: each chunk attends to the
    cached frames of earlier chunks inside its window, at positions that continue theirs."""

    def __init__(self, transformer: MimiTransformer):
        self.transformer = transformer
        self.cache = transformer.new_cache()

    def step(self, x):
        return self.transformer(x, self.cache) if _has(x) else None


def mimi_decoder_stream(model) -> Stream:
    """The stream of ``model``'s decoder: latent frames at the token rate in, samples out."""
    return Chain([stream_of(model.upsample), stream_of(model.decoder_transformer), stream_of(model.decoder)])


register_stream(MimiTransformer, TransformerStream)
