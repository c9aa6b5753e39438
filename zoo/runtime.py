"""Process-level settings that must be in place before Python allocates anything."""

from __future__ import annotations

import os
import sys

#: glibc malloc settings that keep large freed buffers instead of returning them to the kernel on
#: every step: 1.4-1.6x faster VAE training on CPU for 60-200 MiB more peak memory
#: (shared/reference/performance.md). They are read at process start only.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "1000000000", "MALLOC_TRIM_THRESHOLD_": "100000000000"}


def reexec_with_tuned_allocator() -> None:
    """Restart this process once with :data:`MALLOC_ENV` set (Linux/glibc only).

    Set ``ZOO_TUNE_MALLOC=0`` to opt out. Does nothing when the variables are already set.
    """
    if sys.platform != "linux" or os.environ.get("ZOO_TUNE_MALLOC", "1") == "0":
        return
    if all(k in os.environ for k in MALLOC_ENV):
        return
    os.environ.update({k: os.environ.get(k, v) for k, v in MALLOC_ENV.items()})
    os.execv(sys.executable, sys.orig_argv)
