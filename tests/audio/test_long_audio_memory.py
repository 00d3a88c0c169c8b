"""Long audio: encode and decode memory grows linearly with length (issue 16, item 10).

The Vocos attention is global over all frames; on the SDPA math path it materialises the
``L x L`` score map (25.6 GB for 20 s with the tiny codec below). These tests check that the
fused CPU kernel runs, and that a long clip encodes and decodes within a memory bound that a single
such map would exceed. Peak memory is the ``ru_maxrss`` of a fresh subprocess, counted from after
the model, the inputs and a warm-up call, so nothing else in the test session can skew it.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.audio.test_wavtokenizer import tiny_model

REPO = Path(__file__).resolve().parents[2]

pytest.importorskip("resource")  # POSIX only: the subprocess reads ru_maxrss
if not hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
    pytest.skip("this torch has no fused CPU attention kernel", allow_module_level=True)

TOKENS = 10_000  # 2.5 s at 24 kHz with hop 6; one fp32 L x L map is 381 MiB, the math path held two
BOUND_MIB = 128  # measured: ~25 MiB decode, ~20 MiB encode; the math path: ~880 MiB

MEASURE = r"""
import json, resource, sys, torch
torch.set_num_threads(1)
from tests.audio.test_wavtokenizer import tiny_model
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2 ** 20
tokens = int(sys.argv[1])
model = tiny_model()
wav = torch.randn(1, tokens * model.hop_length) * 0.1
ids = torch.randint(0, model.config.codebook_size, (1, tokens))
with torch.inference_mode():
    model.decode(model.encode(wav[:, :6000]))  # warm-up: lazy kernel and allocator set-up
    start = peak()
    encoded = model.encode(wav)
    after_encode = peak()
    out = model.decode(ids)
    after_decode = peak()
assert encoded.shape == ids.shape and out.shape == wav.shape and bool(torch.isfinite(out).all())
print(json.dumps({"encode": after_encode - start, "decode": after_decode - start}))
"""


def test_attention_runs_on_the_fused_cpu_kernel():
    """Restricted to flash attention, SDPA raises "No available kernel" for inputs it would send to
    the math path (such as q/k/v whose last dim is not at stride 1)."""
    sdpa_kernel = pytest.importorskip("torch.nn.attention").sdpa_kernel
    from torch.nn.attention import SDPBackend

    model = tiny_model()
    ids = torch.randint(0, 32, (2, 40))
    with torch.no_grad():
        expected = model.decode(ids)
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            torch.testing.assert_close(model.decode(ids), expected)
    model.train()  # the training forward and backward too
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        model(torch.randn(1, 120) * 0.1).recon.square().mean().backward()


def test_long_clip_encodes_and_decodes_in_linear_memory():
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)
    res = subprocess.run([sys.executable, "-c", MEASURE, str(TOKENS)], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    used = json.loads(res.stdout.strip().splitlines()[-1])
    for step, mib in used.items():
        assert mib < BOUND_MIB, f"{step} of {TOKENS} tokens took {mib:.0f} MiB more than before it (bound {BOUND_MIB})"
