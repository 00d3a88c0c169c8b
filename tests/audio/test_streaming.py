"""Streaming: causal SEANet stacks run chunk by chunk equal their one-shot output, and EnCodec's
streaming decoder equals ``decode`` for every chunking; codecs that cannot stream say so."""
import pytest
import torch

from audiotok.models.encodec import EnCodec
from audiotok.nn.seanet import PaddedConv1d, SEANetEncoder
from audiotok.nn.seanet_decoder import PaddedConvTranspose1d, SEANetDecoder
from audiotok.nn.streaming import CausalConvStream, stream_of
from tests.audio.test_encodec import tiny_config, tiny_model


def _run(stream, x, chunk):
    outs = [stream.step(x[..., i: i + chunk]) for i in range(0, x.shape[-1], chunk)]
    outs.append(stream.flush())
    return torch.cat([o for o in outs if o is not None], -1)


def _randomise(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return module


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_encodec_streaming_decode_equals_one_shot_decode(chunk):
    model = tiny_model()
    ids = torch.randint(0, 16, (2, 3, 23), generator=torch.Generator().manual_seed(chunk))
    with torch.no_grad():
        whole = model.decode(ids)
        decoder = model.streaming_decoder()
        pieces = [decoder.step(ids[..., i: i + chunk]) for i in range(0, ids.shape[-1], chunk)]
        pieces.append(decoder.flush())
    streamed = torch.cat(pieces, -1)
    assert streamed.shape == whole.shape == (2, 23 * model.hop_length)
    assert whole.abs().max() > 1e-3
    torch.testing.assert_close(streamed, whole, atol=1e-5, rtol=0)


def test_the_first_output_waits_for_the_stems_reflect_padding_then_every_frame_gives_a_hop():
    model = tiny_model()
    ids = torch.randint(0, 16, (1, 2, 12), generator=torch.Generator().manual_seed(1))
    decoder = model.streaming_decoder()
    with torch.no_grad():
        counts = [decoder.step(ids[..., i: i + 1]).shape[-1] for i in range(12)]
    stem = model.config.kernel_size - 1  # a reflection of 6 frames needs 7 frames
    assert counts[:stem] == [0] * stem
    assert counts[stem] == (stem + 1) * model.hop_length
    assert counts[stem + 1:] == [model.hop_length] * (12 - stem - 1)


def test_a_stream_shorter_than_the_stems_padding_comes_out_at_flush():
    model = tiny_model()
    ids = torch.randint(0, 16, (1, 2, 3), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        decoder = model.streaming_decoder()
        assert decoder.step(ids).shape == (1, 0)
        torch.testing.assert_close(decoder.flush(), model.decode(ids), atol=1e-5, rtol=0)


@pytest.mark.parametrize("length", [37, 48, 53])
def test_a_causal_encoder_streams_including_the_padding_that_completes_the_last_frame(length):
    encoder = _randomise(SEANetEncoder([2, 3], dim=8, n_filters=4, lstm_layers=1, causal=True))
    x = torch.randn(2, 1, length, generator=torch.Generator().manual_seed(length))
    with torch.no_grad():
        whole, _ = encoder(x)
        streamed = _run(stream_of(encoder), x, 5)
    assert streamed.shape == whole.shape == (2, 8, -(-length // 6))
    torch.testing.assert_close(streamed, whole, atol=1e-5, rtol=0)


def test_a_transposed_conv_trimmed_on_both_ends_streams():
    layer = _randomise(PaddedConvTranspose1d(3, 2, 8, 4, causal=True, trim_right_ratio=0.5))
    x = torch.randn(1, 3, 11, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(_run(stream_of(layer), x, 2), layer(x), atol=1e-6, rtol=0)


def test_zero_left_padding_streams_without_waiting():
    conv = _randomise(torch.nn.Conv1d(2, 3, 5))
    stream = CausalConvStream(conv, 5, 1, "constant", conv)
    x = torch.randn(1, 2, 9, generator=torch.Generator().manual_seed(4))
    first = stream.step(x[..., :1])
    assert first.shape[-1] == 1
    rest = _run(stream, x[..., 1:], 2)
    with torch.no_grad():
        torch.testing.assert_close(torch.cat([first, rest], -1), conv(torch.nn.functional.pad(x, (4, 0))))


def test_non_causal_or_segmented_codecs_refuse_to_stream():
    with pytest.raises(ValueError, match="causal, unsegmented"):
        EnCodec(tiny_config(causal=False)).streaming_decoder()
    with pytest.raises(ValueError, match="segmented"):
        EnCodec(tiny_config("segmented")).streaming_decoder()
    with pytest.raises(ValueError, match="pads on the right"):
        stream_of(PaddedConv1d(2, 2, 3, causal=False))
    with pytest.raises(ValueError, match="group norm"):
        stream_of(SEANetDecoder([2], dim=4, n_filters=2, lstm_layers=0, norm="time_group_norm"))


def test_streaming_decoder_refuses_bad_chunks():
    model = tiny_model()
    decoder = model.streaming_decoder()
    decoder.step(torch.zeros(1, 2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(1, 2, n\)"):
        decoder.step(torch.zeros(1, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="PAD_ID"):
        decoder.step(torch.tensor([[[0, -1], [0, -1]]]))
    with pytest.raises(ValueError, match="in 0..15"):
        decoder.step(torch.full((1, 2, 1), 16))
    decoder.flush()
    with pytest.raises(RuntimeError, match="after flush"):
        decoder.step(torch.zeros(1, 2, 1, dtype=torch.long))
