"""β-VAE (Higgins et al. 2017) and β-VAE with controlled capacity (Burgess et al. 2018)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.config import check
from zoo.models.base import LatentLayout, ZooModule
from zoo.models.networks import ConvDecoder, ConvEncoder, conv_channels

OBJECTIVES = ("higgins", "capacity")
LIKELIHOODS = ("bernoulli", "gaussian")


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per latent dimension, (B, D) in nats (Kingma & Welling 2014, App. B)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)


def reconstruction_nll(logits: Tensor, x: Tensor, likelihood: str, std: float) -> Tensor:
    """-log p(x | z) per image, (B,) in nats, summed over pixels.

    Bernoulli: the decoder output is the logit of each pixel. Gaussian: the pixel mean is
    ``sigmoid(logits)`` with a fixed standard deviation ``std``.
    """
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        nll = 0.5 * ((x - torch.sigmoid(logits)) / std).pow(2) + math.log(std) + 0.5 * math.log(2 * math.pi)
    return nll.flatten(1).sum(1)


class BetaVAE(ZooModule):
    """β-VAE with the Higgins (β·KL) or the Burgess capacity (γ·|KL − C|) objective.

    Loss reduction (stated once, used everywhere): the reconstruction term is the negative
    log-likelihood *summed over pixels*, the KL is *summed over latent dimensions*, and both are
    *averaged over the batch*, so every logged term is in nats per image and β has the meaning
    of the paper (β = 1 is the ELBO).

    Args:
        image_shape: (C, H, W) of the data; set from the datamodule at instantiation.
        latent_dim: number of latent dimensions d.
        beta: weight of the KL term in the ``higgins`` objective (>= 0).
        objective: ``higgins`` (recon + β·KL) or ``capacity`` (recon + γ·|KL − C|).
        gamma: weight γ of the capacity term.
        capacity_max: C_max in nats; C grows linearly from 0 to C_max over ``capacity_steps``.
        capacity_steps: optimiser steps over which C is annealed.
        likelihood: ``bernoulli`` (binary data) or ``gaussian`` (fixed ``gaussian_std``).
        gaussian_std: pixel standard deviation of the Gaussian likelihood; 1/sqrt(2) makes the
            loss the summed squared error used by disentanglement_lib, up to a constant.
        lr, adam_betas: Adam settings (Locatello et al. 2019 use lr 1e-4).
        channels: conv widths, input side first; None = 32 per conv the image allows (Burgess
            et al. 2018: four for 64x64, two for 28x28).
        hidden: widths of the fully connected layers (Burgess et al. 2018: 256, 256).
        traversal_span: traversals sweep each latent over code ± this many prior std units.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 64, 64),
        latent_dim: int = 10,
        beta: float = 4.0,
        objective: str = "higgins",
        gamma: float = 1000.0,
        capacity_max: float = 25.0,
        capacity_steps: int = 100_000,
        likelihood: str = "bernoulli",
        gaussian_std: float = 0.5**0.5,
        lr: float = 1e-4,
        adam_betas: Sequence[float] = (0.9, 0.999),
        channels: Sequence[int] | None = None,
        hidden: Sequence[int] = (256, 256),
        traversal_span: float = 2.0,
    ) -> None:
        super().__init__()
        check(latent_dim >= 1, "model.latent_dim", latent_dim, "an integer >= 1")
        check(beta >= 0, "beta", beta, "a number >= 0")
        check(objective in OBJECTIVES, "model.objective", objective, f"one of {OBJECTIVES}")
        check(gamma >= 0, "model.gamma", gamma, "a number >= 0")
        check(capacity_max >= 0, "capacity_max", capacity_max, "a number >= 0 (nats)")
        check(capacity_steps >= 1, "capacity_steps", capacity_steps, "an integer >= 1")
        check(likelihood in LIKELIHOODS, "model.likelihood", likelihood, f"one of {LIKELIHOODS}")
        check(gaussian_std > 0, "model.gaussian_std", gaussian_std, "a number > 0")
        check(lr > 0, "model.lr", lr, "a number > 0")
        self.save_hyperparameters()
        self.latent_layout = LatentLayout(continuous=latent_dim)
        channels = list(channels) if channels is not None else conv_channels(image_shape, 32)
        self.encoder = ConvEncoder(image_shape, channels, hidden, out_dim=2 * latent_dim)
        self.decoder = ConvDecoder(image_shape, latent_dim, channels, hidden)
        # Running mean of the KL of each latent (nats), for ordering traversals by information.
        self.register_buffer("kl_per_dim", torch.zeros(latent_dim))

    # ---- the model ------------------------------------------------------------------------
    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images (B, C, H, W) -> posterior mean and log-variance, each (B, d)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Images (B, C, H, W) -> decoder logits (B, C, H, W), mu (B, d), logvar (B, d)."""
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return self.decoder(z), mu, logvar

    def encode(self, x: Tensor) -> Tensor:
        """The representation: the posterior mean (B, d)."""
        return self.posterior(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        """Latents (B, d) -> pixel means (B, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.decoder(z))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(n, self.hparams.latent_dim, generator=generator).to(self.device)
        return self.decode(z)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    # ---- the objective --------------------------------------------------------------------
    def capacity(self, step: int) -> float:
        """C at an optimiser step, in nats: linear from 0 to C_max over ``capacity_steps``."""
        return self.hparams.capacity_max * min(1.0, step / self.hparams.capacity_steps)

    def loss(self, x: Tensor, logits: Tensor, mu: Tensor, logvar: Tensor) -> dict[str, Tensor]:
        """All terms of the objective, in nats per image (batch means); ``loss`` is minimised."""
        hp = self.hparams
        recon = reconstruction_nll(logits, x, hp.likelihood, hp.gaussian_std).mean()
        kl_per_dim = gaussian_kl(mu, logvar).mean(0)
        kl = kl_per_dim.sum()
        terms = {"recon": recon, "kl": kl, "kl_per_dim": kl_per_dim}
        if hp.objective == "higgins":
            # Higgins et al. 2017, Eq. 4: E[log p(x|z)] - β KL(q(z|x) || p(z)).
            terms["loss"] = recon + hp.beta * kl
        else:
            # Burgess et al. 2018, Eq. 8: E[log p(x|z)] - γ |KL(q(z|x) || p(z)) - C|.
            c = self.capacity(self.global_step)
            terms["capacity"] = torch.tensor(c, device=x.device)
            terms["loss"] = recon + hp.gamma * (kl - c).abs()
        terms["elbo"] = -(recon + kl)
        return terms

    def _step(self, x: Tensor, stage: str) -> dict[str, Tensor]:
        logits, mu, logvar = self(x)
        terms = self.loss(x, logits, mu, logvar)
        if stage == "train":
            self.kl_per_dim.lerp_(terms["kl_per_dim"].detach(), 0.01)
        self.log(f"{stage}/loss", terms["loss"], prog_bar=stage == "train")
        if stage == "val" or self.logging_step():
            per_dim = {f"{stage}/kl_dim/{j}": v for j, v in enumerate(terms.pop("kl_per_dim"))}
            # Active units (Burda et al. 2016): dims whose posterior mean varies across images.
            active = (mu.detach().var(0) > 0.01).sum().float()
            scalars = {f"{stage}/{k}": v for k, v in terms.items() if k != "loss"}
            self.log_dict({**scalars, **per_dim, f"{stage}/active_dims": active})
        return terms

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch[0], "train")["loss"]

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch[0], "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.adam_betas))

    # ---- what the latents do --------------------------------------------------------------
    @torch.no_grad()
    def traversals(self, x: Tensor, steps: int = 10) -> dict[str, Tensor]:
        """One grid per image of x: rows = latents by decreasing KL, columns = code ± span.

        Returns ``{"image_i": (d, steps, C, H, W)}``.
        """
        order = self.kl_per_dim.argsort(descending=True)
        sweep = torch.linspace(-self.hparams.traversal_span, self.hparams.traversal_span, steps, device=self.device)
        grids = {}
        for i, mu in enumerate(self.encode(x)):
            z = mu.repeat(len(order), steps, 1)  # (d, steps, d)
            rows = torch.arange(len(order), device=self.device)
            z[rows, :, order] += sweep
            grids[f"image_{i}"] = self.decode(z.flatten(0, 1)).unflatten(0, (len(order), steps))
        return grids
