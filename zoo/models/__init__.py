"""LightningModules of the zoo (one per file) and the shared networks."""

from zoo.models.base import LatentLayout, ZooModule
from zoo.models.beta_vae import BetaVAE
from zoo.models.gan import GAN
from zoo.models.infogan import InfoGAN

__all__ = ["GAN", "BetaVAE", "InfoGAN", "LatentLayout", "ZooModule"]
