"""Training: build the datamodule, model, callbacks, logger and trainer from a Hydra config."""

from __future__ import annotations

import logging

import hydra
import lightning as L
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from zoo.config import ConfigError

log = logging.getLogger(__name__)


def instantiate(cfg: DictConfig, **kwargs):
    """``hydra.utils.instantiate`` with plain Python containers (checkpoints then hold no
    OmegaConf objects and load with ``weights_only=True``), surfacing a :class:`ConfigError` as itself."""
    try:
        return hydra.utils.instantiate(cfg, _convert_="all", **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, ConfigError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Every object of a run, validated before any data is read or any step is taken."""
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model, image_shape=list(datamodule.image_shape))
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    return datamodule, model, trainer


def train(cfg: DictConfig) -> dict[str, float]:
    """Train one model; returns the final logged metrics. Always closes the W&B run."""
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, model, trainer = build(cfg)
    try:
        for logger in trainer.loggers:
            # The resolved config: aliases such as `beta` appear with their values in `model`.
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    finally:
        finish_wandb()
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


def finish_wandb() -> None:
    """End the active W&B run, so the next job of a multirun starts its own (Lightning would reuse it)."""
    import wandb

    if wandb.run is not None:
        wandb.finish()


def main(cfg: DictConfig) -> float | None:
    """Entry point body shared by ``train.py``: a bad setting exits with one line, before training."""
    try:
        metrics = train(cfg)
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    return metrics.get(cfg.get("optimized_metric", "val/loss"))
