"""Factor datasets: full grids of ground-truth factors, one image per combination of classes.

Images are stored once as a uint8 tensor (N, H, W) or (N, H, W, C) in the grid's C order (the
last factor changes fastest), so ``index = classes @ bases``. Batches are gathered by tensor
indexing (``FactorImages.__getitems__``), never by a per-sample ``__getitem__`` plus collate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from zoo.config import ConfigError


def grid_bases(sizes: Sequence[int]) -> Tensor:
    """long (K,): ``bases[k] = prod(sizes[k+1:])``, so ``index = classes @ bases`` (C order)."""
    return torch.tensor([math.prod(sizes[k + 1 :]) for k in range(len(sizes))], dtype=torch.long)


def classes_to_index(classes: Tensor, sizes: Sequence[int]) -> Tensor:
    """long (N, K) factor classes -> long (N,) grid indices."""
    return (classes.long() * grid_bases(sizes).to(classes.device)).sum(-1)


def index_to_classes(index: Tensor, sizes: Sequence[int]) -> Tensor:
    """long (N,) grid indices -> long (N, K) factor classes."""
    bases = grid_bases(sizes).to(index.device)
    return torch.div(index.long()[:, None], bases, rounding_mode="floor") % torch.tensor(sizes, device=index.device)


def _identity(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Collate for ``__getitems__`` datasets: the dataset already returns a whole batch."""
    return batch


def images_to_float(images: Tensor, max_value: float) -> Tensor:
    """uint8 (B, H, W[, C]) -> float32 (B, C, H, W) in [0, 1]."""
    x = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)
    x = x.float()
    return x if max_value == 1 else x.div_(max_value)


