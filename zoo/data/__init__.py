from zoo.data.mnist import FashionMNISTDataModule, LabelledImageDataModule, MNISTDataModule
