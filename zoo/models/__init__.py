"""LightningModules of the zoo (one per file) and the shared networks."""

from zoo.models.base import LatentLayout, ZooModule
from zoo.models.beta_vae import BetaVAE

__all__ = ["BetaVAE", "LatentLayout", "ZooModule"]
