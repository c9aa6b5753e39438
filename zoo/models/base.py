"""The interface every zoo model shares, and that callbacks and metrics rely on."""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch
from torch import Tensor


@dataclass(frozen=True)
class LatentLayout:
    """How a model's latent vector is laid out, in this order: noise, categorical, continuous.

    Attributes:
        noise: unstructured dimensions (a GAN's z, InfoGAN's incompressible noise).
        categorical: number of classes of each categorical code (one-hot in the latent vector).
        continuous: structured continuous dimensions (a VAE's latents, InfoGAN's continuous codes).
    """

    noise: int = 0
    categorical: tuple[int, ...] = ()
    continuous: int = 0

    @property
    def size(self) -> int:
        """Length of the generator/decoder input vector."""
        return self.noise + sum(self.categorical) + self.continuous

    @property
    def code_size(self) -> int:
        """Length of the representation returned by ``encode`` (categorical probabilities + continuous)."""
        return sum(self.categorical) + self.continuous


def plain_config(obj: object, hparams: dict) -> dict:
    """``{"_target_": "module.Class", **hparams}`` with tuples as lists: loadable with weights_only."""

    def plain(v: object) -> object:
        if isinstance(v, (list, tuple)):
            return [plain(i) for i in v]
        if isinstance(v, dict):
            return {str(k): plain(i) for k, i in v.items()}
        return v

    return {"_target_": f"{type(obj).__module__}.{type(obj).__qualname__}", **plain(dict(hparams))}


class ZooModule(L.LightningModule):
    """Base LightningModule of the zoo: a generative model with a latent space.

    Subclasses implement:
        ``latent_layout``: a :class:`LatentLayout`.
        ``decode(z)``: latents (B, layout.size) -> images (B, C, H, W) in [0, 1].
        ``sample(n)``: n images (n, C, H, W) in [0, 1] from the prior.
        ``traversals(x)``: named grids (R, S, C, H, W) of images that show what the latents do.
        ``encode(x)`` where the model can infer codes: images -> representation (B, code_size).
        ``reconstruct(x)`` where the model has an encoder.
    """

    latent_layout: LatentLayout

    def logging_step(self) -> bool:
        """True on the steps where Lightning writes logs (``Trainer(log_every_n_steps)``).

        Costly extras (per-dimension terms) are logged only then, so the hot path stays lean.
        """
        return self._trainer is None or self.trainer._logger_connector.should_update_logs

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Store what rebuilds the run without unpickling code: ``checkpoint["zoo"]`` holds the
        model's and the datamodule's ``_target_`` and init arguments as plain Python values."""
        checkpoint["zoo"] = {"model": plain_config(self, self.hparams)}
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        if datamodule is not None and datamodule.hparams:
            checkpoint["zoo"]["data"] = plain_config(datamodule, datamodule.hparams)

    def encode(self, x: Tensor) -> Tensor:
        """Images (B, C, H, W) in [0, 1] -> representation (B, latent_layout.code_size)."""
        raise NotImplementedError(f"{type(self).__name__} has no encoder")

    def decode(self, z: Tensor) -> Tensor:
        """Latents (B, latent_layout.size) -> images (B, C, H, W) in [0, 1]."""
        raise NotImplementedError

    def generate(self, z: Tensor) -> Tensor:
        """Alias of :meth:`decode`: images (B, C, H, W) in [0, 1] for latents (B, layout.size)."""
        return self.decode(z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n images (n, C, H, W) in [0, 1] drawn from the model's prior."""
        raise NotImplementedError

    def reconstruct(self, x: Tensor) -> Tensor | None:
        """Reconstructions (B, C, H, W) in [0, 1] of images x, or None if the model has no encoder."""
        return None

    def traversals(self, x: Tensor, steps: int = 10) -> dict[str, Tensor]:
        """Named image grids (R, S, C, H, W): rows R of S images that show what the latents do.

        Args:
            x: a few fixed images (B, C, H, W) in [0, 1] the grids start from (models without an
                encoder may ignore them and use fixed latent draws).
            steps: images per row.
        """
        raise NotImplementedError
