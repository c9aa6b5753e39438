"""Disentanglement metrics that reproduce the reference protocol (disentanglement_lib, Locatello et al. 2019).

* :mod:`zoo.metrics.functional`: ``mig``, ``sap``, ``dci``, ``modularity_explicitness`` on given codes;
  ``beta_vae_score``, ``factor_vae_score`` drawing through a datamodule; ``sample_codes``.
* :func:`evaluate_all`: the whole suite with the reference settings, one flat dict of scores.
* :mod:`zoo.metrics.modules`: torchmetrics ``MIG``, ``SAP``, ``DCI``, ``ModularityExplicitness``.

Result layout (every function): float scores at the top level, plus ``settings``, ``versions`` and
``details`` (and ``timings`` for :func:`evaluate_all`); :func:`scores_of` keeps only the floats.
"""

from zoo.metrics._common import META_KEYS, scores_of, versions
from zoo.metrics.functional import (
    beta_vae_score,
    dci,
    factor_vae_score,
    mig,
    modularity_explicitness,
    sample_codes,
    sap,
)
from zoo.metrics.modules import DCI, MIG, SAP, ModularityExplicitness
from zoo.metrics.suite import METRICS, OPTIONS, evaluate_all

__all__ = [
    "DCI",
    "META_KEYS",
    "METRICS",
    "MIG",
    "OPTIONS",
    "SAP",
    "ModularityExplicitness",
    "beta_vae_score",
    "dci",
    "evaluate_all",
    "factor_vae_score",
    "mig",
    "modularity_explicitness",
    "sample_codes",
    "sap",
    "scores_of",
    "versions",
]
