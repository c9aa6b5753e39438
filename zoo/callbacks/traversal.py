"""Latent traversals, reconstructions and prior samples: logged to W&B and saved as PNG."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import WandbLogger
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid

from zoo.callbacks.periodic import EveryNSteps
from zoo.config import check
from zoo.models.base import ZooModule


def to_pil(grid: Tensor, pad_value: float = 0.5) -> Image.Image:
    """Images (R, S, C, H, W) in [0, 1] -> one PIL image with R rows of S tiles."""
    tiles = make_grid(grid.flatten(0, 1).float().cpu(), nrow=grid.shape[1], padding=2, pad_value=pad_value)
    array = tiles.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


class LatentTraversals(EveryNSteps):
    """Shows what a model's latents do, every ``every_n_steps`` optimiser steps and at the end.

    Logs, under the run's W&B media and as PNG files in ``<default_root_dir>/images``:
      - ``traversal/<name>``: the model's traversal grids (see ``ZooModule.traversals``);
      - ``reconstructions``: fixed images (top row) above their reconstructions, if the model has an encoder;
      - ``samples``: decodings of fixed prior draws, so successive images are comparable.

    Args:
        every_n_steps: period in optimiser steps (``trainer.global_step``); 0 logs only at the end.
        num_images: fixed validation images the traversals start from.
        steps: images per traversal row.
        num_samples: prior samples and reconstructions shown.
    """

    def __init__(self, every_n_steps: int = 1000, num_images: int = 3, steps: int = 10, num_samples: int = 16) -> None:
        super().__init__(every_n_steps, "traversals")
        check(num_images >= 1, "callbacks.traversals.num_images", num_images, "an integer >= 1")
        check(steps >= 2, "callbacks.traversals.steps", steps, "an integer >= 2")
        check(num_samples >= 1, "callbacks.traversals.num_samples", num_samples, "an integer >= 1")
        self.num_images, self.steps, self.num_samples = num_images, steps, num_samples
        self.images: Tensor | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: ZooModule) -> None:
        dm = trainer.datamodule
        loader = dm.val_dataloader() if len(dm.val_set) else dm.train_dataloader()
        x = next(iter(loader))[0]
        self.images = x[: max(self.num_images, self.num_samples)].to(pl_module.device)

    @torch.no_grad()
    def figures(self, pl_module: ZooModule) -> dict[str, Tensor]:
        """Every figure as a grid (R, S, C, H, W) in [0, 1], keyed by its W&B name."""
        was_training = pl_module.training
        pl_module.eval()
        try:
            x = self.images.to(pl_module.device)
            figs = {f"traversal/{k}": v for k, v in pl_module.traversals(x[: self.num_images], self.steps).items()}
            recon = pl_module.reconstruct(x[: self.num_samples])
            if recon is not None:
                figs["reconstructions"] = torch.stack([x[: self.num_samples], recon])
            gen = torch.Generator().manual_seed(0)
            figs["samples"] = pl_module.sample(self.num_samples, generator=gen).unsqueeze(0)
        finally:
            pl_module.train(was_training)
        return figs

    def run(self, trainer: L.Trainer, pl_module: ZooModule) -> None:
        """Render every figure, save it as PNG and log it to each W&B logger at the current step."""
        step = trainer.global_step
        if not trainer.is_global_zero:
            return
        out = Path(trainer.default_root_dir) / "images"
        out.mkdir(parents=True, exist_ok=True)
        for key, grid in self.figures(pl_module).items():
            image = to_pil(grid)
            image.save(out / f"{key.replace('/', '_')}_step{step:07d}.png")
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_image(key, images=[np.asarray(image)], step=step, caption=[f"step {step}"])
