"""MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao et al. 2017): 28x28 grayscale images, 10 classes.

Files follow torchvision's on-disk layout, ``<data_dir>/MNIST/raw/`` and
``<data_dir>/FashionMNIST/raw/``, holding the four IDX files ``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (the
``.gz`` originals work too: they are extracted on first use). Missing files are downloaded by
torchvision where a network exists; otherwise the run stops with one line that says where to put them.
"""

from __future__ import annotations

import os
from urllib.error import URLError

import torch
from torch import Tensor
from torchvision import datasets
from torchvision.datasets.utils import extract_archive

from zoo.config import ConfigError, check
from zoo.data.factor import FactorImages, ImageDataModule


class LabelledImageDataModule(ImageDataModule):
    """In-memory uint8 images with one class label each, served a whole batch at a time by ``FactorImages``.

    Batches are ``(x float (B, C, H, W) in [0, 1], y long (B, 1))``: the label is the one "factor",
    so code that scores representations against factors reads ``factor_names``/``factor_sizes``
    as on a factor grid. There is no grid here, though (many images share a label), so this is
    not a ``FactorDataModule``: grid sampling and ``images_for`` do not apply.

    Training uses the dataset's training split (or a random ``subset`` of it); validation uses its
    official test split.

    Subclasses set ``factor_names``, ``factor_sizes``, ``image_shape`` and ``max_value`` and
    implement :meth:`load_split`.

    Args:
        data_dir: the root the dataset's files live under.
        batch_size: images per training batch.
        subset: if set, train on this many training images drawn at random (seeded by ``seed``).
        seed: seed of the subset draw.
        num_workers: DataLoader worker processes (0 is fastest for in-memory data).
    """

    factor_names: tuple[str, ...] = ("label",)
    factor_sizes: tuple[int, ...] = ()
    image_shape: tuple[int, int, int] = (1, 28, 28)
    max_value: float = 255.0

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        subset: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        check(subset is None or subset >= 1, "data.subset", subset, "null or an integer >= 1")
        self.data_dir, self.subset, self.seed = data_dir, subset, seed
        self.save_hyperparameters()  # stored in checkpoints, so evaluation rebuilds this datamodule

    def load_split(self, train: bool) -> tuple[Tensor, Tensor]:
        """uint8 images (N, H, W[, C]) and long labels (N,) of the training or the test split."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        images, labels = self.load_split(train=True)
        rows = torch.arange(len(images))
        if self.subset is not None:
            check(self.subset <= len(images), "data.subset", self.subset, f"null or an integer in [1, {len(images)}]")
            rows = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.seed))[: self.subset]
        self.train_set = FactorImages(images, rows, labels[rows, None], self.max_value)
        test_images, test_labels = self.load_split(train=False)
        self.val_set = FactorImages(test_images, torch.arange(len(test_images)), test_labels[:, None], self.max_value)


class MNISTDataModule(LabelledImageDataModule):
    """MNIST through torchvision: 60,000 training and 10,000 test digits, labels 0-9.

    Args:
        download: fetch missing files with torchvision (needs a network); False only reads ``data_dir``.
        Other arguments as :class:`LabelledImageDataModule`.
    """

    factor_sizes = (10,)
    #: the torchvision dataset class: its name is the folder under ``data_dir``, its ``resources`` the files.
    dataset_class: type[datasets.MNIST] = datasets.MNIST

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        subset: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
        download: bool = True,
    ) -> None:
        super().__init__(data_dir, batch_size, subset, seed, num_workers)
        self.download = download

    @property
    def raw_folder(self) -> str:
        """``<data_dir>/<MNIST|FashionMNIST>/raw``: where torchvision reads the IDX files."""
        return os.path.join(self.data_dir, self.dataset_class.__name__, "raw")

    @property
    def file_names(self) -> list[str]:
        """The four extracted IDX file names torchvision reads."""
        return [name.removesuffix(".gz") for name, _ in self.dataset_class.resources]

    def _missing(self) -> list[str]:
        return [f for f in self.file_names if not os.path.isfile(os.path.join(self.raw_folder, f))]

    def prepare_data(self) -> None:
        """Extract ``.gz`` originals found in the raw folder, then download whatever is still missing."""
        for name in self._missing():
            archive = os.path.join(self.raw_folder, name + ".gz")
            if os.path.isfile(archive):
                extract_archive(archive, self.raw_folder)
        if not self._missing():
            return
        if not self.download:
            raise self._not_found("data.download=false")
        try:
            for train in (True, False):
                self.dataset_class(self.data_dir, train=train, download=True)
        except (RuntimeError, URLError, OSError) as err:
            lines = [line for line in str(err).splitlines() if line.strip()]
            raise self._not_found(f"download failed: {lines[-1].strip() if lines else type(err).__name__}") from None

    def _not_found(self, reason: str) -> ConfigError:
        return ConfigError(
            "data.data_dir",
            self.data_dir,
            f"the {self.dataset_class.__name__} files {', '.join(self.file_names)} (or their .gz originals) "
            f"in {self.raw_folder} ({reason})",
        )

    def load_split(self, train: bool) -> tuple[Tensor, Tensor]:
        if self._missing():
            self.prepare_data()  # setup() without the Trainer: read, extract or download now
        dataset = self.dataset_class(self.data_dir, train=train, download=False)
        return dataset.data, dataset.targets


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST through torchvision: 60,000 training and 10,000 test clothing images, 10 classes."""

    dataset_class = datasets.FashionMNIST
