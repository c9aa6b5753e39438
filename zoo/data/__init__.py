"""Datamodules: factor grids (dSprites), labelled images (MNIST, Fashion-MNIST)."""

from zoo.data.dsprites import DSpritesDataModule
from zoo.data.factor import FactorDataModule, FactorImages, ImageDataModule
from zoo.data.mnist import FashionMNISTDataModule, LabelledImageDataModule, MNISTDataModule

__all__ = [
    "DSpritesDataModule",
    "FactorDataModule",
    "FactorImages",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "LabelledImageDataModule",
    "MNISTDataModule",
]
