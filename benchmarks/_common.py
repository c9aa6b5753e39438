"""What the throughput benchmarks share: the Lightning timing path and the environment lines."""

from __future__ import annotations

import os
import platform
import time

import lightning as L
import torch

from zoo.runtime import MALLOC_ENV


class Clock(L.Callback):
    """Wall time from the end of the warm-up steps to the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.stop = warmup, 0.0, 0.0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()
        self.stop = time.perf_counter()


def lightning_images_per_second(
    model: L.LightningModule, dm: L.LightningDataModule, steps: int, warmup: int, extras: bool, out: str
) -> float:
    """Images/s of ``steps`` timed training steps through ``lightning.Trainer`` after ``warmup`` steps.

    ``extras`` adds what ``python train.py`` runs with: its progress bar (conf/callbacks/progress_bar.yaml)
    and W&B offline logging.
    """
    from lightning.pytorch.callbacks import TQDMProgressBar
    from lightning.pytorch.loggers import WandbLogger

    clock = Clock(warmup)
    callbacks: list[L.Callback] = [clock, TQDMProgressBar(refresh_rate=20)] if extras else [clock]
    logger = WandbLogger(project="zoo-bench", save_dir=out, offline=True) if extras else False
    trainer = L.Trainer(
        max_steps=warmup + steps, logger=logger, callbacks=callbacks, enable_checkpointing=False,
        enable_progress_bar=extras, enable_model_summary=False, limit_val_batches=0,
        log_every_n_steps=50, default_root_dir=out, accelerator="cpu", devices=1,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    if extras:
        import wandb

        wandb.finish()
    assert trainer.global_step == warmup + steps  # one step per batch, for every model
    return steps * dm.batch_size / (clock.stop - clock.start)


def environment(extra: str) -> list[str]:
    """Markdown bullet lines describing this run's software, threads, load and allocator."""
    tuned = all(k in os.environ for k in MALLOC_ENV)
    return [
        f"- python {platform.python_version()}, torch {torch.__version__}, lightning {L.__version__}, {platform.processor() or platform.machine()}",
        f"- torch threads {torch.get_num_threads()}, cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at the end",
        f"- {extra}",
        f"- allocator: {'tuned ' + str(MALLOC_ENV) if tuned else 'glibc default'}",
    ]
