"""Configuration errors: one line naming the key, the bad value and what is allowed."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A bad setting. ``str(err)`` is one line: ``key=value is invalid: expected <allowed>``."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is invalid: expected {allowed}")


def check(condition: bool, key: str, value: Any, allowed: str) -> None:
    """Raise :class:`ConfigError` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(key, value, allowed)


def register_resolvers() -> None:
    """OmegaConf resolvers the configs use (idempotent): W&B mode, run name and sweep group."""
    import os

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    def offline() -> bool:
        # Offline unless the user opts in: no account, no prompt, no network by default.
        return os.environ.get("WANDB_MODE", "offline").lower() not in ("online", "run")

    def run_name() -> str:
        hc = HydraConfig.get()
        return hc.job.override_dirname or hc.runtime.choices.get("model", hc.job.name)

    def sweep_group() -> str | None:
        hc = HydraConfig.get()
        return hc.sweep.dir if hc.mode == RunMode.MULTIRUN else None

    for name, fn in {"zoo.wandb_offline": offline, "zoo.run_name": run_name, "zoo.sweep_group": sweep_group}.items():
        OmegaConf.register_new_resolver(name, fn, replace=True)
