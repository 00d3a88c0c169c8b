import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

HELPER = Path(__file__).resolve().parents[1] / "helpers" / "ddp_quant.py"


@pytest.mark.distributed
def test_two_ranks_keep_identical_codebooks(tmp_path):
    repo = str(HELPER.parents[2])  # import this checkout, whatever the installed copy points at
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HELPER), str(tmp_path)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    r0, r1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    for prefix in ("synced.", "learnable.", "rvq."):
        keys = [k for k in r0 if k.startswith(prefix)]
        assert keys
        for key in keys:
            assert torch.equal(r0[key], r1[key]), f"{key} differs between ranks"
    # the codebooks really were trained on different data: without sync they diverge
    assert not torch.allclose(r0["unsynced.embed"], r1["unsynced.embed"])
    assert not torch.equal(r0["synced.embed"], torch.zeros_like(r0["synced.embed"]))
    # the quantizer-dropout cut-off is the same on both ranks and actually varies
    assert torch.equal(r0["active_levels"], r1["active_levels"])
    assert r0["active_levels"].unique().numel() > 1
    # exact counts are summed over ranks: 6 steps x (300 + 350) vectors
    assert r0["usage_tokens"].item() == r1["usage_tokens"].item() == 6 * 650
