"""Scoring a model's representation on a factor dataset, and loading checkpoints to score them."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from zoo.config import check
from zoo.data.factor import FactorDataModule
from zoo.metrics import evaluate_all, scores_of
from zoo.models.base import ZooModule

log = logging.getLogger(__name__)


@torch.no_grad()
def score(
    model: ZooModule,
    datamodule: FactorDataModule,
    metrics: Sequence[str],
    seed: int = 0,
    mask: torch.Tensor | None = None,
    options: dict | None = None,
) -> dict:
    """Run the reference protocol (``zoo.metrics.evaluate_all``) on ``model.encode`` in eval mode.

    ``options`` overrides reference settings per metric, e.g. ``{"mig": {"num_points": 1000}}``.
    Returns the metrics' result: float scores at the top level, plus settings, versions, timings.
    """
    was_training = model.training
    model.eval()
    try:

        def encode(x: torch.Tensor) -> torch.Tensor:
            return model.encode(x.to(model.device)).float()

        return evaluate_all(encode, datamodule, metrics=tuple(metrics), seed=seed, mask=mask, options=options)
    finally:
        model.train(was_training)


def write_json(path: str | Path, payload: object) -> None:
    """Write JSON atomically (temp file + rename): a crash never leaves a half-written report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(
    ckpt_path: str | Path, data_dir: str | None = None, trained: bool = True
) -> tuple[ZooModule, FactorDataModule | None]:
    """Rebuild a model (and its datamodule) from a zoo checkpoint without unpickling code.

    The checkpoint is read with ``weights_only=True``; ``checkpoint["zoo"]`` names the classes and
    their init arguments (see ``ZooModule.on_save_checkpoint``). ``data_dir`` replaces the
    training machine's data directory. ``trained=False`` keeps the fresh initial weights: the same
    architecture untrained, the floor a trained model's scores are compared with.
    """
    path = Path(ckpt_path)
    check(path.is_file(), "ckpt_path", str(ckpt_path), "an existing checkpoint file")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    check("zoo" in ckpt, "ckpt_path", str(ckpt_path), "a checkpoint written by `python train.py`")
    model = hydra.utils.instantiate(ckpt["zoo"]["model"], _convert_="all")
    if trained:
        model.load_state_dict(ckpt["state_dict"])
    data_cfg = ckpt["zoo"].get("data")
    if data_cfg is None:
        return model, None
    if data_dir is not None:
        data_cfg = {**data_cfg, "data_dir": data_dir}
    return model, hydra.utils.instantiate(data_cfg, _convert_="all")


def evaluate(cfg: DictConfig) -> dict:
    """``python eval.py``: load ``cfg.ckpt_path``, score it, print and save ``metrics.json``.

    The checkpoint's datamodule is rebuilt with this machine's ``paths.data_dir``.
    """
    torch.manual_seed(cfg.seed)  # the initial weights of an untrained model
    model, datamodule = load_checkpoint(cfg.ckpt_path, cfg.paths.data_dir, trained=not cfg.untrained)
    check(isinstance(datamodule, FactorDataModule), "data", type(datamodule).__name__, "a factor dataset (e.g. data=dsprites)")
    options = OmegaConf.to_container(cfg.options, resolve=True) if cfg.get("options") else None
    result = score(model, datamodule, cfg.metrics, seed=cfg.seed, options=options)
    report = {"ckpt_path": str(cfg.ckpt_path), "untrained": cfg.untrained, "config": OmegaConf.to_container(cfg, resolve=True), **result}
    out = Path(cfg.paths.output_dir) / "metrics.json"
    write_json(out, report)
    for key, value in scores_of(result).items():
        print(f"{key:>24s}  {value:.4f}")
    print(f"saved {out}")
    return report
