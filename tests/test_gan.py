"""GAN: losses, which parameters each optimiser step moves, the step axis, interpolations, the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.errors import ConfigCompositionException

import wandb_records as wr
from conftest import compose_train, run_train
from test_mnist import write_mnist
from zoo.data.mnist import MNISTDataModule
from zoo.models import GAN

# Narrow versions of the paper nets (same layers, fewer units): fast on 2 cores.
SMALL = {"channels": [8, 16], "hidden": [32]}
CLI_SMALL = [
    "model.channels=[8,16]",
    "model.hidden=[32]",
    "data.batch_size=16",
    "trainer.max_steps=6",
    "trainer.val_check_interval=3",
    "trainer.limit_val_batches=2",
    "trainer.log_every_n_steps=2",
    "callbacks.traversals.every_n_steps=3",
    "callbacks.model_checkpoint.every_n_train_steps=3",
]


class StepProbe(L.Callback):
    """Records, for each optimiser step, the names of the parameters whose values it changed."""

    def __init__(self) -> None:
        self.changed: list[tuple[int, set[str]]] = []  # (optimiser index, changed names) in step order

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        def snapshot() -> dict[str, torch.Tensor]:
            return {n: p.detach().clone() for n, p in pl_module.named_parameters()}

        for i, opt in enumerate(trainer.optimizers):
            before: dict[str, dict[str, torch.Tensor]] = {}

            def pre(optimizer, args, kwargs, before=before) -> None:
                before["params"] = snapshot()

            def post(optimizer, args, kwargs, before=before, i=i) -> None:
                after = snapshot()
                self.changed.append((i, {n for n, v in after.items() if not torch.equal(v, before["params"][n])}))

            opt.register_step_pre_hook(pre)
            opt.register_step_post_hook(post)


def fit_with_probe(model: GAN, datamodule: L.LightningDataModule, steps: int) -> tuple[L.Trainer, StepProbe]:
    probe = StepProbe()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[probe],
    )
    trainer.fit(model, datamodule=datamodule)
    return trainer, probe


def names(model: torch.nn.Module, *prefixes: str) -> set[str]:
    return {n for n, _ in model.named_parameters() if n.startswith(prefixes)}


@pytest.fixture
def mnist(tmp_path: Path) -> MNISTDataModule:
    write_mnist(tmp_path / "data")
    return MNISTDataModule(str(tmp_path / "data"), batch_size=16, download=False)


def test_losses_are_the_non_saturating_gan_objective() -> None:
    model = GAN(**SMALL)
    zeros = torch.zeros(8)
    # D(x) = D(G(z)) = 1/2: -log 1/2 - log(1 - 1/2) = 2 ln 2 for D, -log 1/2 = ln 2 for G.
    assert model.discriminator_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    feats = torch.zeros(8, model.trunk.out_features)
    torch.nn.init.zeros_(model.d_head.weight), torch.nn.init.zeros_(model.d_head.bias)
    assert model.generator_terms(torch.zeros(8, 100), feats)["g_loss"].item() == pytest.approx(math.log(2))
    # A confident D: real logit +10, fake -10 -> D's loss ~ 0; G's loss on fake logit -10 ~ 10 nats (not saturated).
    assert model.discriminator_loss(torch.full((4,), 10.0), torch.full((4,), -10.0)).item() < 1e-3
    torch.nn.init.constant_(model.d_head.bias, -10.0)
    assert model.generator_terms(torch.zeros(4, 100), feats[:4])["g_loss"].item() == pytest.approx(10.0, abs=1e-3)


def test_each_optimizer_step_moves_only_its_own_parameters(mnist: MNISTDataModule) -> None:
    model = GAN(**SMALL)
    trainer, probe = fit_with_probe(model, mnist, steps=3)
    d_params, g_params = names(model, "trunk.", "d_head."), names(model, "generator.")
    assert d_params | g_params == names(model, "")
    assert [i for i, _ in probe.changed] == [0, 1] * 3  # D step, then G step, each batch
    for i, changed in probe.changed:
        assert changed == (d_params if i == 0 else g_params)  # every parameter of its net moves, nothing else


def test_one_batch_is_one_global_step(mnist: MNISTDataModule) -> None:
    model = GAN(**SMALL)
    trainer, probe = fit_with_probe(model, mnist, steps=5)
    assert trainer.global_step == 5  # trainer.max_steps counts batches, not optimizer.step() calls
    assert trainer.fit_loop.epoch_loop._batches_that_stepped == 5  # the logged step axis agrees
    opt_d, opt_g = trainer.optimizers
    assert all(s["step"].item() == 5 for opt in (opt_d, opt_g) for s in opt.state.values())
    assert trainer.callback_metrics.keys() >= {"train/d_loss", "train/g_loss"}


def test_interpolations_run_between_fixed_prior_draws() -> None:
    model = GAN(**SMALL).eval()
    x = torch.zeros(3, 1, 28, 28)
    grid = model.traversals(x, steps=5)["interpolation"]
    assert grid.shape == (3, 5, 1, 28, 28) and 0 <= grid.min() and grid.max() <= 1
    torch.testing.assert_close(model.traversals(x, steps=5)["interpolation"], grid)  # fixed draws
    gen = torch.Generator().manual_seed(0)
    start, end = model.sample_latent(3, gen), model.sample_latent(3, gen)
    torch.testing.assert_close(grid[:, 0], model.decode(start))
    torch.testing.assert_close(grid[:, -1], model.decode(end))


def test_64x64_images_get_the_dcgan_ladder() -> None:
    model = GAN(image_shape=(1, 64, 64), hidden=[32])
    convs = [m.out_channels for m in model.trunk.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [64, 128, 256, 512]
    assert model.sample(2).shape == (2, 1, 64, 64)


def test_cli_trains_a_gan_on_mnist_files_and_logs_interpolations(tmp_path: Path) -> None:
    write_mnist(tmp_path / "data")
    proc = run_train(["model=gan", "data=mnist", *CLI_SMALL], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (tmp_path / "logs/train/runs").iterdir()
    (wandb_dir,) = (run / "wandb").glob("offline-run-*")
    rows = wr.history(wr.run_file(wandb_dir))
    keys = {k for row in rows for k in row}
    assert {"train/d_loss", "train/g_loss", "train/d_real", "train/d_fake", "val/d_loss"} <= keys
    image_steps = sorted(r["trainer/global_step"] for r in rows if "traversal/interpolation/filenames" in r)
    assert image_steps == [3, 6]  # one batch = one step: every 3 batches of 6
    assert len(list((wandb_dir / "files/media/images/traversal").glob("interpolation_*.png"))) == 2
    assert wr.run_info(wr.run_file(wandb_dir)).job_type == "gan"


def test_lambda_info_is_not_a_gan_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigCompositionException, match="lambda_info"):
        compose_train(["model=gan", "lambda_info=1"], tmp_path)
    assert compose_train(["model=infogan", "lambda_info=1"], tmp_path).model.lambda_info == 1
