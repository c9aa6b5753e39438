"""A synthetic factor grid whose "images" are the factor classes, and encoders with known scores.

Used by the tests and ``benchmarks/metrics.py`` to check the metrics against the sanity figures of
the reference (5 factors of 4, 6, 8, 10, 12 values; noise 0.05): the image of a grid point is a
1 x 1 x K uint8 "picture" of its classes, so an encoder can read the factors back exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from zoo.data.factor import FactorDataModule

SANITY_SIZES = (4, 6, 8, 10, 12)
DSPRITES_SIZES = (3, 6, 40, 32, 32)


class SyntheticFactors(FactorDataModule):
    """A full grid over ``sizes`` (each <= 256) whose image at classes c is ``c`` as a (1, 1, K) picture.

    Args:
        sizes: number of classes of each factor.
        ground_truth: indices of the scored factors (default: all).
    """

    max_value = 1.0

    def __init__(self, sizes=SANITY_SIZES, ground_truth=None, **kwargs) -> None:
        if any(s < 1 or s > 256 for s in sizes):
            raise ValueError(f"sizes must be in [1, 256], got {sizes}")
        self.factor_sizes = tuple(int(s) for s in sizes)
        self.factor_names = tuple(f"f{k}" for k in range(len(sizes)))
        self.factor_values = tuple(torch.arange(s, dtype=torch.float64) for s in sizes)
        self.ground_truth = tuple(range(len(sizes)) if ground_truth is None else ground_truth)
        self.image_shape = (1, 1, len(sizes))
        super().__init__(**kwargs)

    def load_images(self) -> Tensor:
        return self.index_to_classes(torch.arange(self.num_points)).to(torch.uint8).unsqueeze(1)


def classes_of(images: Tensor) -> Tensor:
    """The factor classes (B, K) float that a :class:`SyntheticFactors` image (B, 1, 1, K) shows."""
    return images.reshape(len(images), -1).float()


class FactorEncoder:
    """codes = (ground-truth classes + noise) @ transform: a perfect encoder, or a rotated/rescaled one.

    Args:
        columns: which factor columns of the image to read (usually ``datamodule.ground_truth``).
        noise: standard deviation of the Gaussian noise added to the classes.
        transform: optional (len(columns), D) matrix applied after the noise.
        seed: seed of the noise generator (fresh encoders with the same seed give the same codes).
    """

    def __init__(self, columns, noise: float = 0.05, transform: Tensor | None = None, seed: int = 0) -> None:
        self.columns = list(columns)
        self.noise = noise
        self.transform = transform
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, images: Tensor) -> Tensor:
        z = classes_of(images)[:, self.columns]
        if self.noise:
            z = z + self.noise * torch.randn(z.shape, generator=self.gen)
        return z if self.transform is None else z @ self.transform.float()


class RandomEncoder:
    """Codes that ignore the image: i.i.d. standard normal (B, dim)."""

    def __init__(self, dim: int = 10, seed: int = 0) -> None:
        self.dim = dim
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, images: Tensor) -> Tensor:
        return torch.randn(len(images), self.dim, generator=self.gen)


def random_rotation(dim: int, seed: int = 0) -> Tensor:
    """A random orthogonal (dim, dim) matrix (QR of a Gaussian matrix, sign-fixed)."""
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).float()
