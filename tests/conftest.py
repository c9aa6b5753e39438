"""Shared fixtures: Hydra composition of the real configs, and the command line of train.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from zoo.config import register_resolvers

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # tests/wandb_records.py

register_resolvers()


def compose_train(overrides: Sequence[str] = (), tmp: Path | None = None) -> DictConfig:
    """The resolved-ready training config as `python train.py <overrides>` would see it."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = compose(config_name="train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(ROOT)
        cfg.paths.output_dir = str(tmp or ROOT / "logs" / "test")
        cfg.hydra.runtime.output_dir = cfg.paths.output_dir
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    return cfg


def run_train(args: Sequence[str], tmp: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python train.py <args>`` from the repo root with a tiny, offline, CPU setup."""
    env = {**os.environ, "ZOO_DATA_DIR": str(tmp / "data"), "WANDB_SILENT": "true"}
    env.pop("WANDB_MODE", None)
    flags = [a for a in args if a.startswith("-")]
    overrides = [a for a in args if not a.startswith("-")]
    cmd = [sys.executable, "train.py", *flags, f"paths.log_dir={tmp / 'logs'}", "trainer.accelerator=cpu", *overrides]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def tmp_run(tmp_path: Path) -> Path:
    return tmp_path
