"""Lightning callbacks: latent traversals and evaluation."""

from zoo.callbacks.traversal import LatentTraversals

__all__ = ["LatentTraversals"]
