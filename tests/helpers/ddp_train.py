"""Run under `torchrun --nproc_per_node 2`: trains with the engine, then saves each rank's model
weights (and discriminator's) for tests/engine/test_distributed_training.py to compare."""
import sys

from safetensors.torch import save_file

from vistok.engine.recipe import load_recipe
from vistok.engine.trainer import Trainer


def main(recipe_path: str, out: str, *overrides: str) -> None:
    trainer = Trainer(load_recipe(recipe_path, overrides))
    trainer.fit()
    acc = trainer.accelerator
    state = {f"model.{k}": v for k, v in acc.unwrap_model(trainer.model).state_dict().items()}
    if trainer.objective.discriminator is not None:
        disc = acc.unwrap_model(trainer.objective.discriminator)
        state.update({f"disc.{k}": v for k, v in disc.state_dict().items()})
    save_file({k: v.detach().float().contiguous() for k, v in state.items()}, f"{out}/rank{acc.process_index}.safetensors")
    acc.wait_for_everyone()
    acc.end_training()
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
