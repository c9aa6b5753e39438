"""InfoGAN: the information bound against closed forms, step isolation, Hungarian accuracy, the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

import wandb_records as wr
from conftest import run_train
from test_gan import CLI_SMALL, SMALL, fit_with_probe, names
from test_mnist import write_mnist
from zoo.config import ConfigError
from zoo.data.factor import FactorDataModule
from zoo.data.mnist import MNISTDataModule
from zoo.evaluate import load_checkpoint
from zoo.metrics.hungarian import confusion_matrix, hungarian_accuracy
from zoo.models import InfoGAN
from zoo.models.infogan import gaussian_nll


def with_q_output(model: InfoGAN) -> InfoGAN:
    """Make Q's head the identity, so the 'features' passed to ``info_terms`` are Q's raw output."""
    model.q_head = nn.Identity()
    return model


def test_exact_q_gives_the_code_entropy_and_uniform_q_gives_zero() -> None:
    model = with_q_output(InfoGAN(categorical=[10, 3], continuous=0, **SMALL))
    z = model.sample_latent(256, torch.Generator().manual_seed(0))
    cat, _ = model.split_codes(z)
    exact = torch.cat([50 * nn.functional.one_hot(cat[:, 0], 10), 50 * nn.functional.one_hot(cat[:, 1], 3)], 1)
    terms = model.info_terms(z, exact.float())
    assert terms["mi_bound/cat0"].item() == pytest.approx(math.log(10), abs=1e-6)  # ln 10 = 2.303 nats
    assert terms["mi_bound/cat1"].item() == pytest.approx(math.log(3), abs=1e-6)
    assert terms["entropy/cat0"].item() == pytest.approx(math.log(10))
    assert terms["mi_bound"].item() == pytest.approx(terms["entropy"].item(), abs=1e-6)
    assert terms["info_loss"].item() == pytest.approx(0, abs=1e-6)

    uniform = model.info_terms(z, torch.zeros(256, 13))
    assert uniform["mi_bound/cat0"].item() == pytest.approx(0, abs=1e-6)
    assert uniform["mi_bound"].item() == pytest.approx(0, abs=1e-6)
    # info_loss = lambda_info * cross-entropies = 1 * (ln 10 + ln 3)
    assert uniform["info_loss"].item() == pytest.approx(math.log(30), abs=1e-6)


def test_gaussian_term_matches_its_closed_form() -> None:
    c, mean, log_std = torch.randn(3, 1000).unbind(0)
    expected = -torch.distributions.Normal(mean, log_std.exp()).log_prob(c)
    torch.testing.assert_close(gaussian_nll(c, mean, log_std), expected)
    # At the mean: -log N(c; c, s) = ln s + ln(2 pi) / 2.
    torch.testing.assert_close(gaussian_nll(c, c, log_std), log_std + 0.5 * math.log(2 * math.pi))


@pytest.mark.parametrize("std", [None, 0.5])
def test_continuous_bound_is_entropy_minus_gaussian_nll(std: float | None) -> None:
    model = with_q_output(InfoGAN(categorical=[], continuous=2, continuous_std=std, lambda_continuous=0.1, **SMALL))
    z = model.sample_latent(512, torch.Generator().manual_seed(1))
    _, cont = model.split_codes(z)
    assert cont.min() >= -1 and cont.max() <= 1 and cont.std() > 0.5  # U(-1, 1)
    mean = cont + 0.1 * torch.randn_like(cont)
    log_std = torch.full_like(cont, math.log(0.5 if std is None else std))
    q_out = torch.cat([mean, log_std], 1) if std is None else mean
    terms = model.info_terms(z, q_out)
    nll = (0.5 * ((cont - mean) / 0.5) ** 2 + math.log(0.5) + 0.5 * math.log(2 * math.pi)).mean(0)
    for j in range(2):
        assert terms[f"entropy/cont{j}"].item() == pytest.approx(math.log(2))  # H(U(-1, 1))
        assert terms[f"mi_bound/cont{j}"].item() == pytest.approx(math.log(2) - nll[j].item(), abs=1e-5)
    assert terms["info_loss"].item() == pytest.approx(0.1 * nll.sum().item(), abs=1e-5)


def test_hungarian_accuracy_of_a_permuted_labelling_is_one() -> None:
    labels = torch.randint(10, (500,), generator=torch.Generator().manual_seed(0))
    codes = torch.randperm(10)[labels]
    assert hungarian_accuracy(confusion_matrix(codes, labels, 10, 10)) == 1.0
    noisy = codes.clone()
    noisy[:50] = (noisy[:50] + 1) % 10  # 50 of 500 wrong whatever the matching
    assert hungarian_accuracy(confusion_matrix(noisy, labels, 10, 10)) == pytest.approx(0.9)
    # Two code values for one label: only one of them can be matched.
    assert hungarian_accuracy(torch.tensor([[5, 0], [5, 0], [0, 10]])) == pytest.approx(0.75)


def test_encode_gives_code_probabilities_then_continuous_means() -> None:
    model = InfoGAN(categorical=[10, 4], continuous=2, **SMALL).eval()
    rep = model.encode(torch.rand(5, 1, 28, 28))
    assert rep.shape == (5, model.latent_layout.code_size) == (5, 16)
    torch.testing.assert_close(rep[:, :10].sum(1), torch.ones(5))
    torch.testing.assert_close(rep[:, 10:14].sum(1), torch.ones(5))


def test_traversals_are_the_papers_grids() -> None:
    model = InfoGAN(**SMALL).eval()
    grids = model.traversals(torch.zeros(3, 1, 28, 28), steps=7)
    assert {k: tuple(v.shape) for k, v in grids.items()} == {
        "cat0": (3, 10, 1, 28, 28),  # rows: fixed noise draws; columns: the 10 values
        "cont0": (10, 7, 1, 28, 28),  # rows: the 10 categorical values; columns: c swept over [-2, 2]
        "cont1": (10, 7, 1, 28, 28),
    }
    gen = torch.Generator().manual_seed(0)
    noise = model.draw(torch.randn, 3, 62, generator=gen)
    cat = torch.tensor([[4]])
    expected = model.decode(model.assemble(noise[:1], cat, torch.tensor([[0.0, 2.0]])))
    torch.testing.assert_close(grids["cont1"][4, -1], expected[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lambda_info": -1.0}, "lambda_info=-1.0 is invalid: expected a number >= 0"),
        ({"categorical": [10, 1]}, "model.categorical=[10, 1] is invalid: expected a list of class counts, each >= 2"),
        ({"categorical": [], "continuous": 0}, "model.continuous=0 is invalid: expected >= 1 when model.categorical"),
        ({"continuous_std": 0.0}, "model.continuous_std=0.0 is invalid: expected null (Q predicts it) or a number > 0"),
    ],
)
def test_bad_settings_fail_in_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        InfoGAN(**{**SMALL, **kwargs})
    assert str(err.value).startswith(message)


def test_info_term_updates_g_and_q_but_not_d(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    model = InfoGAN(**SMALL)
    trainer, probe = fit_with_probe(model, MNISTDataModule(str(tmp_path), batch_size=16, download=False), steps=2)
    d_params, gq_params = names(model, "trunk.", "d_head."), names(model, "generator.", "q_head.")
    assert d_params | gq_params == names(model, "") and not d_params & gq_params
    assert [i for i, _ in probe.changed] == [0, 1, 0, 1]
    for i, changed in probe.changed:
        assert changed == (d_params if i == 0 else gq_params)
    assert trainer.global_step == 2


class Bars(FactorDataModule):
    """A 64x64 factor grid: shape (3: horizontal bar, vertical bar, square) x position (4)."""

    factor_names = ("shape", "position")
    factor_sizes = (3, 4)
    factor_values = (torch.arange(3.0), torch.arange(4.0))
    ground_truth = (0, 1)
    image_shape = (1, 64, 64)

    def load_images(self) -> torch.Tensor:
        images = torch.zeros(12, 64, 64, dtype=torch.uint8)
        for i, (shape, pos) in enumerate(self.index_to_classes(torch.arange(12)).tolist()):
            o = 8 + 12 * pos
            box = [(slice(o, o + 4), slice(8, 56)), (slice(8, 56), slice(o, o + 4)), (slice(o, o + 10), slice(o, o + 10))]
            images[i][box[shape]] = 1
        return images


def test_trains_on_a_64x64_factor_dataset_and_scores_the_matching_factor() -> None:
    model = InfoGAN(image_shape=(1, 64, 64), categorical=[3], continuous=1, channels=[4, 8, 8, 8], hidden=[16])
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2,
        val_check_interval=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=Bars(batch_size=3, val_fraction=0.5))
    metrics = trainer.callback_metrics
    assert "val/cat_accuracy/cat0/shape" in metrics  # 3-way code vs the 3-way factor
    assert not any("position" in k for k in metrics)  # 4 positions: no one-to-one matching
    assert 1 / 3 <= metrics["val/cat_accuracy/cat0/shape"] <= 1


def test_cli_infogan_on_mnist_files_logs_traversals_and_the_mi_bound(tmp_path: Path) -> None:
    write_mnist(tmp_path / "data")
    proc = run_train(["model=infogan", "lambda_info=1.0", "data=mnist", *CLI_SMALL], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (tmp_path / "logs/train/runs").iterdir()
    (wandb_dir,) = (run / "wandb").glob("offline-run-*")
    log = wr.run_file(wandb_dir)
    rows = wr.history(log)
    keys = {k for row in rows for k in row}
    codes = ("cat0", "cont0", "cont1")
    expected = {"train/d_loss", "train/g_loss", "train/info_loss", "train/mi_bound", "train/entropy"}
    expected |= {f"train/{kind}/{c}" for kind in ("mi_bound", "entropy") for c in codes}
    assert expected | {"val/d_loss", "val/cat_accuracy/cat0/label"} <= keys
    assert all(row["train/entropy/cat0"] == pytest.approx(math.log(10)) for row in rows if "train/entropy/cat0" in row)
    media = wandb_dir / "files/media/images/traversal"
    for code in codes:
        assert len(list(media.glob(f"{code}_*.png"))) == 2, code  # at steps 3 and 6
        assert len(list((run / "images").glob(f"traversal_{code}_step*.png"))) == 2
    config = wr.config(log)
    assert config["lambda_info"] == 1.0 and config["model"]["lambda_info"] == 1.0
    assert wr.run_info(log).job_type == "infogan"

    # The checkpoint rebuilds the model and its datamodule without unpickling code.
    model, datamodule = load_checkpoint(run / "checkpoints/last.ckpt")
    assert isinstance(model, InfoGAN) and isinstance(datamodule, MNISTDataModule)
    assert model.latent_layout == InfoGAN(**SMALL).latent_layout and datamodule.batch_size == 16
    assert model.eval().encode(torch.rand(2, 1, 28, 28)).shape == (2, 12)
