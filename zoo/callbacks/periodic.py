"""A callback that acts every N optimiser steps and once more at the end of training."""

from __future__ import annotations

import lightning as L

from zoo.config import check
from zoo.models.base import ZooModule


class EveryNSteps(L.Callback):
    """Calls :meth:`run` when ``trainer.global_step`` is a multiple of ``every_n_steps`` and at the
    end of training, never twice for the same step. ``every_n_steps=0`` runs only at the end.

    ``global_step`` counts optimiser steps for the VAEs and batches for the GANs (see ``GAN``).
    """

    def __init__(self, every_n_steps: int, key: str) -> None:
        check(every_n_steps >= 0, f"callbacks.{key}.every_n_steps", every_n_steps, "an integer >= 0")
        self.every_n_steps = every_n_steps
        self._last_step = -1

    def run(self, trainer: L.Trainer, pl_module: ZooModule) -> None:
        """The periodic work, at ``trainer.global_step``."""
        raise NotImplementedError

    def _maybe_run(self, trainer: L.Trainer, pl_module: ZooModule) -> None:
        if trainer.global_step != self._last_step:
            self._last_step = trainer.global_step
            self.run(trainer, pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: ZooModule, outputs, batch, batch_idx: int) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self._maybe_run(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: ZooModule) -> None:
        self._maybe_run(trainer, pl_module)
