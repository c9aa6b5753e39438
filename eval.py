"""Score a trained model: `python eval.py ckpt_path=... [metrics=[mig,dci]]` (see conf/eval.yaml)."""

import hydra
from omegaconf import DictConfig

from zoo.config import ConfigError, register_resolvers
from zoo.evaluate import evaluate

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def run(cfg: DictConfig) -> None:
    try:
        evaluate(cfg)
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    run()
