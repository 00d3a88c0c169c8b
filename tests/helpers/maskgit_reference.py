"""An independent MaskGIT-VQGAN forward pass written directly on the *official* state-dict layout.

Plain functional ops (explicit TF "same" padding, group norm, average pooling, nearest
upsampling, the residual shortcut taken from the block's output when the width changes, squared
L2 code search in float64), so tests can check the converter plus tokzoo's modules against it.
A spec is a dict: hidden, mult, blocks, z, codebook.
"""
import math

import torch
import torch.nn.functional as F


def _resblock_shapes(prefix, cin, cout):
    shapes = {
        prefix + "norm1.weight": (cin,), prefix + "norm1.bias": (cin,),
        prefix + "conv1.weight": (cout, cin, 3, 3),
        prefix + "norm2.weight": (cout,), prefix + "norm2.bias": (cout,),
        prefix + "conv2.weight": (cout, cout, 3, 3),
    }
    if cin != cout:
        shapes[prefix + "nin_shortcut.weight"] = (cout, cout, 1, 1)
    return shapes


def official_shapes(spec):
    """Key -> shape of the official checkpoint for ``spec`` (derived from the official layout)."""
    ch, mult, nb, zc = spec["hidden"], tuple(spec["mult"]), spec["blocks"], spec["z"]
    top, levels = ch * mult[-1], len(mult)
    s = {"encoder.conv_in.weight": (ch, 3, 3, 3)}
    cin = ch
    for i in range(levels):
        for j in range(nb):
            s.update(_resblock_shapes(f"encoder.down.{i}.block.{j}.", cin, ch * mult[i]))
            cin = ch * mult[i]
    for j in range(nb):
        s.update(_resblock_shapes(f"encoder.mid.{j}.", top, top))
    s["encoder.norm_out.weight"], s["encoder.norm_out.bias"] = (top,), (top,)
    s["encoder.conv_out.weight"], s["encoder.conv_out.bias"] = (zc, top, 1, 1), (zc,)

    s["decoder.conv_in.weight"], s["decoder.conv_in.bias"] = (top, zc, 3, 3), (top,)
    for j in range(nb):
        s.update(_resblock_shapes(f"decoder.mid.{j}.", top, top))
    for i in range(levels):
        cin = ch * (mult[-1] if i == levels - 1 else mult[i + 1])
        for j in range(nb):
            s.update(_resblock_shapes(f"decoder.up.{i}.block.{j}.", cin, ch * mult[i]))
            cin = ch * mult[i]
        if i != 0:
            s[f"decoder.up.{i}.upsample_conv.weight"] = (cin, cin, 3, 3)
            s[f"decoder.up.{i}.upsample_conv.bias"] = (cin,)
    s["decoder.norm_out.weight"], s["decoder.norm_out.bias"] = (ch * mult[0],), (ch * mult[0],)
    s["decoder.conv_out.weight"], s["decoder.conv_out.bias"] = (3, ch * mult[0], 3, 3), (3,)
    s["quantize.embedding.weight"] = (spec["codebook"], zc)
    return s


def official_state_dict(spec, seed=0, code_scale=0.5):
    """Random tensors under the official key names: unit-ish conv weights (scaled by fan-in),
    norm scales near 1, small biases."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in official_shapes(spec).items():
        x = torch.randn(*shape, generator=g)
        if key == "quantize.embedding.weight":
            sd[key] = x * code_scale
        elif ".norm" in key and key.endswith("weight"):
            sd[key] = 1 + 0.1 * x
        elif key.endswith("bias"):
            sd[key] = 0.1 * x
        else:
            sd[key] = x / math.sqrt(math.prod(shape[1:]))
    return sd


def _conv(x, sd, key, bias=True):
    w = sd[key + ".weight"]
    k = w.shape[-1]  # stride 1: TF SAME pads k - 1 in all, the odd pixel at the bottom/right
    x = F.pad(x, [(k - 1) // 2, k // 2, (k - 1) // 2, k // 2])
    return F.conv2d(x, w, sd[key + ".bias"] if bias else None)


def _gn_silu(x, sd, key):
    return F.silu(F.group_norm(x, 32, sd[key + ".weight"], sd[key + ".bias"], eps=1e-6))


def _res(x, sd, p):
    h = _conv(_gn_silu(x, sd, p + "norm1"), sd, p + "conv1", bias=False)
    h = _conv(_gn_silu(h, sd, p + "norm2"), sd, p + "conv2", bias=False)
    if p + "nin_shortcut.weight" in sd:
        return h + _conv(h, sd, p + "nin_shortcut", bias=False)  # shortcut from the output
    return h + x


def encode(sd, spec, images):
    """Images (B, 3, H, W) -> (ids (B, h*w) row-major, latent (B, z, h, w))."""
    levels, nb = len(spec["mult"]), spec["blocks"]
    x = _conv(images, sd, "encoder.conv_in", bias=False)
    for i in range(levels):
        for j in range(nb):
            x = _res(x, sd, f"encoder.down.{i}.block.{j}.")
        if i != levels - 1:
            x = F.avg_pool2d(x, kernel_size=2, stride=2)
    for j in range(nb):
        x = _res(x, sd, f"encoder.mid.{j}.")
    z = _conv(_gn_silu(x, sd, "encoder.norm_out"), sd, "encoder.conv_out")
    b, c, h, w = z.shape
    flat = z.permute(0, 2, 3, 1).reshape(-1, c).double()
    ids = torch.cdist(flat, sd["quantize.embedding.weight"].double()).argmin(1).reshape(b, h * w)
    return ids, z


def decode(sd, spec, ids, h, w):
    """ids (B, h*w) -> images (B, 3, H, W)."""
    levels, nb = len(spec["mult"]), spec["blocks"]
    z = sd["quantize.embedding.weight"][ids].reshape(ids.shape[0], h, w, -1).permute(0, 3, 1, 2)
    x = _conv(z, sd, "decoder.conv_in")
    for j in range(nb):
        x = _res(x, sd, f"decoder.mid.{j}.")
    for i in reversed(range(levels)):
        for j in range(nb):
            x = _res(x, sd, f"decoder.up.{i}.block.{j}.")
        if i != 0:
            x = _conv(F.interpolate(x, scale_factor=2.0, mode="nearest"), sd, f"decoder.up.{i}.upsample_conv")
    return _conv(_gn_silu(x, sd, "decoder.norm_out"), sd, "decoder.conv_out")
