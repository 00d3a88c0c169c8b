"""Run under `torchrun --nproc_per_node 2`: trains quantizers on different data per rank and
saves each rank's state for tests/quant/test_distributed.py to compare."""
import sys

import torch
from accelerate import PartialState
from safetensors.torch import save_file

from vistok.quant import CodebookUsage, ResidualVQ, VectorQuantizer


def main(out_dir: str) -> None:
    state = PartialState(cpu=True)
    rank = state.process_index
    torch.manual_seed(0)  # same initial modules on every rank
    kwargs = dict(ema_decay=0.9, kmeans_init=True, kmeans_iters=5, dead_code_threshold=0.5)
    synced = VectorQuantizer(64, 8, **kwargs)
    unsynced = VectorQuantizer(64, 8, sync=False, **kwargs)
    learnable = VectorQuantizer(64, 8, kmeans_init=True, dead_code_threshold=0.5)
    rvq = ResidualVQ(4, 32, 8, dropout=True, **kwargs)
    usage = CodebookUsage(64)
    torch.manual_seed(1000 + rank)  # different data and RNG stream per rank
    active = []
    for _ in range(6):
        z = torch.randn(300 + 50 * rank, 8) * (1 + rank) + rank
        synced.train()(z)
        unsynced.train()(z)
        learnable.train()(z)
        out = rvq.train()(z)
        active.append(out.stats["active_levels"])
        usage.update(synced.eval()(z).indices)
    stats = usage.compute()
    tensors = {f"synced.{k}": v for k, v in synced.state_dict().items()}
    tensors.update({f"unsynced.{k}": v for k, v in unsynced.state_dict().items()})
    tensors.update({f"learnable.{k}": v for k, v in learnable.state_dict().items()})
    tensors.update({f"rvq.{k}": v for k, v in rvq.state_dict().items()})
    tensors["active_levels"] = torch.tensor(active)
    tensors["usage_tokens"] = torch.tensor([stats["tokens"]])
    tensors = {k: v.float().contiguous() for k, v in tensors.items()}
    save_file(tensors, f"{out_dir}/rank{rank}.safetensors")
    # Tear gloo down on both ranks together; a rank leaving while its peer's gloo threads still
    # run aborts the process ("terminate called without an active exception").
    state.wait_for_everyone()
    state.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
