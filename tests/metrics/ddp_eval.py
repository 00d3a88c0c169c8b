"""Run under `torchrun --nproc_per_node 2`: one pFID pass (with its clean rFID) of a tiny TiTok split
over two CPU processes; rank 0 writes the result for tests/metrics/test_distributed_eval.py."""
import json
import sys

import torch
from accelerate import PartialState

from tests.metrics.fakes import FakeInception
from tests.models.test_titok import tiny_config
from vistok.metrics.eval_images import EvalImages
from vistok.metrics.recon import PassSettings
from vistok.metrics.samples import DatasetSource
from vistok.metrics.tokenizer_eval import evaluate_pfid
from vistok.metrics.tokenizer_runner import TokenizerRunner
from vistok.models.titok import TiTok


def run(folder: str, batch_size: int):
    torch.manual_seed(0)  # the same random tiny model in every process
    runner = TokenizerRunner(TiTok(tiny_config(False)))
    source = DatasetSource(EvalImages(folder, 32, "titok", limit=7))
    result, _ = evaluate_pfid(runner, source, FakeInception(), alphas=(0.5,), deltas=(4,), seed=5,
                              settings=PassSettings(batch_size=batch_size, use_cache=False))
    return result


def main(folder: str, out: str) -> None:
    state = PartialState(cpu=True)
    result = run(folder, batch_size=2)
    if state.is_main_process:
        with open(out, "w") as f:
            json.dump({"metrics": result.metrics, "points": result.points,
                       "num_processes": result.protocol.environment["num_processes"]}, f)
    state.wait_for_everyone()
    state.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
