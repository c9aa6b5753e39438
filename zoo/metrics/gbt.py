"""Gradient-boosted trees for DCI: scikit-learn's ``GradientBoostingClassifier()`` in vectorised torch.

DCI's reference implementation (disentanglement_lib) fits ``GradientBoostingClassifier()`` with its
defaults (100 stages, depth-3 regression trees, learning rate 0.1, log-loss, one tree per class and
stage for more than two classes) once per factor and reads ``feature_importances_``. On 2 CPU cores
scikit-learn needs ~80 s for the 5-factor sanity grid and ~4 min for dSprites' 113 classes, because it
grows thousands of tiny trees one after another. This module grows the *same* trees, all classes of a
stage at once:

* exact greedy splits of float32 features (scikit-learn casts ``X`` to float32), candidate positions
  between consecutive values of a node that differ by more than ``FEATURE_THRESHOLD = 1e-7`` (float32
  arithmetic), threshold at the mid-point, split chosen by the squared-error proxy
  ``S_l^2/n_l + S_r^2/n_r`` (the same argmax as scikit-learn's ``friedman_mse`` of 2019 and its
  ``squared_error`` of today: within a node the two differ by the constant factor ``n``);
* the same stopping rules (``max_depth``, ``min_samples_split=2``, ``min_samples_leaf=1``, a node
  whose impurity is <= float64 eps is a leaf, a node without a valid split is a leaf);
* the same initial raw predictions (class log-priors, symmetric multinomial logit / binary log-odds),
  the same Newton leaf values ``mean(-g) * (K-1)/K / mean(p(1-p))`` (no ``(K-1)/K`` for two classes),
  the same prediction rule (``x <= threshold`` goes left; argmax, or ``raw >= 0`` for two classes);
* the same ``feature_importances_``: per tree the weighted impurity decrease of each split divided by
  the root's sample count, averaged over the trees that split at least once, normalised to sum 1.

What differs: ties between equally good splits (scikit-learn visits features in a random order and
keeps the first best; here the lowest sorted position, then the lowest feature, wins) and float64
summation order. Both only matter for exactly tied splits; on continuous codes the importances agree
with scikit-learn to ~1e-9 (see ``tests/test_metrics.py``).

Cost: each tree level is a handful of passes over a (trees, features, samples) tensor: nodes stay
contiguous in every feature's sorted order through a stable partition, so no re-sorting happens.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

#: scikit-learn's ``FEATURE_THRESHOLD`` (a float32 constant in ``sklearn/tree/_partitioner.pxd``).
FEATURE_THRESHOLD = 1e-7
#: scikit-learn's ``EPSILON`` in ``_tree.pyx``: a node with impurity <= this is a leaf.
IMPURITY_EPS = float(np.finfo(np.float64).eps)


def _as_tensor(x, dtype: torch.dtype) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach().to("cpu", dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype)


class GradientBoostedTrees:
    """Multiclass gradient boosting with exact greedy depth-limited trees (log-loss).

    Args:
        n_estimators: boosting stages (scikit-learn default 100).
        max_depth: depth of each regression tree (default 3).
        learning_rate: shrinkage (default 0.1).
        max_elements: cap on trees x features x samples per vectorised block (~56 bytes each in work
            buffers, so the default 2M costs ~120 MB per concurrent fit).

    After :meth:`fit`: ``classes_``, ``feature_importances_`` (numpy float64, sums to 1 or all 0),
    ``train_raw_`` (raw predictions on the training rows).
    """

    def __init__(
        self,
        n_estimators: int = 100,
        max_depth: int = 3,
        learning_rate: float = 0.1,
        max_elements: int = 1 << 21,
    ) -> None:
        if n_estimators < 1 or max_depth < 1 or learning_rate <= 0:
            raise ValueError("n_estimators and max_depth must be >= 1 and learning_rate > 0")
        self.n_estimators, self.max_depth, self.learning_rate = n_estimators, max_depth, learning_rate
        self.max_elements = max_elements

    # ---- fitting --------------------------------------------------------------------------
    def fit(self, X, y) -> GradientBoostedTrees:
        X32 = _as_tensor(X, torch.float32)
        y = _as_tensor(y, torch.long)
        if X32.dim() != 2 or y.dim() != 1 or len(X32) != len(y):
            raise ValueError(f"expected X (N, D) and y (N,), got {tuple(X32.shape)} and {tuple(y.shape)}")
        n, d = X32.shape
        classes, y_enc = torch.unique(y, return_inverse=True)
        n_classes = len(classes)
        if n_classes < 2:
            raise ValueError(f"y has {n_classes} class; at least 2 are required")
        self.classes_ = classes.numpy()
        self.n_features_in_ = d
        k_trees = 1 if n_classes == 2 else n_classes
        self._k_trees = k_trees

        prior = torch.bincount(y_enc, minlength=n_classes).double() / n
        eps = float(np.finfo(np.float64).eps)
        prior = prior.clamp(eps, 1 - eps)
        if k_trees == 1:
            init = torch.log(prior[1:] / (1 - prior[1:]))  # log-odds of the positive class
            target = (y_enc == 1).double()[:, None]  # (n, 1)
            factor = 1.0
        else:
            logp = torch.log(prior)
            init = logp - logp.mean()
            target = torch.nn.functional.one_hot(y_enc, n_classes).double()  # (n, K)
            factor = (n_classes - 1) / n_classes
        self._init = init
        raw = init.expand(n, k_trees).clone()

        order = torch.argsort(X32, dim=0, stable=True).T.contiguous()  # (d, n)
        values = X32.T.gather(1, order)  # (d, n) float32, sorted
        # Only where a sample's sorted successor lies within FEATURE_THRESHOLD can two consecutive
        # samples of a node be "equal" (no split between them); elsewhere every position is valid.
        near = values[:, 1:] <= values[:, :-1] + torch.tensor(FEATURE_THRESHOLD, dtype=torch.float32)
        ties = tuple(near.nonzero().T)  # (feature, sorted position) pairs
        n_inner, n_leaves = 2**self.max_depth - 1, 2**self.max_depth
        s = self.n_estimators
        self._feature = torch.zeros(s, k_trees, n_inner, dtype=torch.long)
        self._threshold = torch.full((s, k_trees, n_inner), math.inf, dtype=torch.float64)
        self._value = torch.zeros(s, k_trees, n_leaves, dtype=torch.float64)
        importance_sum = torch.zeros(d, dtype=torch.float64)
        relevant = 0
        chunk = min(k_trees, max(1, self.max_elements // max(1, d * n)))
        ws = {
            "f1": torch.empty(chunk, d, n, dtype=torch.float64),
            "f2": torch.empty(chunk, d, n, dtype=torch.float64),
            "i1": torch.empty(chunk, d, n, dtype=torch.long),
            "i2": torch.empty(chunk, d, n, dtype=torch.long),
            "p0": torch.empty(chunk, d, n, dtype=torch.long),
            "p1": torch.empty(chunk, d, n, dtype=torch.long),
            "i3": torch.empty(chunk, d, n, dtype=torch.long),
        }

        for stage in range(s):
            if k_trees == 1:
                neg_g = target - torch.sigmoid(raw)
            else:
                neg_g = target - torch.softmax(raw, dim=1)
            for k0 in range(0, k_trees, chunk):
                ks = slice(k0, min(k_trees, k0 + chunk))
                g = neg_g[:, ks].T.contiguous()  # (kc, n)
                feat, thr, leaf, imp, split_root = self._grow(g, order, ties, X32, ws)
                self._feature[stage, ks], self._threshold[stage, ks] = feat, thr
                importance_sum += imp[split_root].sum(0) / n
                relevant += int(split_root.sum())
                # Newton step per leaf, exactly as sklearn's _update_terminal_regions (means, safe divide).
                prob = target[:, ks].T - g
                count = torch.zeros(g.shape[0], n_leaves, dtype=torch.float64).scatter_add_(
                    1, leaf, torch.ones_like(g)
                )
                num = torch.zeros_like(count).scatter_add_(1, leaf, g)
                den = torch.zeros_like(count).scatter_add_(1, leaf, prob * (1 - prob))
                has = count > 0
                num_mean = torch.where(has, num / count.clamp_min(1), 0.0) * factor
                den_mean = torch.where(has, den / count.clamp_min(1), 0.0)
                value = torch.where(den_mean.abs() < 1e-150, 0.0, num_mean / den_mean.where(den_mean != 0, 1.0))
                self._value[stage, ks] = value
                raw[:, ks] += (self.learning_rate * value.gather(1, leaf)).T
        if relevant:
            avg = importance_sum / relevant
            self.feature_importances_ = (avg / avg.sum()).numpy()
        else:
            self.feature_importances_ = np.zeros(d, dtype=np.float64)
        self.train_raw_ = raw
        self.n_relevant_trees_ = relevant
        return self

    def _grow(self, g: Tensor, order: Tensor, ties: tuple[Tensor, Tensor], X32: Tensor, ws: dict):
        """Grow one depth-limited regression tree per row of ``g`` (kc, n) on the same features.

        Args:
            g: negative gradients, one row per tree.
            order: (d, n) samples of each feature in ascending order (stable).
            ties: (feature, global sorted position) of every sample whose sorted successor lies within
                FEATURE_THRESHOLD: only there can two consecutive samples of a node be "equal".
            X32: (n, d) float32 features.
            ws: preallocated (kc_max, d, n) work buffers (fresh large allocations cost page faults).

        Returns heap-ordered inner-node features (kc, 2^depth-1) and thresholds (inf: no split), the
        leaf of every training sample (kc, n), the unnormalised importances (kc, d) and whether each
        tree's root split.

        Layout: at every level the samples of each tree are kept in each feature's sorted order,
        grouped by node (nodes in order, each contiguous), so per-node values reach every position
        with one ``repeat_interleave`` and a stable partition moves the children into place.
        """
        kc, n = g.shape
        d = order.shape[0]
        depth = self.max_depth
        f64 = torch.float64
        feat_all = torch.zeros(kc, 2**depth - 1, dtype=torch.long)
        thr_all = torch.full((kc, 2**depth - 1), math.inf, dtype=f64)
        imp_tree = torch.zeros(kc, d, dtype=f64)
        thr32 = torch.tensor(FEATURE_THRESHOLD, dtype=torch.float32)
        rows = torch.arange(kc)[:, None]
        position = torch.arange(n)
        position_f = position.to(f64)
        xt = X32.T  # (d, n)
        g_flat, g2_flat = g.reshape(-1), (g * g).reshape(-1)
        tie_feat, tie_pos = ties
        tie_pos = tie_pos.unsqueeze(0).expand(kc, -1)  # (kc, T): where each tie sample sits now

        perm = None  # (kc, d, n) sample at each node-grouped sorted position; None: ``order`` for all
        node = torch.zeros(kc, n, dtype=torch.long)  # node of each sample (heap index within its level)
        count = torch.full((kc, 1), n, dtype=torch.long)
        alive = torch.ones(kc, 1, dtype=torch.bool)
        prev = None  # (weighted impurity, split mask, feature) of the previous level's nodes
        split_root = torch.zeros(kc, dtype=torch.bool)
        level = 0
        for level in range(depth + 1):
            n_nodes = 2**level
            flat_node = (node + rows * n_nodes).view(-1)
            s1 = torch.bincount(flat_node, weights=g_flat, minlength=kc * n_nodes).view(kc, n_nodes)
            s2 = torch.bincount(flat_node, weights=g2_flat, minlength=kc * n_nodes).view(kc, n_nodes)
            cnt = count.to(f64)
            c = cnt.clamp_min(1)
            impurity = torch.where(count > 0, s2 / c - (s1 / c) ** 2, 0.0)
            weighted = cnt * impurity
            if prev is not None:  # importance of the previous level's splits: parent - left - right
                p_weighted, p_split, p_feat = prev
                children = weighted.view(kc, -1, 2).sum(-1)
                imp_tree.scatter_add_(1, p_feat, torch.where(p_split, p_weighted - children, 0.0))
            if level == depth:
                break
            can_split = alive & (count >= 2) & (impurity > IMPURITY_EPS)
            if not bool(can_split.any()):
                break
            start = torch.cumsum(count, 1) - count
            counts_flat = count.view(-1)

            # flat index of the node at every sorted position (nodes are contiguous and in order)
            seg_flat = torch.repeat_interleave(torch.arange(kc * n_nodes), counts_flat, output_size=kc * n)

            def spread(v: Tensor) -> Tensor:
                """Per-node values (kc, n_nodes) -> every sorted position (kc, n)."""
                return v.reshape(-1).index_select(0, seg_flat).view(kc, n)

            def sorted_rows(t: Tensor, out: Tensor) -> Tensor:
                """(kc, n) per-sample values -> (kc, d, n) in each feature's node-grouped order."""
                flat = out[:kc].view(kc, d * n)
                if perm is None:
                    torch.index_select(t, 1, order.view(-1), out=flat)
                else:
                    torch.gather(t, 1, perm.view(kc, d * n), out=flat)
                return flat.view(kc, d, n)

            seg = (seg_flat.view(kc, n) - rows * n_nodes)  # node at each sorted position
            n_left = position_f - spread(start.to(f64)) + 1
            n_right = spread(cnt) - n_left
            # left sums: a running sum over all positions minus the sums of the earlier nodes
            s_left = sorted_rows(g, ws["f1"])
            torch.cumsum(s_left, 2, out=s_left)
            s_left.sub_(spread(torch.cumsum(s1, 1) - s1).unsqueeze(1))
            s_right = torch.sub(spread(s1).unsqueeze(1), s_left, out=ws["f2"][:kc])
            proxy = s_left.square_().div_(n_left.unsqueeze(1))
            proxy.add_(s_right.square_().div_(n_right.clamp_min(1).unsqueeze(1)))
            if tie_feat.numel():  # a position whose node successor is within FEATURE_THRESHOLD is no split
                nxt = (tie_pos + 1).clamp(max=n - 1)
                fk = tie_feat.unsqueeze(0).expand(kc, -1)
                a_s = order[fk, tie_pos] if perm is None else perm[rows, fk, tie_pos]
                b_s = order[fk, nxt] if perm is None else perm[rows, fk, nxt]
                tied = xt[fk, b_s] <= xt[fk, a_s] + thr32
                proxy[rows.expand_as(fk)[tied], fk[tied], tie_pos[tied]] = -math.inf
            best_val = proxy.amax(dim=1)  # (kc, n): the best feature at each sorted position
            best_val.masked_fill_((n_right < 1) | ~spread(can_split), -math.inf)
            node_best = torch.full((kc, n_nodes), -math.inf, dtype=f64).scatter_reduce(1, seg, best_val, "amax")
            hit = (best_val == spread(node_best)) & (best_val > -math.inf)
            best_pos = torch.full((kc, n_nodes), n, dtype=torch.long)
            best_pos = best_pos.scatter_reduce(1, seg, torch.where(hit, position, n), "amin")
            split = best_pos < n  # (kc, n_nodes): the first best position of each node ...
            pos = best_pos.clamp(max=n - 2)
            at_pos = proxy.gather(2, pos.unsqueeze(1).expand(kc, d, n_nodes))  # (kc, d, n_nodes)
            f = (at_pos == node_best.unsqueeze(1)).to(torch.uint8).argmax(1)  # ... and its lowest feature
            f = torch.where(split, f, 0)
            lo_s = order[f, pos] if perm is None else perm[rows, f, pos]
            hi_s = order[f, pos + 1] if perm is None else perm[rows, f, pos + 1]
            thr = torch.where(split, xt[f, lo_s].double() / 2.0 + xt[f, hi_s].double() / 2.0, math.inf)
            offset = n_nodes - 1
            feat_all[:, offset : offset + n_nodes] = f
            thr_all[:, offset : offset + n_nodes] = thr
            if level == 0:
                split_root = split[:, 0].clone()
            prev = (weighted, split, f)
            # route the samples: x <= threshold goes left (a node that does not split sends all left)
            go_left = xt.gather(0, f.gather(1, node)).double() <= thr.gather(1, node)
            new_node = 2 * node + (~go_left).long()
            flat_new = (new_node + rows * (2 * n_nodes)).view(-1)
            new_count = torch.bincount(flat_new, minlength=kc * 2 * n_nodes).view(kc, 2 * n_nodes)
            alive = split.repeat_interleave(2, dim=1)
            if level < depth - 1:  # stable partition: every node stays contiguous in every sorted order
                left_n = new_count[:, 0::2]  # (kc, n_nodes)
                left_before = torch.cumsum(left_n, 1) - left_n
                a = spread(start - left_before - 1).unsqueeze(1)  # left sample: a + running left count
                b = (spread(left_n + left_before) + position).unsqueeze(1)  # right sample: b - left count
                left_sorted = sorted_rows(go_left.long(), ws["i3"])  # 0/1 as int64: no conversions below
                cl = torch.cumsum(left_sorted, 2, out=ws["i1"][:kc])
                # new = (b - cl) + left * (a - b + 2 cl): arithmetic is cheaper than torch.where here
                new_pos = torch.mul(cl, 2, out=ws["i2"][:kc])
                new_pos.add_(a - b).mul_(left_sorted).sub_(cl).add_(b)
                src = order.unsqueeze(0).expand(kc, d, n) if perm is None else perm
                target = ws["p0"] if perm is None else ws["p1"]
                perm = target[:kc].scatter_(2, new_pos, src)
                if tie_feat.numel():
                    tie_pos = new_pos[rows, tie_feat.unsqueeze(0).expand(kc, -1), tie_pos]
            node, count = new_node, new_count
        leaf = node << (depth - level) if level < depth else node
        return feat_all, thr_all, leaf, imp_tree, split_root

    # ---- prediction -----------------------------------------------------------------------
    def decision_function(self, X) -> Tensor:
        """Raw predictions (N, trees per stage) as float64."""
        X32 = _as_tensor(X, torch.float32)
        m = len(X32)
        raw = self._init.expand(m, self._k_trees).clone()
        xt = X32.T.double()  # (d, m)
        for stage in range(self.n_estimators):
            feat, thr, value = self._feature[stage], self._threshold[stage], self._value[stage]
            node = torch.zeros(self._k_trees, m, dtype=torch.long)
            for level in range(self.max_depth):
                idx = node + (2**level - 1)
                f = feat.gather(1, idx)
                t = thr.gather(1, idx)
                node = 2 * node + (xt.gather(0, f) > t).long()
            raw += (self.learning_rate * value.gather(1, node)).T
        return raw

    def _classes_of(self, raw: Tensor) -> np.ndarray:
        if self._k_trees == 1:
            encoded = (raw[:, 0] >= 0).long()
        else:
            encoded = raw.argmax(dim=1)
        return self.classes_[encoded.numpy()]

    def predict(self, X) -> np.ndarray:
        return self._classes_of(self.decision_function(X))

    def predict_train(self) -> np.ndarray:
        """Predictions on the training rows (identical to ``predict(X_train)``, without re-routing)."""
        return self._classes_of(self.train_raw_)
