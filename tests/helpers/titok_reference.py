"""An independent TiTok forward pass written directly on the *official* state-dict layout.

It follows the official code's semantics (sequence-first nn.MultiheadAttention maths, the legacy
memory reshape, 1x1 convolutions, the soft MaskGIT-VQGAN embedding, TF "same" padding and the
output-side ``nin_shortcut``) with plain functional ops, so tests can check that the converter
plus tokzoo's modules give the same numbers.
"""
import math

import torch
import torch.nn.functional as F

GRID_KEYS = ("class_embedding", "positional_embedding", "latent_token_positional_embedding")


def official_state_dict(spec, seed=0):
    """Random tensors under the official key names for a tiny spec (dict)."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *shape, s=0.1: torch.randn(*shape, generator=g) * s  # noqa: E731
    sd = {}
    w, n, d, grid, p = spec["width"], spec["tokens"], spec["token_size"], spec["grid"], spec["patch"]
    sd["latent_tokens"] = rnd(n, w, s=0.01)  # small, so the tokens are driven by the image
    for part in ("encoder", "decoder"):
        sd[f"{part}.class_embedding"] = rnd(1, w)
        sd[f"{part}.positional_embedding"] = rnd(grid * grid + 1, w)
        sd[f"{part}.latent_token_positional_embedding"] = rnd(n, w, s=0.01 if part == "encoder" else 0.1)
        for ln in ("ln_pre", "ln_post"):
            sd[f"{part}.{ln}.weight"] = 1 + rnd(w)
            sd[f"{part}.{ln}.bias"] = rnd(w)
        for i in range(spec["depth"]):
            b = f"{part}.transformer.{i}."
            for ln in ("ln_1", "ln_2"):
                sd[b + ln + ".weight"], sd[b + ln + ".bias"] = 1 + rnd(w), rnd(w)
            sd[b + "attn.in_proj_weight"], sd[b + "attn.in_proj_bias"] = rnd(3 * w, w, s=0.5), rnd(3 * w)
            sd[b + "attn.out_proj.weight"], sd[b + "attn.out_proj.bias"] = rnd(w, w, s=0.5), rnd(w)
            sd[b + "mlp.c_fc.weight"], sd[b + "mlp.c_fc.bias"] = rnd(4 * w, w), rnd(4 * w)
            sd[b + "mlp.c_proj.weight"], sd[b + "mlp.c_proj.bias"] = rnd(w, 4 * w), rnd(w)
    sd["encoder.patch_embed.weight"], sd["encoder.patch_embed.bias"] = rnd(w, 3, p, p, s=1.0), rnd(w)
    sd["encoder.conv_out.weight"], sd["encoder.conv_out.bias"] = rnd(d, w, 1, 1, s=0.3), rnd(d)
    sd["decoder.mask_token"] = rnd(1, 1, w)
    sd["decoder.decoder_embed.weight"], sd["decoder.decoder_embed.bias"] = rnd(w, d), rnd(w)
    sd["quantize.embedding.weight"] = rnd(spec["codebook"], d, s=1.0)
    if spec["legacy"]:
        k = spec["pixel_codes"]
        sd["decoder.ffn.0.weight"], sd["decoder.ffn.0.bias"] = rnd(2 * w, w, 1, 1), rnd(2 * w)
        sd["decoder.ffn.2.weight"], sd["decoder.ffn.2.bias"] = rnd(k, 2 * w, 1, 1, s=1.0), rnd(k)
        sd["pixel_quantize.embedding.weight"] = rnd(k, spec["z_channels"], s=1.0)
        sd.update(_vqgan_decoder_sd(spec, rnd))
    else:
        sd["decoder.ffn.0.weight"], sd["decoder.ffn.0.bias"] = rnd(p * p * 3, w, 1, 1), rnd(p * p * 3)
        sd["decoder.conv_out.weight"], sd["decoder.conv_out.bias"] = rnd(3, 3, 3, 3), rnd(3)
    return sd


def _vqgan_decoder_sd(spec, rnd):
    ch, mult, nb, zc = spec["pd_channels"], spec["pd_mult"], 2, spec["z_channels"]
    sd, pre = {}, "pixel_decoder."
    top = ch * mult[-1]

    def res(prefix, cin, cout):
        sd[prefix + "norm1.weight"], sd[prefix + "norm1.bias"] = 1 + rnd(cin), rnd(cin)
        sd[prefix + "conv1.weight"] = rnd(cout, cin, 3, 3)
        sd[prefix + "norm2.weight"], sd[prefix + "norm2.bias"] = 1 + rnd(cout), rnd(cout)
        sd[prefix + "conv2.weight"] = rnd(cout, cout, 3, 3)
        if cin != cout:
            sd[prefix + "nin_shortcut.weight"] = rnd(cout, cout, 1, 1)

    sd[pre + "conv_in.weight"], sd[pre + "conv_in.bias"] = rnd(top, zc, 3, 3), rnd(top)
    for j in range(nb):
        res(f"{pre}mid.{j}.", top, top)
    for i in range(len(mult)):
        cin = ch * (mult[-1] if i == len(mult) - 1 else mult[i + 1])
        for j in range(nb):
            res(f"{pre}up.{i}.block.{j}.", cin, ch * mult[i])
            cin = ch * mult[i]
        if i != 0:
            sd[f"{pre}up.{i}.upsample_conv.weight"] = rnd(cin, cin, 3, 3)
            sd[f"{pre}up.{i}.upsample_conv.bias"] = rnd(cin)
    sd[pre + "norm_out.weight"], sd[pre + "norm_out.bias"] = 1 + rnd(ch), rnd(ch)
    sd[pre + "conv_out.weight"], sd[pre + "conv_out.bias"] = rnd(3, ch, 3, 3), rnd(3)
    return sd


def _ln(x, sd, key):
    return F.layer_norm(x, (x.shape[-1],), sd[key + ".weight"], sd[key + ".bias"])


def _transformer(x, sd, part, spec):
    """x: (B, L, W); runs the blocks sequence-first like nn.MultiheadAttention."""
    x = x.permute(1, 0, 2)
    w = x.shape[-1]
    for i in range(spec["depth"]):
        b = f"{part}.transformer.{i}."
        h = _ln(x, sd, b + "ln_1")
        attn, _ = F.multi_head_attention_forward(
            h, h, h, w, spec["heads"], sd[b + "attn.in_proj_weight"], sd[b + "attn.in_proj_bias"],
            None, None, False, 0.0, sd[b + "attn.out_proj.weight"], sd[b + "attn.out_proj.bias"],
            training=False, need_weights=False)
        x = x + attn
        h = _ln(x, sd, b + "ln_2")
        x = x + F.linear(F.gelu(F.linear(h, sd[b + "mlp.c_fc.weight"], sd[b + "mlp.c_fc.bias"])),
                         sd[b + "mlp.c_proj.weight"], sd[b + "mlp.c_proj.bias"])
    return x.permute(1, 0, 2)


def encode(sd, spec, images):
    """Official encoder + l2-normalised VQ: returns (ids (B, N), z_q (B, d, 1, N))."""
    b, w, n = images.shape[0], spec["width"], spec["tokens"]
    x = F.conv2d(images, sd["encoder.patch_embed.weight"], sd["encoder.patch_embed.bias"], stride=spec["patch"])
    x = x.reshape(b, w, -1).permute(0, 2, 1)
    x = torch.cat([sd["encoder.class_embedding"].expand(b, 1, w), x], 1) + sd["encoder.positional_embedding"]
    lat = (sd["latent_tokens"] + sd["encoder.latent_token_positional_embedding"]).expand(b, n, w)
    x = _transformer(_ln(torch.cat([x, lat], 1), sd, "encoder.ln_pre"), sd, "encoder", spec)
    lat = _ln(x[:, -n:], sd, "encoder.ln_post")
    if spec["legacy"]:
        lat = lat.reshape(b, w, n, 1)
    else:
        lat = lat.reshape(b, n, w, 1).permute(0, 2, 1, 3)
    z = F.conv2d(lat, sd["encoder.conv_out.weight"], sd["encoder.conv_out.bias"]).reshape(b, -1, 1, n)
    zf = F.normalize(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]), dim=-1)
    emb = F.normalize(sd["quantize.embedding.weight"], dim=-1)
    ids = torch.cdist(zf.double(), emb.double()).argmin(1).reshape(b, n)
    z_q = emb[ids].permute(0, 2, 1).unsqueeze(2)
    return ids, z_q


def decode(sd, spec, z_q):
    """Official decoder on z_q (B, d, 1, k) -> images."""
    b, d, _, k = z_q.shape
    w, grid = spec["width"], spec["grid"]
    x = F.linear(z_q.reshape(b, d, k).permute(0, 2, 1), sd["decoder.decoder_embed.weight"], sd["decoder.decoder_embed.bias"])
    masks = sd["decoder.mask_token"].repeat(b, grid * grid, 1)
    masks = torch.cat([sd["decoder.class_embedding"].expand(b, 1, w), masks], 1) + sd["decoder.positional_embedding"]
    x = x + sd["decoder.latent_token_positional_embedding"][:k]
    x = _transformer(_ln(torch.cat([masks, x], 1), sd, "decoder.ln_pre"), sd, "decoder", spec)
    x = _ln(x[:, 1 : 1 + grid * grid], sd, "decoder.ln_post").permute(0, 2, 1).reshape(b, w, grid, grid)
    if spec["legacy"]:
        x = torch.tanh(F.conv2d(x, sd["decoder.ffn.0.weight"], sd["decoder.ffn.0.bias"]))
        logits = F.conv2d(x, sd["decoder.ffn.2.weight"], sd["decoder.ffn.2.bias"])
        latent = torch.einsum("nchw,cd->ndhw", logits.softmax(1), sd["pixel_quantize.embedding.weight"])
        return _vqgan_decode(sd, spec, latent)
    p = spec["patch"]
    x = F.conv2d(x, sd["decoder.ffn.0.weight"], sd["decoder.ffn.0.bias"])  # b (p1 p2 c) h w
    x = x.reshape(b, p, p, 3, grid, grid).permute(0, 3, 4, 1, 5, 2).reshape(b, 3, grid * p, grid * p)
    return F.conv2d(x, sd["decoder.conv_out.weight"], sd["decoder.conv_out.bias"], padding=1)


def _same_conv(x, weight, bias=None):
    k = weight.shape[-1]
    total = max(k - 1, 0)  # stride 1: TF SAME pads k-1, the extra pixel at the end
    x = F.pad(x, [total // 2, total - total // 2, total // 2, total - total // 2])
    return F.conv2d(x, weight, bias)


def _vqgan_decode(sd, spec, z):
    pre = "pixel_decoder."

    def gn(x, key):
        return F.group_norm(x, 32, sd[key + ".weight"], sd[key + ".bias"], eps=1e-6)

    def res(x, prefix):
        h = _same_conv(F.silu(gn(x, prefix + "norm1")), sd[prefix + "conv1.weight"])
        h = _same_conv(F.silu(gn(h, prefix + "norm2")), sd[prefix + "conv2.weight"])
        if prefix + "nin_shortcut.weight" in sd:
            return h + _same_conv(h, sd[prefix + "nin_shortcut.weight"])
        return h + x

    x = _same_conv(z, sd[pre + "conv_in.weight"], sd[pre + "conv_in.bias"])
    for j in range(2):
        x = res(x, f"{pre}mid.{j}.")
    for i in reversed(range(len(spec["pd_mult"]))):
        for j in range(2):
            x = res(x, f"{pre}up.{i}.block.{j}.")
        if i != 0:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = _same_conv(x, sd[f"{pre}up.{i}.upsample_conv.weight"], sd[f"{pre}up.{i}.upsample_conv.bias"])
    x = F.silu(gn(x, pre + "norm_out"))
    return _same_conv(x, sd[pre + "conv_out.weight"], sd[pre + "conv_out.bias"])
