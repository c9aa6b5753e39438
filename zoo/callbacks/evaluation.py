"""Disentanglement scores during and at the end of training: W&B history and summary, and JSON."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from zoo.callbacks.periodic import EveryNSteps
from zoo.data.factor import FactorDataModule
from zoo.evaluate import score, write_json
from zoo.metrics import scores_of
from zoo.models.base import ZooModule

log = logging.getLogger(__name__)


class DisentanglementEvaluation(EveryNSteps):
    """Scores the model's ``encode`` with the reference protocol on the run's factor dataset.

    At the end of training (and every ``every_n_steps`` optimiser steps if > 0) it logs
    ``disentanglement/<score>`` to every logger, puts the latest scores in the W&B run summary and
    writes ``<default_root_dir>/metrics.json``: one entry per evaluation (the last is the final
    one) with the step, scores, settings, seeds and library versions. Models without an encoder (a plain GAN) and datasets
    without ground-truth factors are skipped with a warning.

    Args:
        metrics: names understood by ``zoo.metrics.evaluate_all``.
        every_n_steps: period in optimiser steps; 0 evaluates only at the end.
        seed: seed of every metric's random state (the reference protocol uses 0).
        options: per-metric overrides of the reference settings, e.g. ``{"mig": {"num_points": 1000}}``.
    """

    def __init__(
        self, metrics: Sequence[str] = ("mig", "dci"), every_n_steps: int = 0, seed: int = 0, options: dict | None = None
    ) -> None:
        super().__init__(every_n_steps, "evaluation")
        self.metrics, self.seed, self.options = list(metrics), seed, options or {}
        self.history: list[dict] = []

    def _applies(self, trainer: L.Trainer, pl_module: ZooModule) -> bool:
        if not isinstance(trainer.datamodule, FactorDataModule):
            log.warning("disentanglement evaluation skipped: %s has no ground-truth factors", type(trainer.datamodule).__name__)
            return False
        if type(pl_module).encode is ZooModule.encode:
            log.warning("disentanglement evaluation skipped: %s has no encoder", type(pl_module).__name__)
            return False
        return True

    def run(self, trainer: L.Trainer, pl_module: ZooModule) -> None:
        """Score now; log, summarise and append to ``metrics.json``."""
        step = trainer.global_step
        if not trainer.is_global_zero or not self._applies(trainer, pl_module):
            return
        result = score(pl_module, trainer.datamodule, self.metrics, seed=self.seed, options=self.options)
        scores = {f"disentanglement/{k}": v for k, v in scores_of(result).items()}
        for logger in trainer.loggers:
            logger.log_metrics(scores, step=step)
            if isinstance(logger, WandbLogger):
                logger.experiment.summary.update(scores)
        self.history.append({"step": step, **result})
        write_json(Path(trainer.default_root_dir) / "metrics.json", self.history)
