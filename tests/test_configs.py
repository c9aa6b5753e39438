"""Every config composes and builds its objects; aliases belong to the model that owns them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from conftest import ROOT, compose_train
from zoo.train import build

MODELS = sorted(p.stem for p in (ROOT / "conf/model").glob("*.yaml"))
DATA = sorted(p.stem for p in (ROOT / "conf/data").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf/experiment").glob("*.yaml"))
SEARCHES = sorted(p.stem for p in (ROOT / "conf/hparams_search").glob("*.yaml"))


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_and_dataset_composes_and_builds(model: str, data: str, tmp_path: Path) -> None:
    cfg = compose_train([f"model={model}", f"data={data}", "logger=csv"], tmp_path)
    assert cfg.model._target_.startswith("zoo.models.")
    assert cfg.data._target_.startswith("zoo.data.")
    datamodule, module, trainer = build(cfg)  # constructors only: nothing is read or rendered
    assert tuple(module.hparams.image_shape) == tuple(datamodule.image_shape)
    assert trainer.max_steps == cfg.trainer.max_steps


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_builds(name: str, tmp_path: Path) -> None:
    cfg = compose_train([f"experiment={name}", "logger=csv"], tmp_path)
    datamodule, module, _ = build(cfg)
    assert tuple(module.hparams.image_shape) == tuple(datamodule.image_shape)


@pytest.mark.parametrize("name", SEARCHES)
def test_every_search_composes_as_a_multirun(name: str, tmp_path: Path) -> None:
    cfg = compose_train([f"hparams_search={name}"], tmp_path)
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.hydra.sweeper.params


def test_beta_alias_reaches_the_model_and_the_resolved_config(tmp_path: Path) -> None:
    cfg = compose_train(["model=beta_vae", "beta=16"], tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["beta"] == 16 and resolved["model"]["beta"] == 16


def test_capacity_model_uses_the_capacity_aliases(tmp_path: Path) -> None:
    cfg = compose_train(["model=beta_vae_capacity", "capacity_max=50"], tmp_path)
    assert cfg.model.objective == "capacity" and cfg.model.capacity_max == 50


def test_alias_of_another_model_fails_at_composition(tmp_path: Path) -> None:
    with pytest.raises(ConfigCompositionException, match="lambda_info"):
        compose_train(["model=beta_vae", "lambda_info=1"], tmp_path)


def test_trainer_keys_pass_straight_to_lightning(tmp_path: Path) -> None:
    cfg = compose_train(["trainer.max_steps=20", "trainer.log_every_n_steps=7", "logger=csv"], tmp_path)
    _, _, trainer = build(cfg)
    assert trainer.max_steps == 20 and trainer.log_every_n_steps == 7
