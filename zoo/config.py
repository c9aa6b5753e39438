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
