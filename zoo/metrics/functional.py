"""Disentanglement metrics with the reference protocol's defaults (disentanglement_lib, Locatello et al. 2019).

Two kinds of function:

* **fixed-sample metrics** score codes you already have: ``mig(codes, factors)``,
  ``sap / dci / modularity_explicitness(train_codes, train_factors, test_codes, test_factors)``.
  Codes are float (N, D), factors long classes (N, K) (only ground-truth factors). The reference draws
  the train and test points separately (10,000 then 5,000 from one random state); draw them with
  :func:`sample_codes` (what :func:`zoo.metrics.evaluate_all` does), or pass any two disjoint samples.
* **sampling metrics** draw their own structured batches through a datamodule and an encoder:
  ``beta_vae_score(encode, datamodule)``, ``factor_vae_score(encode, datamodule)``.

Every function returns a dict: float scores at the top level (``"mig"``, ``"dci_disentanglement"``, ...)
plus ``"settings"`` (every setting used), ``"versions"`` (python/torch/numpy/sklearn) and ``"details"``
(per-factor numbers, matrices, classifier warnings; JSON-serialisable lists). A factor that is constant
in the sample (possible under a mask) cannot be scored and is left out; ``details["constant_factors"]``
names it. Randomness: each metric builds a fresh ``torch.Generator`` seeded ``seed`` (0 by default), and
scikit-learn estimators get ``random_state=seed``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.svm import LinearSVC
from torch import Tensor

from zoo.config import ConfigError
from zoo.metrics._common import (
    WarningCounter,
    as_codes,
    as_factors,
    torch_threads,
    varying_factors,
    versions,
)
from zoo.metrics.gbt import GradientBoostedTrees
from zoo.metrics.mutual_info import discrete_entropy, discrete_mutual_info, histogram_bins
from zoo.metrics.sampling import ENCODE_BATCH, FactorSampler, encode_factors, sample_codes

__all__ = [
    "mig",
    "sap",
    "dci",
    "modularity_explicitness",
    "beta_vae_score",
    "factor_vae_score",
    "sample_codes",
]

MIG_ESTIMATOR = (
    "discrete MIG (disentanglement_lib): codes in equal-width bins over their sample range, "
    "plug-in mutual information in nats; not Chen et al.'s sampled estimator"
)


def _fixed(codes, factors, name: str = "") -> tuple[Tensor, Tensor]:
    c = as_codes(codes, f"{name}codes")
    return c, as_factors(factors, len(c), f"{name}factors")


def _split(train_codes, train_factors, test_codes, test_factors):
    tc, tf = _fixed(train_codes, train_factors, "train_")
    ec, ef = _fixed(test_codes, test_factors, "test_")
    if tc.shape[1] != ec.shape[1] or tf.shape[1] != ef.shape[1]:
        raise ValueError(
            f"train and test disagree: codes {tc.shape[1]} vs {ec.shape[1]} dims, "
            f"factors {tf.shape[1]} vs {ef.shape[1]}"
        )
    active = varying_factors(tf)
    if not active:
        raise ValueError("every factor is constant in the training sample: nothing to score")
    return tc, tf, ec, ef, active


def _constant(k: int, active: list[int]) -> list[int]:
    return [j for j in range(k) if j not in active]


# ---- MIG -------------------------------------------------------------------------------------
def mig(codes, factors, num_bins: int = 20) -> dict:
    """Mutual information gap (Chen et al. 2018) as in disentanglement_lib (reference: 10,000 points).

    Each code dimension is cut into ``num_bins`` equal-width bins over its sample range; the plug-in
    mutual information I(code_i; factor_j) (nats) gives, per factor, (largest - second largest) / H(factor);
    MIG is the mean over factors. With a single code dimension the second largest is 0.

    Returns ``{"mig": float, "settings", "versions", "details": {"per_factor", "mutual_info" (D x K),
    "factor_entropy", "constant_factors"}}``.
    """
    c, f = _fixed(codes, factors)
    active = varying_factors(f)
    if not active:
        raise ValueError("every factor is constant in the sample: MIG is undefined")
    fa = f[:, active]
    mi = discrete_mutual_info(histogram_bins(c, num_bins), fa, num_bins)  # (D, K')
    entropy = discrete_entropy(fa)
    top = torch.topk(mi, min(2, mi.shape[0]), dim=0).values
    second = top[1] if len(top) > 1 else torch.zeros_like(top[0])
    per_factor = (top[0] - second) / entropy
    return {
        "mig": float(per_factor.mean()),
        "settings": {
            "metric": "mig",
            "estimator": MIG_ESTIMATOR,
            "num_bins": num_bins,
            "num_points": len(c),
            "num_codes": c.shape[1],
            "num_factors": len(active),
        },
        "versions": versions(),
        "details": {
            "per_factor": per_factor.tolist(),
            "mutual_info": mi.tolist(),
            "factor_entropy": entropy.tolist(),
            "constant_factors": _constant(f.shape[1], active),
        },
    }


# ---- SAP -------------------------------------------------------------------------------------
def sap(train_codes, train_factors, test_codes, test_factors, *, C: float = 0.01, seed: int = 0) -> dict:
    """Separated attribute predictability (Kumar et al. 2018), discrete factors, as in disentanglement_lib.

    For every (code i, factor j): a 1-D ``LinearSVC(C=0.01, class_weight="balanced")`` on code i fitted on
    the train sample predicts factor j; its test accuracy fills the score matrix. SAP = mean over factors
    of (best - second best code). Reference sizes: 10,000 train, 5,000 test.
    """
    tc, tf, ec, ef, active = _split(train_codes, train_factors, test_codes, test_factors)
    x_tr, x_te = tc.double().numpy(), ec.double().numpy()
    warn = WarningCounter()
    score = np.zeros((tc.shape[1], len(active)))
    for jj, j in enumerate(active):
        y_tr, y_te = tf[:, j].numpy(), ef[:, j].numpy()
        for i in range(tc.shape[1]):
            clf = LinearSVC(C=C, class_weight="balanced", random_state=seed)
            with warn.catch():
                clf.fit(x_tr[:, i : i + 1], y_tr)
            score[i, jj] = np.mean(clf.predict(x_te[:, i : i + 1]) == y_te)
    top = np.sort(score, axis=0)[::-1]
    gap = top[0] - (top[1] if len(top) > 1 else 0.0)
    return {
        "sap": float(np.mean(gap)),
        "settings": {
            "metric": "sap",
            "classifier": f"LinearSVC(C={C}, class_weight='balanced') per code and factor, sklearn defaults "
            "otherwise (dual='auto')",
            "factors": "discrete",
            "num_train": len(tc),
            "num_test": len(ec),
            "seed": seed,
        },
        "versions": versions(),
        "details": {
            "per_factor": gap.tolist(),
            "score_matrix": score.tolist(),
            "convergence_warnings": warn.count,
            "constant_factors": _constant(tf.shape[1], active),
        },
    }


# ---- DCI -------------------------------------------------------------------------------------
def _entropy_score(p: np.ndarray, base: int) -> np.ndarray:
    """1 - entropy(p + 1e-11, base) along the last axis (scipy.stats.entropy normalises p)."""
    q = p + 1e-11
    q = q / q.sum(-1, keepdims=True)
    return 1.0 - (-(q * np.log(q)).sum(-1) / math.log(base))


def _dci_scores(importance: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Disentanglement and completeness of an importance matrix (codes x factors), as disentanglement_lib."""
    d, k = importance.shape
    per_code = _entropy_score(importance, k) if k > 1 else np.ones(d)
    per_factor = _entropy_score(importance.T, d) if d > 1 else np.ones(k)
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    code_w = weights.sum(1) / weights.sum()
    factor_w = weights.sum(0) / weights.sum()
    return float(np.sum(per_code * code_w)), float(np.sum(per_factor * factor_w)), per_code, per_factor


