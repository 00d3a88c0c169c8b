"""WavTokenizer model: sizes, shapes and lengths at both token rates, exact batched encoding, decoding
paths, training forward, residual-VQ option, errors, save/load."""
from pathlib import Path

import pytest
import torch

from audiotok.dsp import MelSpectrogram, resample, safe_log
from audiotok.models.wavtokenizer import PAD_ID, WavTokenizer, WavTokenizerConfig
from vistok.hub.loading import load_tokenizer

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "audio"


def tiny_config(**overrides):
    """hop 6, 16-d codes, 32-entry codebook: milliseconds per call."""
    cfg = dict(strides=[2, 3], n_filters=4, dim=16, codebook_size=32, decoder_dim=32, decoder_intermediate_dim=48,
               decoder_layers=2, norm_groups=4, lstm_layers=1, kmeans_iters=5)
    cfg.update(overrides)
    return WavTokenizerConfig(**cfg)


@torch.no_grad()
def spread_codebook(model, seed=0):
    """Codes drawn around the encoder's output on noise, so ids vary (a fresh codebook is all zeros)."""
    gen = torch.Generator().manual_seed(seed)
    z, _ = model.encoder(torch.randn(4, 1, 600, generator=gen))
    frames = z.transpose(1, 2).reshape(-1, z.shape[1])
    quantizers = model.quantizer.quantizers if model.config.num_quantizers > 1 else [model.quantizer]
    for i, q in enumerate(quantizers):
        pick = torch.randint(0, frames.shape[0], (q.codebook_size,), generator=gen)
        q.embed.copy_(frames[pick] * (0.5 ** i) + 0.01 * torch.randn(q.embed.shape, generator=gen))
        q.embed_avg.copy_(q.embed)
        q.initted.fill_(True)
    return model


def tiny_model(**overrides):
    return spread_codebook(WavTokenizer(tiny_config(**overrides))).eval()


@pytest.mark.parametrize("rate,hop,n_fft,params", [(40, 600, 2400, 72_111_714), (75, 320, 1280, 71_750_146)])
def test_published_configs_build_at_full_size(rate, hop, n_fft, params):
    cfg = WavTokenizerConfig.for_token_rate(rate)
    assert (cfg.hop_length, cfg.n_fft, cfg.token_rate, cfg.codebook_size, cfg.dim) == (hop, n_fft, rate, 4096, 512)
    with torch.device("meta"):
        model = WavTokenizer(cfg)
    assert sum(p.numel() for p in model.parameters()) == params  # the inference generator of the release
    assert model.quantizer.embed.shape == (4096, 512) and not model.quantizer.embed.requires_grad  # EMA buffer
    assert model.family == "wavtokenizer"


@pytest.mark.parametrize("rate", [40, 75])
def test_lengths_at_both_token_rates(rate):
    cfg = WavTokenizerConfig.for_token_rate(rate, n_filters=2, dim=8, codebook_size=16, decoder_dim=8,
                                            decoder_intermediate_dim=8, decoder_layers=1, norm_groups=4, lstm_layers=1)
    model = spread_codebook(WavTokenizer(cfg)).eval()
    hop = cfg.hop_length
    with torch.no_grad():
        for samples, tokens in [(24000, rate), (24001, rate + 1), (hop - 1, 1)]:
            ids = model.encode(torch.randn(2, samples) * 0.1)
            assert ids.shape == (2, tokens) and ids.dtype == torch.int64
            assert model.decode(ids).shape == (2, tokens * hop)
        assert model(torch.randn(1, 24001) * 0.1).recon.shape == (1, 24001)


def test_round_trip_shapes_and_ids():
    model = tiny_model()
    x = torch.randn(3, 100)
    with torch.no_grad():
        ids = model.encode(x)
        wav = model.decode(ids)
        again = model.encode(x[:, None])  # (B, 1, T) is accepted too
    assert ids.shape == (3, 17) and 0 <= int(ids.min()) and int(ids.max()) < 32
    assert len(ids.unique()) > 3  # the spread codebook is actually used
    assert torch.equal(ids, again)
    assert wav.shape == (3, 17 * 6) and torch.isfinite(wav).all()
    torch.testing.assert_close(model.decode(ids[1:2])[0], wav[1])


