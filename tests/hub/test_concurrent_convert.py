"""Two processes loading the same zoo model on a fresh cache at once convert it once: the other
waits on the conversion lock and reads the result (as DDP ranks calling ``load_tokenizer`` do)."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.hub.conftest import reference_model, safetensors_bytes, same_outputs, sha256
from vistok import load_tokenizer

REPO_ROOT = Path(__file__).resolve().parents[2]

# Each child waits until both are ready, then loads; the conversion's write is slowed by a second so
# that, without the lock, the two conversions would overlap.
CHILD = r"""
import hashlib, logging, sys, time
from pathlib import Path

import vistok.hub.loading as loading
from vistok import load_tokenizer

ready, me, name = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
save = loading.save_pretrained
loading.save_pretrained = lambda model, directory: (time.sleep(1.0), save(model, directory))[1]
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
(ready / me).touch()
deadline = time.time() + 120
while len(list(ready.iterdir())) < 2 and time.time() < deadline:
    time.sleep(0.01)
model = load_tokenizer(name)
state = model.state_dict()
print("DIGEST", hashlib.sha256(b"".join(state[k].contiguous().numpy().tobytes() for k in sorted(state))).hexdigest())
"""


def _digest(model) -> str:
    state = model.state_dict()
    return hashlib.sha256(b"".join(state[k].contiguous().numpy().tobytes() for k in sorted(state))).hexdigest()


def test_two_processes_on_a_fresh_cache_convert_once_and_load_the_same_weights(
        zoo, hf_cache, official_tiny, tmp_path):
    data = safetensors_bytes(official_tiny, tmp_path)
    hf_cache("org/tiny-ddp", "model.safetensors", data)
    name = zoo("tiny-ddp", dict(repo="org/tiny-ddp", filename="model.safetensors", sha256=sha256(data)))
    ready = tmp_path / "ready"
    ready.mkdir()
    env = dict(os.environ, HF_HUB_CACHE=str(hf_cache.root), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(ready), str(rank), name], cwd=REPO_ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in range(2)]
    results = [child.communicate(timeout=300) for child in children]
    for child, (out, err) in zip(children, results):
        assert child.returncode == 0, err
    logs = "".join(err for _, err in results)
    assert logs.count("tiny-ddp: converting hf://org/tiny-ddp/model.safetensors@main") == 1, logs
    digests = {line.split()[1] for out, _ in results for line in out.splitlines() if line.startswith("DIGEST")}
    assert len(digests) == 1

    converted = list((zoo.cache / "converted").iterdir())
    assert len(converted) == 1 and not converted[0].name.startswith(".")  # no staging directory left
    with torch.inference_mode():
        model = load_tokenizer(name)
    assert digests == {_digest(model)}
    assert same_outputs(model, reference_model(official_tiny))