def dci(
    train_codes,
    train_factors,
    test_codes,
    test_factors,
    *,
    n_estimators: int = 100,
    max_depth: int = 3,
    learning_rate: float = 0.1,
    backend: str = "torch",
    workers: int | None = None,
    seed: int = 0,
) -> dict:
    """Disentanglement, completeness, informativeness (Eastwood & Williams 2018) as in disentanglement_lib.

    Per factor, gradient-boosted trees (100 trees per class, depth 3, learning rate 0.1) predict the factor
    from all codes; |feature importances| fill the importance matrix R (codes x factors).
    Disentanglement = sum_i w_i (1 - H_K(R_i.)), completeness = sum_j w_j (1 - H_D(R_.j)) with
    importance weights; informativeness = mean test accuracy over factors (train accuracy reported too).

    Args:
        backend: ``"torch"`` (default): :class:`zoo.metrics.gbt.GradientBoostedTrees`, the same boosting
            and trees as scikit-learn's ``GradientBoostingClassifier()``, vectorised (3-5x faster per
            core); ``"sklearn"``: ``GradientBoostingClassifier(random_state=seed)`` itself.
        workers: factors fitted concurrently (threads; torch ops then run single-threaded).
            Default: torch's current thread count.
    """
    if backend not in ("torch", "sklearn"):
        raise ConfigError("metrics.dci.backend", backend, "'torch' or 'sklearn'")
    tc, tf, ec, ef, active = _split(train_codes, train_factors, test_codes, test_factors)
    x_tr, x_te = tc.double().numpy(), ec.double().numpy()
    workers = workers or torch.get_num_threads()
    workers = max(1, min(workers, len(active), os.cpu_count() or 1))

    def fit(j: int) -> tuple[np.ndarray, float, float]:
        y_tr, y_te = tf[:, j].numpy(), ef[:, j].numpy()
        if backend == "torch":
            model = GradientBoostedTrees(n_estimators, max_depth, learning_rate).fit(x_tr, y_tr)
            pred_tr = model.predict_train()
        else:
            from sklearn.ensemble import GradientBoostingClassifier

            model = GradientBoostingClassifier(
                n_estimators=n_estimators, max_depth=max_depth, learning_rate=learning_rate, random_state=seed
            ).fit(x_tr, y_tr)
            pred_tr = model.predict(x_tr)
        return (
            np.abs(model.feature_importances_),
            float(np.mean(pred_tr == y_tr)),
            float(np.mean(model.predict(x_te) == y_te)),
        )

    # Factors in parallel threads with single-threaded torch ops: robust when the cores are shared
    # (OpenMP's fine-grained sync degrades badly under load) and ~linear on idle cores.
    with torch_threads(1):
        if workers > 1:
            # largest factors first, so the last one to finish is a small one
            by_size = sorted(active, key=lambda j: -len(torch.unique(tf[:, j])))
            with ThreadPoolExecutor(workers) as pool:
                done = dict(zip(by_size, pool.map(fit, by_size)))
            fitted = [done[j] for j in active]
        else:
            fitted = [fit(j) for j in active]
    importance = np.stack([r[0] for r in fitted], axis=1)  # (D, K')
    acc_train = np.array([r[1] for r in fitted])
    acc_test = np.array([r[2] for r in fitted])
    dis, comp, per_code, per_factor = _dci_scores(importance)
    learner = (
        "GradientBoostingClassifier" if backend == "sklearn" else "zoo GradientBoostedTrees (= sklearn GBC)"
    )
    return {
        "dci_disentanglement": dis,
        "dci_completeness": comp,
        "dci_informativeness": float(acc_test.mean()),
        "dci_informativeness_train": float(acc_train.mean()),
        "settings": {
            "metric": "dci",
            "importance": f"{learner}(n_estimators={n_estimators}, max_depth={max_depth}, "
            f"learning_rate={learning_rate}), log-loss, impurity-based feature importances",
            "backend": backend,
            "informativeness": "test accuracy",
            "num_train": len(tc),
            "num_test": len(ec),
            "seed": seed,
        },
        "versions": versions(),
        "details": {
            "importance_matrix": importance.tolist(),
            "disentanglement_per_code": per_code.tolist(),
            "completeness_per_factor": per_factor.tolist(),
            "accuracy_train_per_factor": acc_train.tolist(),
            "accuracy_test_per_factor": acc_test.tolist(),
            "constant_factors": _constant(tf.shape[1], active),
        },
    }


