"""Train a zoo model: `python train.py model=beta_vae beta=4` (see conf/train.yaml)."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from zoo.runtime import reexec_with_tuned_allocator

reexec_with_tuned_allocator()

from zoo.config import ConfigError, check_group_choices, register_resolvers  # noqa: E402
from zoo.train import main  # noqa: E402

CONF = Path(__file__).resolve().parent / "conf"
register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def run(cfg: DictConfig) -> float | None:
    return main(cfg)


if __name__ == "__main__":
    try:
        check_group_choices(sys.argv[1:], CONF)
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    run()
