"""The reference evaluation suite: every metric with its own seeded sample, one flat result dict."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

from zoo.config import ConfigError
from zoo.metrics import functional as F
from zoo.metrics._common import PROTOCOL, scores_of, versions
from zoo.metrics.sampling import ENCODE_BATCH, check_mask, sample_codes

#: Metric names accepted by :func:`evaluate_all`, in the order they run.
METRICS = ("beta_vae", "factor_vae", "mig", "sap", "dci", "modularity")

#: Reference sample sizes of the fixed-sample metrics.
_FIXED_SIZES = {
    "mig": {"num_points": 10_000},
    "sap": {"num_train": 10_000, "num_test": 5_000},
    "dci": {"num_train": 10_000, "num_test": 5_000},
    "modularity": {"num_train": 10_000, "num_test": 5_000},
}
#: Options each metric accepts in ``evaluate_all(options={name: {...}})``.
OPTIONS = {
    "beta_vae": ("batch_size", "num_train", "num_eval"),
    "factor_vae": ("batch_size", "num_train", "num_eval", "num_variance", "prune_std"),
    "mig": ("num_points", "num_bins"),
    "sap": ("num_train", "num_test", "C"),
    "dci": ("num_train", "num_test", "n_estimators", "max_depth", "learning_rate", "backend", "workers"),
    "modularity": ("num_train", "num_test", "num_bins"),
}


def _check_metrics(metrics: Iterable[str] | str) -> list[str]:
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    for name in names:
        if name not in METRICS:
            raise ConfigError("metrics", name, f"one of {', '.join(METRICS)}")
    return [m for m in METRICS if m in names]  # reference order, no duplicates


def _check_options(options: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    options = dict(options or {})
    for name, opts in options.items():
        if name not in OPTIONS:
            raise ConfigError("metrics.options", name, f"one of {', '.join(METRICS)}")
        for key in opts or {}:
            if key not in OPTIONS[name]:
                raise ConfigError(f"metrics.options.{name}", key, f"one of {', '.join(OPTIONS[name])}")
    return {name: dict(options.get(name) or {}) for name in METRICS}


def evaluate_all(
    encode: Callable[[Tensor], Tensor],
    datamodule,
    metrics: Iterable[str] | str = METRICS,
    seed: int = 0,
    mask: Tensor | None = None,
    *,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int = ENCODE_BATCH,
    device: torch.device | str | None = None,
) -> dict:
    """Run the reference protocol: each metric draws its own sample from a fresh generator seeded ``seed``.

    Args:
        encode: float images (B, C, H, W) -> codes (B, D), usually the posterior mean (a model's
            ``encode``; its module is put in eval mode while scoring, autograd off).
        datamodule: a :class:`~zoo.data.factor.FactorDataModule`; only ``ground_truth`` factors are
            fixed or scored.
        metrics: names among :data:`METRICS`; unknown names raise :class:`~zoo.config.ConfigError`.
        seed: seed of every metric's generator (and scikit-learn ``random_state``).
        mask: optional bool (num_points,) over grid indices: draw only these points (OOD splits).
        options: per-metric overrides of the reference settings, e.g. ``{"dci": {"num_train": 2000}}``
            (allowed keys: :data:`OPTIONS`).
        batch_size: images per ``encode`` call. device: where images go (default: the encoder's).

    Returns:
        A flat dict of float scores (``beta_vae_score``, ``factor_vae_score``, ``mig``, ``sap``,
        ``dci_disentanglement``, ``dci_completeness``, ``dci_informativeness``, ``modularity``,
        ``explicitness``, plus the train accuracies ``*_train*``), and ``settings`` (global and per
        metric), ``versions``, ``timings`` (seconds per metric, ``sample_<n>x<m>`` for drawing and
        encoding a fixed sample, ``total``) and ``details`` (per metric).

    SAP, DCI and modularity draw 10,000 train then 5,000 test points from their fresh generator, and
    MIG its 10,000 points, so with equal sizes they score the very same sample (as in the reference,
    where every metric restarts from random state 0); that sample is drawn and encoded once.
    """
    names = _check_metrics(metrics)
    opts = _check_options(options)
    mask = check_mask(datamodule, mask)
    start = time.perf_counter()
    out: dict[str, Any] = {}
    settings: dict[str, Any] = {
        "protocol": PROTOCOL,
        "metrics": names,
        "seed": seed,
        "mask_points": None if mask is None else int(mask.sum()),
        "num_points_grid": datamodule.num_points,
        "ground_truth": list(datamodule.ground_truth),
    }
    timings: dict[str, float] = {}
    details: dict[str, Any] = {}
    samples: dict[tuple[int, int], tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor] | None]] = {}

    def fixed_sample(n_train: int, n_test: int) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor] | None]:
        """(train, test) drawn from a fresh generator: train first, so an n_test=0 draw is its prefix."""
        for (a, b), value in samples.items():
            if a == n_train and (b == n_test or n_test == 0):
                return value[0], (value[1] if n_test else None)
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(seed)
        train = sample_codes(encode, datamodule, n_train, gen, mask, batch_size, device)
        test = sample_codes(encode, datamodule, n_test, gen, mask, batch_size, device) if n_test else None
        samples[(n_train, n_test)] = (train, test)
        timings[f"sample_{n_train}x{n_test}"] = time.perf_counter() - t0
        return train, test

    # Draw (and encode) each distinct fixed sample once, before scoring, so that the per-metric
    # timings are scoring only: the split samples first, then MIG's (a prefix of one of them if sizes match).
    for name in ("sap", "dci", "modularity"):
        if name in names:
            fixed_sample(
                opts[name].get("num_train", _FIXED_SIZES[name]["num_train"]),
                opts[name].get("num_test", _FIXED_SIZES[name]["num_test"]),
            )
    if "mig" in names:
        fixed_sample(opts["mig"].get("num_points", _FIXED_SIZES["mig"]["num_points"]), 0)

    for name in names:
        o = dict(opts[name])
        t0 = time.perf_counter()
        if name == "beta_vae":
            r = F.beta_vae_score(
                encode, datamodule, seed=seed, mask=mask, encode_batch_size=batch_size, device=device, **o
            )
        elif name == "factor_vae":
            r = F.factor_vae_score(
                encode, datamodule, seed=seed, mask=mask, encode_batch_size=batch_size, device=device, **o
            )
        elif name == "mig":
            n = o.pop("num_points", _FIXED_SIZES["mig"]["num_points"])
            (codes, factors), _ = fixed_sample(n, 0)
            r = F.mig(codes, factors, **o)
        else:
            n_train = o.pop("num_train", _FIXED_SIZES[name]["num_train"])
            n_test = o.pop("num_test", _FIXED_SIZES[name]["num_test"])
            train, test = fixed_sample(n_train, n_test)
            fn = {"sap": F.sap, "dci": F.dci, "modularity": F.modularity_explicitness}[name]
            r = fn(*train, *test, seed=seed, **o)
        timings[name] = time.perf_counter() - t0
        out.update(scores_of(r))
        settings[name] = r["settings"]
        details[name] = r["details"]
    timings["total"] = time.perf_counter() - start
    out["settings"] = settings
    out["versions"] = versions()
    out["timings"] = timings
    out["details"] = details
    return out