# ---- modularity and explicitness ---------------------------------------------------------------
def _modularity(mi: Tensor) -> tuple[float, Tensor]:
    """Ridgeway & Mozer's modularity from mutual information (codes x factors), as disentanglement_lib."""
    sq = mi.square()
    top = sq.max(1).values
    k = mi.shape[1]
    delta = (sq.sum(1) - top) / (top * (k - 1)) if k > 1 else torch.zeros_like(top)
    per_code = torch.where(top == 0, 0.0, 1.0 - delta)
    return float(per_code.mean()), per_code


def _macro_auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Macro one-vs-rest ROC-AUC over the classifier's classes that occur (and not always) in ``y``."""
    aucs = []
    for c, cls in enumerate(classes):
        pos = y == cls
        if 0 < pos.sum() < len(y):
            aucs.append(roc_auc_score(pos, proba[:, c]))
    return float(np.mean(aucs)) if aucs else float("nan")


def modularity_explicitness(
    train_codes, train_factors, test_codes, test_factors, *, num_bins: int = 20, seed: int = 0
) -> dict:
    """Modularity and explicitness (Ridgeway & Mozer 2018) as in disentanglement_lib.

    Modularity: per code, 1 - (sum of squared MI over factors - the largest) / (largest * (K - 1)), with
    the 20-bin mutual information on the train sample; mean over codes (0 for a code with no MI).
    Explicitness: per factor a ``LogisticRegression()`` on the codes standardised with the train mean/std
    predicts the factor; macro one-vs-rest ROC-AUC on the test sample, mean over factors.
    """
    tc, tf, ec, ef, active = _split(train_codes, train_factors, test_codes, test_factors)
    mi = discrete_mutual_info(histogram_bins(tc, num_bins), tf[:, active], num_bins)
    modularity, per_code = _modularity(mi)
    x_tr, x_te = tc.double().numpy(), ec.double().numpy()
    mean, std = x_tr.mean(0), x_tr.std(0)
    std = np.where(std > 0, std, 1.0)  # a constant code would divide by zero
    x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    warn = WarningCounter()
    auc_tr, auc_te = [], []
    for j in active:
        clf = LogisticRegression(random_state=seed)
        with warn.catch():
            clf.fit(x_tr, tf[:, j].numpy())
        auc_tr.append(_macro_auc(tf[:, j].numpy(), clf.predict_proba(x_tr), clf.classes_))
        auc_te.append(_macro_auc(ef[:, j].numpy(), clf.predict_proba(x_te), clf.classes_))
    return {
        "modularity": modularity,
        "explicitness": float(np.nanmean(auc_te)),
        "explicitness_train": float(np.nanmean(auc_tr)),
        "settings": {
            "metric": "modularity_explicitness",
            "num_bins": num_bins,
            "classifier": "LogisticRegression() on standardised codes, sklearn defaults (lbfgs, multinomial, "
            "C=1, max_iter=100); macro one-vs-rest ROC-AUC",
            "num_train": len(tc),
            "num_test": len(ec),
            "seed": seed,
        },
        "versions": versions(),
        "details": {
            "modularity_per_code": per_code.tolist(),
            "explicitness_per_factor": auc_te,
            "explicitness_train_per_factor": auc_tr,
            "mutual_info": mi.tolist(),
            "convergence_warnings": warn.count,
            "constant_factors": _constant(tf.shape[1], active),
        },
    }