def test_batched_encode_with_lengths_is_exact_per_item():
    model = tiny_model()
    lengths = [100, 37, 5, 1]
    clips = [torch.randn(n) for n in lengths]
    batch = torch.zeros(4, 100)
    for i, clip in enumerate(clips):
        batch[i, : len(clip)] = clip
    with torch.no_grad():
        ids = model.encode(batch, lengths=torch.tensor(lengths))
        alone = [model.encode(clip[None])[0] for clip in clips]
        for i, single in enumerate(alone):
            assert torch.equal(ids[i, : len(single)], single), i
            assert (ids[i, len(single):] == PAD_ID).all()
        assert model.token_lengths(ids).tolist() == [17, 7, 1, 1]
        wav = model.decode(ids)
        for i, single in enumerate(alone):
            n = len(single) * 6
            torch.testing.assert_close(wav[i, :n], model.decode(single[None])[0], rtol=0, atol=1e-6)
            assert not wav[i, n:].any()


def test_input_at_another_rate_is_resampled():
    model = tiny_model()
    x = torch.randn(2, 320)
    with torch.no_grad():
        ids = model.encode(x, sample_rate=16000)
        assert torch.equal(ids, model.encode(resample(x, 16000, 24000)))
        padded = model.encode(x, sample_rate=16000, lengths=torch.tensor([320, 160]))
    assert padded.shape == ids.shape and torch.equal(padded[0], ids[0])
    assert model.token_lengths(padded).tolist() == [80, 40]  # 240 resampled samples / hop 6


def test_chunked_decode():
    model = tiny_model()
    with torch.no_grad():
        ids = model.encode(torch.randn(2, 120))
        full = model.decode(ids)
        assert torch.equal(model.decode(ids, chunk_size=ids.shape[-1]), full)
        pieces = list(model.decode_stream(ids, chunk_size=6, context=2))
        chunked = model.decode(ids, chunk_size=6, context=2)
    assert [p.shape[-1] for p in pieces] == [36, 36, 36, 12]
    assert torch.equal(torch.cat(pieces, -1), chunked) and chunked.shape == full.shape
    with pytest.raises(ValueError, match="chunk_size"):
        list(model.decode_stream(ids, chunk_size=0))


def test_training_forward_initialises_codebook_and_carries_gradients():
    model = WavTokenizer(tiny_config()).train()
    assert not bool(model.quantizer.initted)
    x = torch.randn(4, 120)
    out = model(x)
    assert bool(model.quantizer.initted)  # k-means on the first training batch
    assert out.recon.shape == (4, 120) and out.indices.shape == (4, 20) and out.latent.shape == (4, 16, 20)
    assert 0 <= out.stats["condition"] < 4 and "commitment" in out.stats and "perplexity" in out.stats
    ((out.recon - x).abs().mean() + out.loss).backward()
    for name in ["encoder.stem.conv.parametrizations.weight.original1", "encoder.lstm.weight_ih_l0",
                 "backbone.embed.weight", "backbone.pos_net.2.q.weight", "backbone.convnext.1.gamma",
                 "head.proj.weight"]:
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and float(grad.abs().sum()) > 0, name
    model.eval()
    assert model(x).stats["condition"] == 0.0


def test_encode_never_updates_the_codebook():
    model = tiny_model().train()
    embed, sizes = model.quantizer.embed.clone(), model.quantizer.cluster_size.clone()
    model.encode(torch.randn(2, 120))
    assert torch.equal(model.quantizer.embed, embed) and torch.equal(model.quantizer.cluster_size, sizes)
    assert model.quantizer.training  # mode restored
    model(torch.randn(2, 120))
    assert not torch.equal(model.quantizer.embed, embed)  # the training forward does (EMA)


