"""Helpers shared by the metrics: input checks, the versions record, warning counts, threads."""

from __future__ import annotations

import contextlib
import platform
import warnings
from collections.abc import Iterator

import numpy as np
import sklearn
import torch
from sklearn.exceptions import ConvergenceWarning
from torch import Tensor

#: The protocol every default reproduces (see /work/shared/reference/metrics.md).
PROTOCOL = "disentanglement_lib / Locatello et al. (ICML 2019): i.i.d. uniform factors, fresh state seeded per metric"
#: Keys of a result dict that are not scores; every other top-level key is a float score.
META_KEYS = ("settings", "versions", "details", "timings")


def versions() -> dict[str, str]:
    """The library versions a score depends on (scikit-learn changed classifier defaults since 2019)."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
    }


def scores_of(result: dict) -> dict[str, float]:
    """The float scores of a result dict (every top-level key but settings/versions/details/timings)."""
    return {k: v for k, v in result.items() if k not in META_KEYS}


def as_codes(codes, name: str = "codes") -> Tensor:
    """Codes as a CPU float tensor (N, D); float64 stays float64, everything else becomes float32."""
    t = codes.detach() if isinstance(codes, Tensor) else torch.as_tensor(np.asarray(codes))
    t = t.cpu()
    if t.dim() == 1:
        t = t.unsqueeze(1)
    if t.dim() != 2 or len(t) == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) array, got shape {tuple(t.shape)}")
    if not t.is_floating_point() or t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contain NaN or inf")
    return t


def as_factors(factors, n: int, name: str = "factors") -> Tensor:
    """Factor classes as a CPU long tensor (N, K) with N == n."""
    t = factors.detach() if isinstance(factors, Tensor) else torch.as_tensor(np.asarray(factors))
    t = t.cpu()
    if t.dim() == 1:
        t = t.unsqueeze(1)
    if t.dim() != 2:
        raise ValueError(f"{name} must be an (N, K) array of classes, got shape {tuple(t.shape)}")
    if t.is_floating_point():
        if not bool((t == t.round()).all()):
            raise ValueError(f"{name} must hold integer classes (discrete factors)")
    t = t.long()
    if len(t) != n:
        raise ValueError(f"{name} has {len(t)} rows but the codes have {n}")
    return t


def varying_factors(factors: Tensor) -> list[int]:
    """Columns of ``factors`` that take at least two values (a constant factor cannot be scored)."""
    return [k for k in range(factors.shape[1]) if bool((factors[:, k] != factors[0, k]).any())]


class WarningCounter:
    """Counts scikit-learn ConvergenceWarnings (e.g. lbfgs at max_iter=100) instead of printing them."""

    def __init__(self) -> None:
        self.count = 0

    @contextlib.contextmanager
    def catch(self) -> Iterator[None]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            yield
        for w in caught:
            if issubclass(w.category, ConvergenceWarning):
                self.count += 1
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op threads (restored afterwards); ``None`` leaves them alone."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
