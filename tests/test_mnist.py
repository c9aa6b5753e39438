"""MNIST and Fashion-MNIST datamodules on IDX files written here in the real format; nothing downloads."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from conftest import run_train
from zoo.config import ConfigError
from zoo.data.mnist import FashionMNISTDataModule, MNISTDataModule

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """An IDX file as LeCun's site serves it: big-endian magic (0x0000 | type 0x08 uint8 | ndim), sizes, data."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)


def write_mnist(
    data_dir: Path, folder: str = "MNIST", n_train: int = 256, n_test: int = 64, compress: bool = False, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write the four IDX files of a tiny MNIST-format dataset under ``data_dir/folder/raw``; returns the arrays.

    Image i of label y is a noisy bar whose position encodes y, so labels are visible in the pixels.
    """
    rng = np.random.default_rng(seed)
    raw = data_dir / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
        for i, y in enumerate(labels):
            images[i, 4 + 2 * y : 6 + 2 * y, 4:24] = 255
        write_idx(raw / f"{split}-images-idx3-ubyte", images, compress)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels, compress)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    return arrays


def test_idx_magic_numbers_are_the_real_ones(tmp_path: Path) -> None:
    write_mnist(tmp_path, n_train=3, n_test=2)
    raw = tmp_path / "MNIST/raw"
    assert struct.unpack(">IIII", (raw / FILES[0]).read_bytes()[:16]) == (2051, 3, 28, 28)
    assert struct.unpack(">II", (raw / FILES[1]).read_bytes()[:8]) == (2049, 3)


@pytest.mark.parametrize(("cls", "folder"), [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")])
def test_batches_hold_the_files_images_and_labels(cls: type[MNISTDataModule], folder: str, tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, folder)
    dm = cls(str(tmp_path), batch_size=32, download=False)
    dm.prepare_data()
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set)) == (256, 64)  # validation = the official test split
    assert dm.image_shape == (1, 28, 28) and dm.factor_sizes == (10,) and dm.factor_names == ("label",)

    x, y = next(iter(dm.val_dataloader()))  # unshuffled: the first 32 test images in file order
    assert x.shape == (32, 1, 28, 28) and x.dtype == torch.float32 and y.shape == (32, 1) and y.dtype == torch.long
    torch.testing.assert_close(x[:, 0], torch.from_numpy(arrays["t10k_images"][:32]).float() / 255)
    assert y[:, 0].tolist() == arrays["t10k_labels"][:32].tolist()

    batches = list(dm.train_dataloader())
    assert len(batches) == 8 and all(b[0].shape == (32, 1, 28, 28) for b in batches)
    seen = torch.cat([b[0] for b in batches]).flatten(1).sum(1).sort().values
    expected = torch.from_numpy(arrays["train_images"]).float().div(255).flatten(1).sum(1).sort().values
    torch.testing.assert_close(seen, expected)  # one epoch = every training image once


def test_gz_originals_are_extracted_without_a_network(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, compress=True)
    dm = MNISTDataModule(str(tmp_path), download=False)
    dm.prepare_data()
    dm.setup()
    assert all((tmp_path / "MNIST/raw" / f).is_file() for f in FILES)
    assert dm.train_set.factors[:, 0].tolist() == arrays["train_labels"].tolist()


def test_subset_draws_training_images_reproducibly(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    rows = []
    for _ in range(2):
        dm = MNISTDataModule(str(tmp_path), subset=100, seed=3, download=False)
        dm.setup()
        rows.append(dm.train_set.rows)
    assert len(rows[0]) == 100 and len(set(rows[0].tolist())) == 100 and torch.equal(rows[0], rows[1])
    with pytest.raises(ConfigError, match=r"^data\.subset=1000 is invalid: expected null or an integer in \[1, 256\]$"):
        MNISTDataModule(str(tmp_path), subset=1000, download=False).setup()


def test_missing_files_fail_in_one_line_that_says_where_to_put_them(tmp_path: Path) -> None:
    dm = FashionMNISTDataModule(str(tmp_path), download=False)
    with pytest.raises(ConfigError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"data.data_dir={str(tmp_path)!r} is invalid")
    assert str(tmp_path / "FashionMNIST" / "raw") in message and all(f in message for f in FILES)


def test_failed_download_fails_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def offline(url: str, **kwargs: object) -> None:
        calls.append(url)
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", offline)
    with pytest.raises(ConfigError) as err:
        MNISTDataModule(str(tmp_path)).prepare_data()
    assert calls  # torchvision did try its mirrors
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "MNIST" / "raw") in message
    assert message.endswith("(download failed: <urlopen error [Errno -3] Temporary failure in name resolution>)")


def test_cli_without_files_or_network_exits_with_that_line(tmp_path: Path) -> None:
    proc = run_train(["model=infogan", "data=mnist", "data.download=false", "logger=csv", "callbacks=none"], tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"error: data.data_dir={str(tmp_path / 'data')!r} is invalid: expected the MNIST files"
    )
