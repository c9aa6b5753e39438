"""Lightning callbacks: latent traversals and disentanglement evaluation."""

from zoo.callbacks.evaluation import DisentanglementEvaluation
from zoo.callbacks.traversal import LatentTraversals

__all__ = ["DisentanglementEvaluation", "LatentTraversals"]
