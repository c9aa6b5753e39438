"""Histogram discretisation and discrete mutual information, vectorised in torch.

These reproduce disentanglement_lib's ``_histogram_discretize`` (``np.digitize`` against the left edges
of ``np.histogram(code, num_bins)``) and ``discrete_mutual_info`` / ``discrete_entropy``
(``sklearn.metrics.mutual_info_score``, natural log, clipped at 0), without a Python loop over codes,
factors or samples: one ``searchsorted`` bins every code, one ``bincount`` builds every contingency table.
"""

from __future__ import annotations

import torch
from torch import Tensor


def histogram_bins(codes: Tensor, num_bins: int = 20) -> Tensor:
    """Bin each code dimension into ``num_bins`` equal-width bins over its sample range.

    Args:
        codes: float (N, D).
    Returns:
        long (N, D) bin indices in ``[0, num_bins)`` (numpy's digitize result minus one).

    Edges follow ``np.histogram``: ``min + i * (max - min) / num_bins``; a constant dimension gets the
    range ``[v - 0.5, v + 0.5]``; the maximum falls in the last bin. Computed in float64.
    """
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1, got {num_bins}")
    x = codes.double()
    lo, hi = x.min(0).values, x.max(0).values
    same = lo == hi
    lo, hi = torch.where(same, lo - 0.5, lo), torch.where(same, hi + 0.5, hi)
    step = (hi - lo) / num_bins
    inner = lo[:, None] + torch.arange(1, num_bins, dtype=torch.float64)[None, :] * step[:, None]  # (D, B-1)
    return torch.searchsorted(inner.contiguous(), x.T.contiguous(), right=True).T


def relabel(factors: Tensor) -> tuple[Tensor, list[int]]:
    """Map each factor column to consecutive labels 0..C_k-1; returns the labels and the C_k."""
    cols, sizes = [], []
    for k in range(factors.shape[1]):
        uniq, inv = torch.unique(factors[:, k], return_inverse=True)
        cols.append(inv)
        sizes.append(len(uniq))
    return torch.stack(cols, 1), sizes


def _mi_from_counts(counts: Tensor, n: int) -> Tensor:
    """Mutual information (nats) of contingency tables (..., A, B) of n samples each."""
    p = counts.double() / n
    pa = p.sum(-1, keepdim=True)
    pb = p.sum(-2, keepdim=True)
    ratio = torch.where(p > 0, p / (pa * pb), 1.0)
    return (p * torch.log(ratio)).sum((-2, -1)).clamp_min(0.0)


def discrete_mutual_info(bins: Tensor, factors: Tensor, num_bins: int | None = None) -> Tensor:
    """I(code_i; factor_j) in nats for binned codes (N, D) and factor classes (N, K) -> (D, K) float64."""
    n, d = bins.shape
    k = factors.shape[1]
    labels, sizes = relabel(factors)
    c = max(sizes)
    b = int(bins.max()) + 1 if num_bins is None else num_bins
    # one flat index per (sample, code, factor): ((i * K + j) * B + bin) * C + class
    pair = (torch.arange(d)[:, None] * k + torch.arange(k)[None, :]) * b  # (D, K)
    idx = (pair[None] + bins[:, :, None]) * c + labels[:, None, :]  # (N, D, K)
    counts = torch.bincount(idx.reshape(-1), minlength=d * k * b * c).view(d, k, b, c)
    return _mi_from_counts(counts, n)


def discrete_entropy(factors: Tensor) -> Tensor:
    """H(factor_j) in nats of the empirical distribution of each column (N, K) -> (K,) float64."""
    labels, sizes = relabel(factors)
    n = len(factors)
    out = []
    for j, s in enumerate(sizes):
        p = torch.bincount(labels[:, j], minlength=s).double() / n
        out.append(-(p * torch.log(p)).sum())
    return torch.stack(out)
