"""Two CPU processes (gloo, through accelerate) give exactly the single-process numbers: every rank
evaluates a block of the images, rows are gathered and put back in image order, codebook counts
are summed."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HELPER = Path(__file__).with_name("ddp_eval.py")


@pytest.mark.distributed
def test_two_processes_match_one(photo_folder, tmp_path):
    from tests.metrics.ddp_eval import run

    repo = str(HELPER.parents[2])
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    out = tmp_path / "ddp.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HELPER), str(photo_folder), str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    ddp = json.loads(out.read_text())
    single = run(str(photo_folder), batch_size=3)
    assert ddp["num_processes"] == 2
    assert ddp["points"] == single.points
    assert {k: v for k, v in ddp["metrics"].items() if k != "lpips_status"} == \
        {k: v for k, v in single.metrics.items() if k != "lpips_status"}
    assert single.metrics["codebook"]["tokens"] == 7 * 8
