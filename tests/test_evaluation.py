"""The evaluation callback on a tiny training run, and eval.py on the checkpoint it leaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import wandb_records as wr
from conftest import ROOT, run_train
from test_train import TINY, single_run_dir
from zoo.evaluate import load_checkpoint

# Smaller samples than the reference keep the test fast; the settings land in the report.
SMALL = "{mig:{num_points:2000},dci:{num_train:1000,num_test:500}}"
EVAL = [*(a for a in TINY if a != "~callbacks.evaluation"), "callbacks.evaluation.metrics=[mig,dci]", f"callbacks.evaluation.options={SMALL}"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("evaluation")
    proc = run_train(EVAL, tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return single_run_dir(tmp)


def test_callback_writes_json_and_wandb_summary(trained: Path) -> None:
    history = json.loads((trained / "metrics.json").read_text())
    final = history[-1]
    assert final["step"] == 6
    for key in ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness"):
        assert 0.0 <= final[key] <= 1.0, key
    assert {"torch", "sklearn", "numpy"} <= set(final["versions"])  # library versions recorded
    assert final["settings"]["seed"] == 0

    (wandb_dir,) = (trained / "wandb").glob("offline-run-*")
    log = wr.run_file(wandb_dir)
    summary = wr.summary(log)
    assert summary["disentanglement/mig"] == pytest.approx(final["mig"])
    assert any("disentanglement/dci_disentanglement" in row for row in wr.history(log))


def test_checkpoint_loads_without_unpickling_code(trained: Path) -> None:
    ckpt = torch.load(trained / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["zoo"]["model"]["_target_"] == "zoo.models.beta_vae.BetaVAE"
    assert ckpt["zoo"]["data"]["_target_"] == "zoo.data.dsprites.DSpritesDataModule"
    model, datamodule = load_checkpoint(trained / "checkpoints/last.ckpt")
    assert model.hparams.latent_dim == 4 and datamodule.subset == 512
    x = torch.rand(2, 1, 64, 64)
    assert model.encode(x).shape == (2, 4)


def test_eval_py_scores_a_checkpoint_like_the_callback(trained: Path, tmp_path: Path) -> None:
    env = {**os.environ, "ZOO_DATA_DIR": str(tmp_path / "data")}
    cmd = [sys.executable, "eval.py", f"ckpt_path={trained / 'checkpoints/last.ckpt'}", "metrics=[mig,dci]", f"options={SMALL}", f"paths.log_dir={tmp_path / 'logs'}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out,) = (tmp_path / "logs/eval/runs").glob("*/metrics.json")
    report = json.loads(out.read_text())
    final = json.loads((trained / "metrics.json").read_text())[-1]
    # Same weights, same data, same seeds: the same scores as the callback at the end of training.
    assert report["mig"] == pytest.approx(final["mig"], abs=1e-6)
    assert report["dci_disentanglement"] == pytest.approx(final["dci_disentanglement"], abs=1e-6)
    assert "mig" in proc.stdout


def test_untrained_baseline_has_the_same_architecture_and_fresh_weights(trained: Path) -> None:
    model, _ = load_checkpoint(trained / "checkpoints/last.ckpt")
    torch.manual_seed(0)
    fresh, _ = load_checkpoint(trained / "checkpoints/last.ckpt", trained=False)
    assert fresh.state_dict().keys() == model.state_dict().keys()
    assert not torch.equal(fresh.encoder.net[0].weight, model.encoder.net[0].weight)


def test_eval_py_rejects_a_missing_checkpoint(tmp_path: Path) -> None:
    cmd = [sys.executable, "eval.py", "ckpt_path=/nonexistent.ckpt", f"paths.log_dir={tmp_path}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip() == "error: ckpt_path='/nonexistent.ckpt' is invalid: expected an existing checkpoint file"