def test_residual_vq_option():
    model = tiny_model(num_quantizers=3, quantizer_dropout=True)
    x = torch.randn(2, 60)
    with torch.no_grad():
        ids = model.encode(x)
        assert ids.shape == (2, 3, 10) and (ids >= 0).all()
        assert model.decode(ids).shape == (2, 60)
        assert model.decode(ids[:, :1]).shape == (2, 60)  # a coarser bitrate: first level only
        padded = model.encode(torch.cat([x[:, :30], torch.zeros(2, 30)], 1), lengths=torch.tensor([30, 60]))
    assert (padded[0, :, 5:] == PAD_ID).all() and torch.equal(padded[0, :, :5], model.encode(x[:1, :30])[0])
    model.train()
    torch.manual_seed(3)
    levels = {int((model(x).indices[0, :, 0] >= 0).sum()) for _ in range(12)}
    assert len(levels) > 1  # quantizer dropout switches levels off during training


def test_bad_input_is_named():
    model = tiny_model()
    with pytest.raises(ValueError, match="NaN"):
        model.encode(torch.tensor([[0.0, float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="mono"):
        model.encode(torch.zeros(1, 2, 10))
    with pytest.raises(ValueError, match="shape"):
        model.encode(torch.zeros(1, 1, 1, 10))
    with pytest.raises(TypeError, match="floating"):
        model.encode(torch.zeros(1, 10, dtype=torch.int16))
    with pytest.raises(ValueError, match="no samples"):
        model.encode(torch.zeros(1, 0))
    with pytest.raises(ValueError, match="lengths"):
        model.encode(torch.zeros(2, 10), lengths=torch.tensor([10, 11]))
    with pytest.raises(TypeError, match="integer"):
        model.decode(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="0..31"):
        model.decode(torch.tensor([[1, 32]]))
    with pytest.raises(ValueError, match="trailing"):
        model.decode(torch.tensor([[1, -1, 2]]))
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        model.decode(torch.zeros(2, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="token_rate"):
        WavTokenizerConfig.for_token_rate(50)
    with pytest.raises(ValueError, match="norm_groups"):
        tiny_config(decoder_dim=30)


def test_save_and_load_pretrained(tmp_path):
    model = tiny_model(num_quantizers=2)
    model.save_pretrained(tmp_path / "tok")
    loaded = load_tokenizer(tmp_path / "tok")
    assert isinstance(loaded, WavTokenizer) and not loaded.training
    assert loaded.config.to_dict() == model.config.to_dict()
    x = torch.randn(1, 90)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), model.encode(x))
        torch.testing.assert_close(loaded.decode(model.encode(x)), model.decode(model.encode(x)))
    assert WavTokenizer.from_pretrained(tmp_path / "tok").config.num_quantizers == 2


def test_tiny_codec_learns_real_speech():
    sf = pytest.importorskip("soundfile")
    clips = []
    for path in sorted(ASSETS.glob("*.flac")):
        data, rate = sf.read(str(path), dtype="float32")
        assert rate == 24000
        clips.append(torch.from_numpy(data[:24000]))
    assert clips, f"no speech assets under {ASSETS}"
    model = WavTokenizer(tiny_config(decoder_dim=64, decoder_intermediate_dim=96, n_fft=24)).train()
    mel = MelSpectrogram(n_fft=256, hop_length=64, n_mels=32)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(40):
        starts = torch.randint(0, 24000 - 1200, (len(clips),), generator=gen).tolist()
        x = torch.stack([c[s: s + 1200] for c, s in zip(clips, starts)])
        out = model(x)
        loss = (safe_log(mel(out.recon)) - safe_log(mel(x))).abs().mean()
        opt.zero_grad()
        (loss + out.loss).backward()
        opt.step()
        losses.append(float(loss.detach()))
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)