# ---- sampling metrics --------------------------------------------------------------------------
def _mask_points(mask: Tensor | None) -> int | None:
    return None if mask is None else int(mask.sum())


def beta_vae_score(
    encode: Callable[[Tensor], Tensor],
    datamodule,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    seed: int = 0,
    mask: Tensor | None = None,
    encode_batch_size: int = ENCODE_BATCH,
    device: torch.device | str | None = None,
) -> dict:
    """BetaVAE score (Higgins et al. 2017) as in disentanglement_lib.

    Per point: draw a ground-truth factor k, two batches of ``batch_size`` factor vectors that share
    factor k row by row, encode both; the feature is mean_b |z1 - z2| (D,), the label k. A
    ``LogisticRegression()`` fitted on ``num_train`` points is scored on ``num_eval`` fresh points.
    Returns ``beta_vae_score`` (eval accuracy) and ``beta_vae_train_accuracy``.
    """
    for key, v in (("batch_size", batch_size), ("num_train", num_train), ("num_eval", num_eval)):
        if v < 1:
            raise ConfigError(f"metrics.beta_vae.{key}", v, "an integer >= 1")
    sampler = FactorSampler(datamodule, mask)
    gen = torch.Generator().manual_seed(seed)

    def points(n: int) -> tuple[np.ndarray, np.ndarray]:
        fixed = sampler.fixed_index(n, gen)
        first = sampler.sample(n * batch_size, gen)
        second = sampler.sharing(first, fixed.repeat_interleave(batch_size), 1, gen).squeeze(1)
        first, second = first.view(n, batch_size, -1), second.view(n, batch_size, -1)
        feats = []
        step = max(1, encode_batch_size // (2 * batch_size))  # points per encode round
        for i in range(0, n, step):
            a, b = first[i : i + step], second[i : i + step]
            both = torch.cat([a, b]).reshape(-1, a.shape[-1])
            z = encode_factors(encode, datamodule, both, encode_batch_size, device).view(2 * len(a), batch_size, -1)
            feats.append((z[: len(a)] - z[len(a) :]).abs().mean(1))
        return torch.cat(feats).double().numpy(), fixed.numpy()

    x_tr, y_tr = points(num_train)
    x_ev, y_ev = points(num_eval)
    warn = WarningCounter()
    clf = LogisticRegression(random_state=seed)
    with warn.catch():
        clf.fit(x_tr, y_tr)
    return {
        "beta_vae_score": float(np.mean(clf.predict(x_ev) == y_ev)),
        "beta_vae_train_accuracy": float(np.mean(clf.predict(x_tr) == y_tr)),
        "settings": {
            "metric": "beta_vae",
            "batch_size": batch_size,
            "num_train": num_train,
            "num_eval": num_eval,
            "feature": "mean over the batch of |z1 - z2|",
            "classifier": "LogisticRegression() sklearn defaults (lbfgs, multinomial, C=1, max_iter=100)",
            "seed": seed,
            "mask_points": _mask_points(sampler.mask),
            "ground_truth": list(datamodule.ground_truth),
        },
        "versions": versions(),
        "details": {
            "fixed_factors": [sampler.gt[j] for j in sampler.varying],
            "convergence_warnings": warn.count,
        },
    }


def factor_vae_score(
    encode: Callable[[Tensor], Tensor],
    datamodule,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance: int = 10_000,
    prune_std: float = 0.05,
    seed: int = 0,
    mask: Tensor | None = None,
    encode_batch_size: int = ENCODE_BATCH,
    device: torch.device | str | None = None,
) -> dict:
    """FactorVAE score (Kim & Mnih 2018) as in disentanglement_lib (study setting: prune std < 0.05).

    Global variances (ddof 1) of the codes of ``num_variance`` points; dimensions with std < ``prune_std``
    are pruned. Per point: fix a ground-truth factor k over a batch of ``batch_size`` vectors, vote
    (k, argmin over active dims of batch variance (ddof 1) / global variance). The majority-vote classifier
    maps each dimension to its most voted factor; accuracy = votes it gets right / all votes.
    Returns ``factor_vae_score`` (eval accuracy) and ``factor_vae_train_accuracy`` (0 if no dim is active).
    """
    for key, v in (("batch_size", batch_size), ("num_train", num_train), ("num_eval", num_eval)):
        if v < 1:
            raise ConfigError(f"metrics.factor_vae.{key}", v, "an integer >= 1")
    if batch_size < 2 or num_variance < 2:
        raise ConfigError("metrics.factor_vae.batch_size", batch_size, "batch_size and num_variance >= 2")
    sampler = FactorSampler(datamodule, mask)
    gen = torch.Generator().manual_seed(seed)
    z = encode_factors(encode, datamodule, sampler.sample(num_variance, gen), encode_batch_size, device)
    global_var = z.double().var(0, unbiased=True)
    active = global_var.sqrt() >= prune_std
    settings = {
        "metric": "factor_vae",
        "batch_size": batch_size,
        "num_train": num_train,
        "num_eval": num_eval,
        "num_variance": num_variance,
        "prune_std": prune_std,
        "variance": "ddof 1, batch variance / global variance",
        "classifier": "majority vote per code dimension",
        "seed": seed,
        "mask_points": _mask_points(sampler.mask),
        "ground_truth": list(datamodule.ground_truth),
    }
    num_gt = len(sampler.gt)
    d = z.shape[1]

    def votes(n: int) -> Tensor:
        fixed = sampler.fixed_index(n, gen)
        anchors = sampler.sample(n, gen)
        rest = sampler.sharing(anchors, fixed, batch_size - 1, gen)
        batches = torch.cat([anchors.unsqueeze(1), rest], 1)  # (n, batch, K)
        out = torch.zeros(num_gt * d, dtype=torch.long)
        step = max(1, encode_batch_size // batch_size)
        for i in range(0, n, step):
            b = batches[i : i + step]
            codes = encode_factors(encode, datamodule, b.reshape(-1, b.shape[-1]), encode_batch_size, device)
            local = codes.double().view(len(b), batch_size, d).var(1, unbiased=True) / global_var
            local = local.masked_fill(~active, math.inf)
            out += torch.bincount(fixed[i : i + step] * d + local.argmin(1), minlength=num_gt * d)
        return out.view(num_gt, d)

    if not bool(active.any()):
        return {
            "factor_vae_score": 0.0,
            "factor_vae_train_accuracy": 0.0,
            "settings": settings,
            "versions": versions(),
            "details": {"num_active_dims": 0, "active_dims": [], "global_variance": global_var.tolist()},
        }
    train_votes = votes(num_train)
    classifier = train_votes.argmax(0)  # (D,) the factor each dimension votes for most
    eval_votes = votes(num_eval)
    dims = torch.arange(d)

    def accuracy(v: Tensor) -> float:
        return float(v[classifier, dims].sum()) / float(v.sum())

    return {
        "factor_vae_score": accuracy(eval_votes),
        "factor_vae_train_accuracy": accuracy(train_votes),
        "settings": settings,
        "versions": versions(),
        "details": {
            "num_active_dims": int(active.sum()),
            "active_dims": active.nonzero().squeeze(1).tolist(),
            "global_variance": global_var.tolist(),
            "votes_train": train_votes.tolist(),
            "dim_to_factor": [sampler.gt[j] for j in classifier.tolist()],
            "fixed_factors": [sampler.gt[j] for j in sampler.varying],
        },
    }
