"""torchmetrics ``Metric`` wrappers of the fixed-sample metrics (MIG, SAP, DCI, modularity/explicitness).

``update(codes, factors)`` accumulates codes (B, D) and ground-truth factor classes (B, K) in list states
reduced with ``dist_reduce_fx="cat"`` (so DDP ranks pool their samples); ``compute()`` calls the
functional metric on everything accumulated and returns its float scores as a dict of 0-d tensors
(ready for ``self.log_dict``); the full result (settings, versions, details) is kept in ``.result``.

SAP, DCI and modularity/explicitness need a train and a test sample: pass ``test=True`` to ``update``
for test points, or accumulate one sample and let ``compute`` split it in order (the first
``train_fraction``, by default the reference's 10,000 : 5,000 = 2/3, for training). The split assumes
the updates arrive in random order (i.i.d. draws, a shuffled loader, or :func:`sample_codes`).

These metrics fit classifiers on the whole sample, so calling the module (``forward``) only updates;
it never scores a single batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from zoo.metrics import functional as F
from zoo.metrics._common import scores_of

__all__ = ["MIG", "SAP", "DCI", "ModularityExplicitness"]


class _FactorCodeMetric(Metric):
    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("codes", default=[], dist_reduce_fx="cat")
        self.add_state("factors", default=[], dist_reduce_fx="cat")
        self.result: dict | None = None

    @staticmethod
    def _check(codes: Tensor, factors: Tensor) -> tuple[Tensor, Tensor]:
        if codes.dim() != 2 or factors.dim() != 2 or len(codes) != len(factors):
            raise ValueError(
                f"update expects codes (B, D) and factors (B, K), got {tuple(codes.shape)} and {tuple(factors.shape)}"
            )
        return codes.detach().float(), factors.detach().long()

    def update(self, codes: Tensor, factors: Tensor) -> None:  # type: ignore[override]
        codes, factors = self._check(codes, factors)
        self.codes.append(codes)
        self.factors.append(factors)

    def forward(self, *args: Any, **kwargs: Any) -> None:
        """Accumulate only: these scores are defined on a whole sample, never on one batch."""
        self.update(*args, **kwargs)

    @staticmethod
    def _cat(state) -> Tensor:
        if isinstance(state, list) and not state:
            raise ValueError("no samples: call update(codes, factors) before compute()")
        return dim_zero_cat(state).cpu()

    def _scores(self, result: dict) -> dict[str, Tensor]:
        self.result = result
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in scores_of(result).items()}


class MIG(_FactorCodeMetric):
    """Mutual information gap (20 equal-width bins, discrete MI): ``compute() -> {"mig": tensor}``."""

    def __init__(self, num_bins: int = 20, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_bins = num_bins

    def compute(self) -> dict[str, Tensor]:
        return self._scores(F.mig(self._cat(self.codes), self._cat(self.factors), num_bins=self.num_bins))


class _SplitMetric(_FactorCodeMetric):
    def __init__(self, train_fraction: float = 2 / 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 < train_fraction < 1:
            raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
        self.train_fraction = train_fraction
        self.add_state("test_codes", default=[], dist_reduce_fx="cat")
        self.add_state("test_factors", default=[], dist_reduce_fx="cat")

    def update(self, codes: Tensor, factors: Tensor, test: bool = False) -> None:  # type: ignore[override]
        codes, factors = self._check(codes, factors)
        (self.test_codes if test else self.codes).append(codes)
        (self.test_factors if test else self.factors).append(factors)

    def _train_test(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        codes, factors = self._cat(self.codes), self._cat(self.factors)
        has_test = not (isinstance(self.test_codes, list) and not self.test_codes)
        if has_test:
            return codes, factors, self._cat(self.test_codes), self._cat(self.test_factors)
        n_train = int(round(self.train_fraction * len(codes)))
        if not 0 < n_train < len(codes):
            raise ValueError(f"{len(codes)} points cannot be split into train and test")
        return codes[:n_train], factors[:n_train], codes[n_train:], factors[n_train:]


class SAP(_SplitMetric):
    """SAP score (1-D LinearSVC C=0.01, balanced): ``compute() -> {"sap": tensor}``."""

    def __init__(self, C: float = 0.01, seed: int = 0, train_fraction: float = 2 / 3, **kwargs: Any) -> None:
        super().__init__(train_fraction, **kwargs)
        self.C, self.seed = C, seed

    def compute(self) -> dict[str, Tensor]:
        return self._scores(F.sap(*self._train_test(), C=self.C, seed=self.seed))


class DCI(_SplitMetric):
    """DCI with gradient-boosted trees: ``compute() -> {"dci_disentanglement", "dci_completeness",
    "dci_informativeness", "dci_informativeness_train"}``; keyword arguments go to :func:`functional.dci`."""

    def __init__(self, train_fraction: float = 2 / 3, seed: int = 0, **kwargs: Any) -> None:
        dci_keys = ("n_estimators", "max_depth", "learning_rate", "backend", "workers")
        self.dci_kwargs = {k: kwargs.pop(k) for k in dci_keys if k in kwargs}
        super().__init__(train_fraction, **kwargs)
        self.seed = seed

    def compute(self) -> dict[str, Tensor]:
        return self._scores(F.dci(*self._train_test(), seed=self.seed, **self.dci_kwargs))


class ModularityExplicitness(_SplitMetric):
    """Modularity and explicitness: ``compute() -> {"modularity", "explicitness", "explicitness_train"}``."""

    def __init__(self, num_bins: int = 20, seed: int = 0, train_fraction: float = 2 / 3, **kwargs: Any) -> None:
        super().__init__(train_fraction, **kwargs)
        self.num_bins, self.seed = num_bins, seed

    def compute(self) -> dict[str, Tensor]:
        return self._scores(F.modularity_explicitness(*self._train_test(), num_bins=self.num_bins, seed=self.seed))
