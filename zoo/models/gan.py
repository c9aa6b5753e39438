"""GAN (Goodfellow et al. 2014) with DCGAN-style networks (Radford et al. 2016) from the shared family."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor, nn

from zoo.config import check
from zoo.models.base import LatentLayout, ZooModule
from zoo.models.networks import ConvDecoder, ConvEncoder, conv_channels


def _no_closure() -> None:
    """Closure of an optimiser step whose gradients were computed beforehand."""


class GAN(ZooModule):
    """Non-saturating GAN; generator = ``ConvDecoder``, discriminator = ``ConvEncoder`` trunk + linear head.

    Generator: fc layers ``hidden`` -> fc to the smallest feature map -> stride-2 transposed convs,
    batch norm and ReLU, sigmoid output in [0, 1]. Discriminator: stride-2 convs and fc ``hidden``
    with batch norm (not on the first conv) and LeakyReLU, then one logit. On 28x28 with the
    default widths these are the layers of the InfoGAN MNIST networks (Chen et al. 2016, App. C.1).

    Training (Lightning manual optimisation), per batch of real images x:
      1. draw z from the prior, fake = G(z);
      2. D step: D's loss on x and fake.detach(); updates the discriminator only;
      3. G step: G's loss on D(fake) with D's parameters frozen (``toggle_model``: no weight
         gradients are computed for D); updates the generator only.

    Step counting: one batch = one step. Lightning counts every ``optimizer.step()`` in
    ``trainer.global_step`` under manual optimisation (Lightning issue #17958: 2 per batch here),
    while ``log_every_n_steps``, ``val_check_interval`` and the logged step axis
    (``fit_loop.epoch_loop._batches_that_stepped``) count batches. The D step is therefore taken
    through ``trainer.strategy.optimizer_step`` (precision plugin and hooks included) without the
    wrapper's step counter, so ``global_step`` counts batches, like the logged step axis (W&B's
    ``trainer/global_step``): ``trainer.max_steps`` means batches, and step-periodic callbacks
    (traversals, checkpoints) fire every N batches, exactly as for the VAEs.

    Args:
        image_shape: (C, H, W) of the data; set from the datamodule at instantiation.
        noise_dim: dimensions of z ~ N(0, I).
        channels: conv widths, input side first; None = :func:`conv_channels` with width 64, doubling (DCGAN).
        hidden: fc widths after the convs (the InfoGAN nets use one layer of 1024).
        negative_slope: the discriminator's LeakyReLU slope (DCGAN 0.2, InfoGAN 0.1).
        d_lr, g_lr: Adam learning rates of the discriminator and of the generator.
        adam_betas: Adam (β1, β2); DCGAN's β1 = 0.5.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        noise_dim: int = 100,
        channels: Sequence[int] | None = None,
        hidden: Sequence[int] = (1024,),
        negative_slope: float = 0.2,
        d_lr: float = 2e-4,
        g_lr: float = 2e-4,
        adam_betas: Sequence[float] = (0.5, 0.999),
    ) -> None:
        super().__init__()
        check(noise_dim >= 1, "model.noise_dim", noise_dim, "an integer >= 1")
        check(negative_slope >= 0, "model.negative_slope", negative_slope, "a number >= 0")
        check(d_lr > 0, "model.d_lr", d_lr, "a number > 0")
        check(g_lr > 0, "model.g_lr", g_lr, "a number > 0")
        check(
            len(adam_betas) == 2 and all(0 <= b < 1 for b in adam_betas),
            "model.adam_betas", list(adam_betas), "two numbers in [0, 1)",
        )  # fmt: skip
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.latent_layout = self.make_layout()
        channels = list(channels) if channels is not None else conv_channels(image_shape, 64, growth=2)
        self.generator = ConvDecoder(image_shape, self.latent_layout.size, channels, hidden, batchnorm=True)
        self.trunk = ConvEncoder(image_shape, channels, hidden, None, batchnorm=True, negative_slope=negative_slope)
        self.d_head = nn.Linear(self.trunk.out_features, 1)

    def make_layout(self) -> LatentLayout:
        """The latent layout from the hyperparameters (GAN: noise only)."""
        return LatentLayout(noise=self.hparams.noise_dim)

    # ---- the model ------------------------------------------------------------------------
    def discriminate(self, x: Tensor) -> Tensor:
        """Images (B, C, H, W) in [0, 1] -> D's logit (B,) that x is real."""
        return self.d_head(self.trunk(x)).squeeze(1)

    def decode(self, z: Tensor) -> Tensor:
        """Latents (B, layout.size) -> images (B, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.generator(z))

    def draw(self, sampler: Callable[..., Tensor], *args: Any, generator: torch.Generator | None = None) -> Tensor:
        """``sampler(*args)`` (torch.randn, rand, randint) on the model's device, from ``generator`` if given.

        A generator draws on its own device (a CPU one gives the same numbers on every accelerator).
        """
        device = generator.device if generator is not None else self.device
        return sampler(*args, generator=generator, device=device).to(self.device)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n prior draws (n, layout.size): z ~ N(0, I)."""
        return self.draw(torch.randn, n, self.latent_layout.noise, generator=generator)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.decode(self.sample_latent(n, generator))

    # ---- the objective --------------------------------------------------------------------
    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """D's loss in nats per image pair (batch means); D logits (B,) on real and generated images."""
        # Goodfellow et al. 2014, Eq. 1: D maximises E[log D(x)] + E[log(1 - D(G(z)))].
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def generator_terms(self, z: Tensor, features: Tensor) -> dict[str, Tensor]:
        """G's objective from D's trunk features (B, F) of G(z); ``g_total`` is minimised.

        Subclasses add terms that read the same features (InfoGAN's Q).
        """
        # Goodfellow et al. 2014, Sec. 3 (non-saturating): G minimises -E[log D(G(z))].
        g_loss = F.softplus(-self.d_head(features).squeeze(1)).mean()
        return {"g_loss": g_loss, "g_total": g_loss}

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """What the D step updates: the trunk and D's head."""
        return [*self.trunk.parameters(), *self.d_head.parameters()]

    def generator_parameters(self) -> list[nn.Parameter]:
        """What the G step updates: the generator."""
        return list(self.generator.parameters())

    # ---- Lightning ------------------------------------------------------------------------
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x = batch[0]
        opt_d, opt_g = self.optimizers()
        z = self.sample_latent(len(x))
        fake = self.decode(z)

        real_logits, fake_logits = self.discriminate(x), self.discriminate(fake.detach())
        d_loss = self.discriminator_loss(real_logits, fake_logits)
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        self._step_uncounted(opt_d)

        with opt_g.toggle_model():
            terms = self.generator_terms(z, self.trunk(fake))
            opt_g.zero_grad()
            self.manual_backward(terms["g_total"])
            opt_g.step()

        terms.pop("g_total")
        self.log_dict({"train/d_loss": d_loss.detach(), "train/g_loss": terms.pop("g_loss").detach()}, prog_bar=True)
        if self.logging_step():
            d_probs = {"d_real": torch.sigmoid(real_logits).mean(), "d_fake": torch.sigmoid(fake_logits).mean()}
            self.log_dict({f"train/{k}": v.detach() for k, v in {**terms, **d_probs}.items()})

    def _step_uncounted(self, optimizer: LightningOptimizer) -> None:
        """``optimizer.step()`` without Lightning's step counter (see the class docstring)."""
        self.trainer.strategy.optimizer_step(optimizer.optimizer, _no_closure)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Log D's loss on held-out real images and fresh samples (a gap to train/d_loss means D memorises).

        Returns D's trunk features (B, F) of the real images, for subclasses that read them.
        """
        x = batch[0]
        features = self.trunk(x)
        real_logits = self.d_head(features).squeeze(1)
        self.log("val/d_loss", self.discriminator_loss(real_logits, self.discriminate(self.sample(len(x)))))
        return features

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hp = self.hparams
        betas = tuple(hp.adam_betas)
        opt_d = torch.optim.Adam(self.discriminator_parameters(), lr=hp.d_lr, betas=betas)
        opt_g = torch.optim.Adam(self.generator_parameters(), lr=hp.g_lr, betas=betas)
        return [opt_d, opt_g]

    # ---- what the latents do --------------------------------------------------------------
    @torch.no_grad()
    def traversals(self, x: Tensor, steps: int = 10) -> dict[str, Tensor]:
        """Latent interpolations: one row per image of x, each from one fixed prior draw to another.

        The draws come from a generator seeded 0, so every call shows the same rows. Returns
        ``{"interpolation": (len(x), steps, C, H, W)}``.
        """
        gen = torch.Generator().manual_seed(0)
        start, end = self.sample_latent(len(x), gen), self.sample_latent(len(x), gen)
        t = torch.linspace(0, 1, steps, device=self.device)[None, :, None]
        z = torch.lerp(start[:, None], end[:, None], t)  # (R, steps, size)
        return {"interpolation": self.decode(z.flatten(0, 1)).unflatten(0, (len(x), steps))}
