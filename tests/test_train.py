"""`python train.py` end to end: offline W&B runs hold traversals and losses; sweeps; bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

import wandb_records as wr
from conftest import run_train

# A tiny β-VAE on 512 rendered dSprites images: seconds, not minutes.
TINY = [
    "data.subset=512",
    "data.batch_size=16",
    "data.val_fraction=0.125",
    "model.channels=[8,8,8,8]",
    "model.hidden=[32]",
    "model.latent_dim=4",
    "trainer.max_steps=6",
    "trainer.val_check_interval=3",
    "trainer.limit_val_batches=2",
    "trainer.log_every_n_steps=2",
    "callbacks.traversals.every_n_steps=3",
    "callbacks.model_checkpoint.every_n_train_steps=3",
    "~callbacks.evaluation",  # scored in test_evaluation.py
]


def single_run_dir(tmp: Path) -> Path:
    (run,) = (tmp / "logs/train/runs").iterdir()
    return run


def test_train_writes_an_offline_wandb_run_with_traversals(tmp_path: Path) -> None:
    proc = run_train([*TINY, "beta=2"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = single_run_dir(tmp_path)
    (wandb_dir,) = (run / "wandb").glob("offline-run-*")

    # The PNGs a dashboard shows: in the W&B run's media and in the job's own images/ folder.
    media = list((wandb_dir / "files/media/images/traversal").glob("image_*.png"))
    assert len(media) == 3 * 2  # 3 fixed images, logged at steps 3 and 6 (the end adds none: same step)
    assert {p.name.split("_")[1] for p in media} == {"0", "1", "2"}
    assert sorted(p.name for p in (run / "images").glob("traversal_image_0_*.png")) == [
        "traversal_image_0_step0000003.png",
        "traversal_image_0_step0000006.png",
    ]
    assert list((run / "images").glob("reconstructions_*.png")) and list((run / "images").glob("samples_*.png"))

    log = wr.run_file(wandb_dir)
    keys = {k for row in wr.history(log) for k in row}
    for key in ("train/loss", "train/recon", "train/kl", "train/kl_dim/0", "train/active_dims", "val/loss"):
        assert key in keys, key
    assert any(k.startswith("traversal/image_0") for k in keys)
    assert any(k.startswith("reconstructions") for k in keys) and any(k.startswith("samples") for k in keys)

    config = wr.config(log)
    assert config["model"]["beta"] == 2.0 and config["beta"] == 2.0  # resolved alias
    info = wr.run_info(log)
    assert info.job_type == "beta_vae" and "beta=2" in info.display_name
    assert (run / "checkpoints/last.ckpt").exists()


def test_multirun_gives_one_wandb_run_per_job(tmp_path: Path) -> None:
    tiny = [a for a in TINY if not a.startswith("trainer.max_steps")]
    proc = run_train(["-m", *tiny, "trainer.max_steps=2", "beta=1,8"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = (tmp_path / "logs/train/multiruns").iterdir()
    logs = sorted(sweep.glob("*/wandb/offline-run-*/run-*.wandb"))
    assert len(logs) == 2
    betas = sorted(wr.config(p)["model"]["beta"] for p in logs)
    assert betas == [1.0, 8.0]
    infos = [wr.run_info(p) for p in logs]
    assert infos[0].run_id != infos[1].run_id
    assert infos[0].run_group == infos[1].run_group == str(sweep)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("beta=-1", "beta=-1 is invalid: expected a number >= 0"),
        ("model.latent_dim=0", "model.latent_dim=0 is invalid: expected an integer >= 1"),
        ("data.batch_size=0", "data.batch_size=0 is invalid: expected an integer >= 1"),
    ],
)
def test_invalid_values_fail_before_training_in_one_line(override: str, message: str, tmp_path: Path) -> None:
    proc = run_train([override], tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.strip() == f"error: {message}"  # the whole of stderr: one line
    run = single_run_dir(tmp_path)
    assert not (run / "wandb").exists() and not (run / "checkpoints").exists()
    assert not (tmp_path / "data").exists()  # no dataset was read or rendered


def test_unknown_dataset_fails_at_composition(tmp_path: Path) -> None:
    proc = run_train(["data=imagenet"], tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("error: data='imagenet' is invalid: expected one of dsprites")
    assert not (tmp_path / "logs").exists()


def test_alias_of_another_model_fails_at_composition(tmp_path: Path) -> None:
    proc = run_train(["model=beta_vae", "lambda_info=1"], tmp_path)
    assert proc.returncode != 0 and "lambda_info" in proc.stderr
    assert not (tmp_path / "logs").exists()
