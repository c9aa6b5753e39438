"""Clustering accuracy: a discrete code scored as a classifier after matching codes to labels one to one."""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor


def confusion_matrix(codes: Tensor, labels: Tensor, num_codes: int, num_labels: int) -> Tensor:
    """long (num_codes, num_labels): how often each code value co-occurs with each label.

    Args:
        codes: long (N,) code values in [0, num_codes).
        labels: long (N,) labels in [0, num_labels).
    """
    flat = codes.long() * num_labels + labels.long()
    return torch.bincount(flat, minlength=num_codes * num_labels).view(num_codes, num_labels)


def hungarian_accuracy(confusion: Tensor) -> float:
    """Accuracy in [0, 1] of the best one-to-one map from code values to labels.

    The map maximises the matched count (Hungarian assignment, ``scipy.optimize.linear_sum_assignment``);
    with unequal sizes the surplus code values or labels stay unmatched and count as errors.
    This is the InfoGAN MNIST protocol (Chen et al. 2016, Sec. 7.1: the categorical code as a classifier).

    Args:
        confusion: (num_codes, num_labels) counts, e.g. from :func:`confusion_matrix`.
    """
    counts = confusion.detach().cpu().double().numpy()
    total = counts.sum()
    if total == 0:
        raise ValueError("the confusion matrix is empty")
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / total)
