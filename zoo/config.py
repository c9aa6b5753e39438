"""Configuration errors: one line naming the key, the bad value and what is allowed."""

from __future__ import annotations

from pathlib import Path
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


def check_group_choices(overrides: list[str], conf_dir: str | Path) -> None:
    """Fail in one line on a config-group choice that does not exist (``data=imagenet``).

    Hydra would stop too, with a longer message; this names the group, the value and the options.
    """
    conf = Path(conf_dir)
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        group = conf / key
        if not sep or "." in key or not group.is_dir() or value in ("", "null"):
            continue
        options = sorted(p.stem for p in group.glob("*.yaml"))
        for choice in value.split(","):
            check(choice in options, key, choice, f"one of {', '.join(options)}")


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
