"""Train a zoo model: `python train.py model=beta_vae beta=4` (see conf/train.yaml)."""

import hydra
from omegaconf import DictConfig

from zoo.runtime import reexec_with_tuned_allocator

reexec_with_tuned_allocator()

from zoo.config import register_resolvers  # noqa: E402
from zoo.train import main  # noqa: E402

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def run(cfg: DictConfig) -> float | None:
    return main(cfg)


if __name__ == "__main__":
    run()