class FactorImages(Dataset):
    """Selected rows of a uint8 image store with their factor classes, served a batch at a time.

    Args:
        store: uint8 (M, H, W) or (M, H, W, C); may live on any device; shared, never copied.
        rows: long (n,) rows of ``store`` that make up this dataset.
        factors: long (n, K) factor classes of those rows.
        max_value: the stored value that maps to 1.0 (1 for binary data, 255 for 8-bit images).
    """

    def __init__(self, store: Tensor, rows: Tensor, factors: Tensor, max_value: float) -> None:
        if len(rows) != len(factors):
            raise ValueError(f"rows ({len(rows)}) and factors ({len(factors)}) differ in length")
        self.store, self.rows, self.factors, self.max_value = store, rows, factors, max_value

    def __len__(self) -> int:
        return len(self.rows)

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        """A batch: float images (B, C, H, W) in [0, 1] and long factor classes (B, K)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        images = self.store[self.rows[idx].to(self.store.device)]
        return images_to_float(images, self.max_value), self.factors[idx]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x, y = self.__getitems__([index])
        return x[0], y[0]


class ImageDataModule(L.LightningDataModule):
    """Base of every zoo datamodule: in-memory uint8 images served a whole batch at a time.

    Subclasses build ``train_set`` and ``val_set`` (:class:`FactorImages`) in ``setup``; batches
    are ``(x float (B, C, H, W) in [0, 1], y long (B, K))``.

    Args:
        batch_size: images per batch.
        num_workers: DataLoader worker processes (0 is fastest for in-memory data).
    """

    #: (C, H, W) of one image.
    image_shape: tuple[int, int, int] = (1, 64, 64)
    #: stored value that maps to 1.0.
    max_value: float = 1.0

    def __init__(self, batch_size: int = 64, num_workers: int = 0) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError("data.batch_size", batch_size, "an integer >= 1")
        if num_workers < 0:
            raise ConfigError("data.num_workers", num_workers, "an integer >= 0")
        self.batch_size, self.num_workers = batch_size, num_workers
        self.train_set: FactorImages | None = None
        self.val_set: FactorImages | None = None

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=shuffle,
            collate_fn=_identity,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)


class FactorDataModule(ImageDataModule):
    """Base datamodule of a full factor grid.

    Subclasses set ``factor_names``, ``factor_sizes``, ``factor_values``, ``image_shape`` and
    ``max_value`` and implement :meth:`load_images`, which returns the whole grid as uint8.
    A subclass that can draw images for arbitrary classes (a renderer) may implement
    :meth:`render`; then ``subset`` trains on a random part of the grid without building it all.

    Args:
        data_dir: where the dataset is read from and cached.
        batch_size: images per training batch.
        val_fraction: fraction of the (sub)set held out for validation, in [0, 1).
        seed: seed of the train/val split and of the subset draw.
        subset: if set, use only this many grid points (drawn uniformly without replacement).
        on_device: keep the uint8 store on the trainer's device (a GPU holds all of dSprites).
        num_workers: DataLoader worker processes (0 is fastest for in-memory data).
    """

    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()
    factor_values: tuple[Tensor, ...] = ()
    #: indices of the factors that are ground truth (scored by the metrics).
    ground_truth: tuple[int, ...] = ()

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        val_fraction: float = 0.01,
        seed: int = 0,
        subset: int | None = None,
        on_device: bool = False,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.save_hyperparameters()  # stored in checkpoints, so evaluation rebuilds this datamodule
        if not 0 <= val_fraction < 1:
            raise ConfigError("data.val_fraction", val_fraction, "a number in [0, 1)")
        if subset is not None and not 2 <= subset <= self.num_points:
            raise ConfigError("data.subset", subset, f"null or an integer in [2, {self.num_points}]")
        self.data_dir = data_dir
        self.val_fraction = val_fraction
        self.seed = seed
        self.subset = subset
        self.on_device = on_device
        self.images: Tensor | None = None  # uint8 store, rows = self.indices
        self.indices: Tensor | None = None  # grid index of each stored row, or None for the full grid

    # ---- the grid -------------------------------------------------------------------------
    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    @property
    def num_points(self) -> int:
        """Number of points (images) in the full grid."""
        return math.prod(self.factor_sizes)

    @property
    def bases(self) -> Tensor:
        """long (K,): ``bases[k] = prod(sizes[k+1:])``, so ``index = classes @ bases``."""
        return grid_bases(self.factor_sizes)

    def classes_to_index(self, classes: Tensor) -> Tensor:
        """long (N, K) factor classes -> long (N,) grid indices."""
        return classes_to_index(classes, self.factor_sizes)

    def index_to_classes(self, index: Tensor) -> Tensor:
        """long (N,) grid indices -> long (N, K) factor classes."""
        return index_to_classes(index, self.factor_sizes)

    def classes_to_values(self, classes: Tensor) -> Tensor:
        """long (N, K) factor classes -> float64 (N, K) factor values as the dataset stores them."""
        cols = [self.factor_values[k].to(classes.device)[classes[:, k]] for k in range(self.num_factors)]
        return torch.stack(cols, dim=1)

    def sample_factors(
        self, n: int, generator: torch.Generator | None = None, mask: Tensor | None = None
    ) -> Tensor:
        """Draw ``n`` factor-class vectors (n, K) uniformly over the grid, or over ``mask``.

        Args:
            mask: optional bool (N,) over grid indices (e.g. an OOD split); only True points are drawn.
        """
        if mask is None:
            cols = [torch.randint(s, (n,), generator=generator) for s in self.factor_sizes]
            return torch.stack(cols, dim=1)
        allowed = mask.nonzero().squeeze(1)
        if len(allowed) == 0:
            raise ValueError("the mask selects no grid point")
        pick = torch.randint(len(allowed), (n,), generator=generator)
        return self.index_to_classes(allowed[pick])

    def images_for(self, classes: Tensor) -> Tensor:
        """float (N, C, H, W) in [0, 1]: the images of the given factor classes (N, K)."""
        if self.images is None or self.indices is not None:  # the whole grid is not in memory
            if self.can_render:
                return images_to_float(self.render(classes.cpu()), self.max_value)
            self.prepare_data()
            self.images, self.indices = self._place(self.load_images()), None
        index = self.classes_to_index(classes.cpu()).to(self.images.device)
        return images_to_float(self.images[index], self.max_value)

    # ---- subclass hooks -------------------------------------------------------------------
    @property
    def can_render(self) -> bool:
        """Whether this dataset draws images for arbitrary classes (it overrides :meth:`render`)."""
        return type(self).render is not FactorDataModule.render

    def load_images(self) -> Tensor:
        """uint8 (N, H, W[, C]): the whole grid in index order (build or read the cache here)."""
        raise NotImplementedError

    def render(self, classes: Tensor) -> Tensor:
        """uint8 (n, H, W[, C]) images of factor classes (n, K); only for datasets with a renderer."""
        raise NotImplementedError

    # ---- LightningDataModule --------------------------------------------------------------
    def _place(self, images: Tensor) -> Tensor:
        if self.on_device and self.trainer is not None:
            return images.to(self.trainer.strategy.root_device)
        return images

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        gen = torch.Generator().manual_seed(self.seed)
        if self.subset is not None and self.can_render:
            self.indices = torch.randperm(self.num_points, generator=gen)[: self.subset].sort().values
            self.images = self._place(self.render(self.index_to_classes(self.indices)))
            rows = torch.randperm(len(self.indices), generator=gen)
        else:
            self.images, self.indices = self._place(self.load_images()), None
            rows = torch.randperm(self.num_points, generator=gen)
            if self.subset is not None:
                rows = rows[: self.subset]
        grid_index = rows if self.indices is None else self.indices[rows]
        factors = self.index_to_classes(grid_index)
        n_val = int(round(self.val_fraction * len(rows)))
        # Train and val views share the store: they index it through row ids, never copy it.
        self.train_set = FactorImages(self.images, rows[n_val:], factors[n_val:], self.max_value)
        self.val_set = FactorImages(self.images, rows[:n_val], factors[:n_val], self.max_value)
