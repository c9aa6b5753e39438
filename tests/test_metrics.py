"""Disentanglement metrics against the reference protocol's definitions and sanity figures.

The fake datamodule (``zoo.metrics.synthetic.SyntheticFactors``) is a full grid whose images are the
factor classes themselves, so an encoder can read the factors back (perfect codes), rotate them, or
ignore them (random codes). Sample sizes are below the reference where a metric is slow; the defaults
themselves are checked separately (signatures and recorded settings), and MIG / FactorVAE also run at
the reference sizes.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import sklearn.metrics
import torch
from sklearn.ensemble import GradientBoostingClassifier

from zoo.config import ConfigError
from zoo.metrics import (
    DCI,
    MIG,
    SAP,
    ModularityExplicitness,
    beta_vae_score,
    dci,
    evaluate_all,
    factor_vae_score,
    mig,
    modularity_explicitness,
    sample_codes,
    sap,
    scores_of,
)
from zoo.metrics.gbt import GradientBoostedTrees
from zoo.metrics.mutual_info import discrete_entropy, discrete_mutual_info, histogram_bins
from zoo.metrics.synthetic import (
    DSPRITES_SIZES,
    SANITY_SIZES,
    FactorEncoder,
    RandomEncoder,
    SyntheticFactors,
    classes_of,
    random_rotation,
)

SMALL = {
    "beta_vae": {"num_train": 600, "num_eval": 300},
    "factor_vae": {"num_train": 600, "num_eval": 300, "num_variance": 2000},
    "mig": {"num_points": 2000},
    "sap": {"num_train": 2000, "num_test": 1000},
    "dci": {"num_train": 2000, "num_test": 1000, "n_estimators": 30},
    "modularity": {"num_train": 2000, "num_test": 1000},
}


@pytest.fixture(scope="module")
def dm() -> SyntheticFactors:
    return SyntheticFactors(SANITY_SIZES)


def draw(encode, datamodule, n_train=2000, n_test=1000, seed=0, mask=None):
    gen = torch.Generator().manual_seed(seed)
    train = sample_codes(encode, datamodule, n_train, gen, mask)
    test = sample_codes(encode, datamodule, n_test, gen, mask)
    return (*train, *test)


@pytest.fixture(scope="module")
def perfect(dm):
    return draw(FactorEncoder(dm.ground_truth), dm)


@pytest.fixture(scope="module")
def rotated(dm):
    return draw(FactorEncoder(dm.ground_truth, transform=random_rotation(5, seed=0)), dm)


@pytest.fixture(scope="module")
def random_codes(dm):
    return draw(RandomEncoder(10), dm)


# ---- building blocks ---------------------------------------------------------------------------
def test_histogram_bins_and_mutual_info_match_numpy_and_sklearn():
    rs = np.random.RandomState(0)
    y = np.stack([rs.randint(s, size=3000) for s in (4, 7)], 1)
    x = np.concatenate([y + 0.3 * rs.randn(3000, 2), rs.randn(3000, 2), np.full((3000, 1), 2.5)], 1)
    x32 = x.astype(np.float32)
    for data in (x, x32):
        ref = np.stack([np.digitize(c, np.histogram(c, 20)[1][:-1]) for c in data.T], 1) - 1
        bins = histogram_bins(torch.from_numpy(data), 20).numpy()
        np.testing.assert_array_equal(bins, ref)
    mi = discrete_mutual_info(torch.from_numpy(ref), torch.from_numpy(y), 20).numpy()
    ref_mi = [[sklearn.metrics.mutual_info_score(y[:, j], ref[:, i]) for j in range(2)] for i in range(5)]
    np.testing.assert_allclose(mi, ref_mi, atol=1e-12)
    h = discrete_entropy(torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(h, [sklearn.metrics.mutual_info_score(c, c) for c in y.T], atol=1e-12)
    assert mi[4].max() == 0  # a constant code carries no information


@pytest.mark.parametrize("sizes,noise,rotate", [((2, 3, 5), 0.05, False), ((4,), 0.5, True)])
def test_gradient_boosted_trees_match_sklearn(sizes, noise, rotate):
    rs = np.random.RandomState(1)
    y = np.stack([rs.randint(s, size=1500) for s in sizes], 1)
    x = np.concatenate([y + noise * rs.randn(*y.shape), rs.randn(1500, 3)], 1)
    if rotate:
        x = x @ np.linalg.qr(rs.randn(x.shape[1], x.shape[1]))[0]
    x_test = x[1000:]
    x, y = x[:1000], y[:1000]
    for j in range(y.shape[1]):
        ref = GradientBoostingClassifier(n_estimators=40, random_state=0).fit(x, y[:, j])
        ours = GradientBoostedTrees(n_estimators=40).fit(x, y[:, j])
        np.testing.assert_array_equal(ours.predict_train(), ref.predict(x))
        agree = np.mean(ours.predict(x_test) == ref.predict(x_test))
        if rotate:  # ties between equally good splits are broken differently: nearly the same model
            assert agree > 0.97
            np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, atol=5e-3)
        else:  # no ties: the very same trees
            assert agree == 1.0
            np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, atol=1e-9)
            np.testing.assert_allclose(ours.decision_function(x_test).numpy().squeeze(),
                                       ref.decision_function(x_test), atol=1e-9)


def test_dci_torch_backend_agrees_with_sklearn_backend(rotated):
    tr_c, tr_f, te_c, te_f = (t[:800] for t in rotated)
    a = dci(tr_c, tr_f, te_c, te_f, n_estimators=20)
    b = dci(tr_c, tr_f, te_c, te_f, n_estimators=20, backend="sklearn")
    for key in ("dci_disentanglement", "dci_completeness", "dci_informativeness"):
        assert a[key] == pytest.approx(b[key], abs=0.02)
    assert b["settings"]["backend"] == "sklearn"


# ---- reference defaults ------------------------------------------------------------------------
def test_defaults_are_the_reference_settings():
    def defaults(fn):
        return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}

    assert defaults(mig)["num_bins"] == 20
    assert defaults(sap) == {"C": 0.01, "seed": 0}
    d = defaults(dci)
    assert (d["n_estimators"], d["max_depth"], d["learning_rate"], d["seed"]) == (100, 3, 0.1, 0)
    assert defaults(modularity_explicitness) == {"num_bins": 20, "seed": 0}
    b = defaults(beta_vae_score)
    assert (b["batch_size"], b["num_train"], b["num_eval"], b["seed"]) == (64, 10_000, 5_000, 0)
    f = defaults(factor_vae_score)
    assert (f["batch_size"], f["num_train"], f["num_eval"], f["num_variance"], f["prune_std"]) == (
        64, 10_000, 5_000, 10_000, 0.05)
    assert defaults(evaluate_all)["seed"] == 0
    assert defaults(evaluate_all)["metrics"] == ("beta_vae", "factor_vae", "mig", "sap", "dci", "modularity")


def test_reference_sizes_perfect_codes(dm):
    """MIG and FactorVAE at the reference sizes (10,000 points; 10,000 / 5,000 / 10,000 variance)."""
    enc = FactorEncoder(dm.ground_truth)
    codes, factors = sample_codes(enc, dm, 10_000, torch.Generator().manual_seed(0))
    r = mig(codes, factors)
    assert r["mig"] > 0.97
    assert r["settings"]["num_points"] == 10_000 and r["settings"]["num_bins"] == 20
    assert "not Chen et al." in r["settings"]["estimator"]
    f = factor_vae_score(enc, dm)
    assert f["factor_vae_score"] == 1.0 and f["factor_vae_train_accuracy"] == 1.0
    s = f["settings"]
    assert (s["batch_size"], s["num_train"], s["num_eval"], s["num_variance"], s["prune_std"]) == (
        64, 10_000, 5_000, 10_000, 0.05)
    assert set(f["versions"]) >= {"torch", "sklearn", "numpy", "python"}


# ---- sanity figures --------------------------------------------------------------------------
def test_perfect_codes(dm, perfect):
    tr_c, tr_f, te_c, te_f = perfect
    assert mig(tr_c, tr_f)["mig"] > 0.97
    d = dci(*perfect, n_estimators=30)
    assert d["dci_disentanglement"] > 0.99 and d["dci_completeness"] > 0.99
    assert d["dci_informativeness"] == 1.0
    m = modularity_explicitness(*perfect)
    assert m["modularity"] > 0.99 and m["explicitness"] > 0.99
    s = sap(*perfect)
    assert s["sap"] > 0.2  # 1-D linear SVMs only separate the extreme classes well
    enc = FactorEncoder(dm.ground_truth)
    assert beta_vae_score(enc, dm, num_train=500, num_eval=300)["beta_vae_score"] == 1.0
    assert factor_vae_score(enc, dm, num_train=500, num_eval=300)["factor_vae_score"] == 1.0


def test_dsprites_grid_perfect_codes_mig():
    """20 bins cannot resolve 40 orientations or 32 positions: a perfect code scores about 0.89."""
    g = torch.Generator().manual_seed(0)
    factors = torch.stack([torch.randint(s, (10_000,), generator=g) for s in DSPRITES_SIZES], 1)
    codes = factors.float() + 0.05 * torch.randn(factors.shape, generator=g)
    r = mig(codes, factors)
    assert r["mig"] == pytest.approx(0.89, abs=0.01)
    assert r["details"]["per_factor"][0] > 0.99 and r["details"]["per_factor"][2] < 0.85


def test_permuted_and_rescaled_codes_keep_scores(perfect, rotated):
    perm = torch.tensor([3, 0, 4, 1, 2])
    scale = torch.tensor([0.5, 2.0, 3.0, 0.7, 1.5])
    for tr_c, tr_f, te_c, te_f in (perfect, rotated):
        p_tr, p_te = tr_c[:, perm], te_c[:, perm]
        s_tr, s_te = p_tr * scale, p_te * scale
        assert mig(s_tr, tr_f)["mig"] == pytest.approx(mig(tr_c, tr_f)["mig"], abs=1e-9)
        base = sap(tr_c, tr_f, te_c, te_f)["sap"]
        assert sap(p_tr, tr_f, p_te, te_f)["sap"] == pytest.approx(base, abs=1e-12)
        assert sap(s_tr, tr_f, s_te, te_f)["sap"] == pytest.approx(base, abs=0.02)  # C=0.01 is scale-aware
        a = dci(tr_c[:1000], tr_f[:1000], te_c, te_f, n_estimators=20)
        b = dci(s_tr[:1000], tr_f[:1000], s_te, te_f, n_estimators=20)
        for key in ("dci_disentanglement", "dci_completeness", "dci_informativeness"):
            assert b[key] == pytest.approx(a[key], abs=3e-3)
        imp_a = np.array(a["details"]["importance_matrix"])[perm.numpy()]
        np.testing.assert_allclose(np.array(b["details"]["importance_matrix"]), imp_a, atol=0.02)


def test_rotated_codes(dm, rotated):
    tr_c, tr_f, te_c, te_f = rotated
    r_mig = mig(tr_c, tr_f)["mig"]
    d = dci(*rotated, n_estimators=30)
    m = modularity_explicitness(*rotated)
    assert 0.03 < r_mig < 0.3  # reference ≈ 0.13 (depends on the rotation)
    assert 0.1 < d["dci_disentanglement"] < 0.45  # reference ≈ 0.22
    assert m["explicitness"] > 0.95  # a rotation keeps every factor linearly decodable
    enc = FactorEncoder(dm.ground_truth, transform=random_rotation(5, seed=0))
    b = beta_vae_score(enc, dm, num_train=1500, num_eval=500)["beta_vae_score"]
    f = factor_vae_score(enc, dm, num_train=1500, num_eval=500)["factor_vae_score"]
    assert 0.75 < b < 0.99  # reference ≈ 0.90
    assert 0.5 < f < 0.95  # reference ≈ 0.67


def test_random_codes_score_zero_or_chance(dm, random_codes):
    tr_c, tr_f, te_c, te_f = random_codes
    assert mig(tr_c, tr_f)["mig"] < 0.02
    assert sap(*random_codes)["sap"] < 0.03
    d = dci(*random_codes, n_estimators=30)
    assert d["dci_disentanglement"] < 0.05 and d["dci_completeness"] < 0.05
    m = modularity_explicitness(*random_codes)
    assert m["explicitness"] == pytest.approx(0.5, abs=0.05)
    k = len(dm.ground_truth)
    b = beta_vae_score(RandomEncoder(10), dm, num_train=1000, num_eval=500)["beta_vae_score"]
    f = factor_vae_score(RandomEncoder(10), dm, num_train=1000, num_eval=1000)["factor_vae_score"]
    assert b == pytest.approx(1 / k, abs=0.06)
    assert f == pytest.approx(1 / k, abs=0.07)


# ---- protocol: ground truth, determinism, masks ------------------------------------------------
class Recorder:
    """Wraps an encoder and records the classes of every image it is given."""

    def __init__(self, encode):
        self.encode, self.seen = encode, []

    def __call__(self, images):
        self.seen.append(classes_of(images).long())
        return self.encode(images)

    def classes(self):
        return torch.cat(self.seen)


def test_non_ground_truth_factor_is_drawn_but_never_fixed_or_scored():
    dm = SyntheticFactors((3, 4, 6, 8), ground_truth=(1, 2, 3))  # factor 0 is a nuisance
    enc = Recorder(FactorEncoder(dm.ground_truth))
    codes, factors = sample_codes(enc, dm, 2000, torch.Generator().manual_seed(0))
    assert factors.shape == (2000, 3) and codes.shape == (2000, 3)
    assert set(enc.classes()[:, 0].tolist()) == {0, 1, 2}  # drawn uniformly like the others
    assert mig(codes, factors)["mig"] > 0.97
    b = beta_vae_score(enc, dm, num_train=300, num_eval=200)
    f = factor_vae_score(enc, dm, num_train=300, num_eval=200)
    assert b["beta_vae_score"] == 1.0 and f["factor_vae_score"] == 1.0
    assert b["details"]["fixed_factors"] == [1, 2, 3] and f["details"]["fixed_factors"] == [1, 2, 3]
    assert set(f["details"]["dim_to_factor"]) == {1, 2, 3}


def test_deterministic_under_a_seed(dm):
    def run(seed):
        return scores_of(evaluate_all(FactorEncoder(dm.ground_truth, seed=1), dm, seed=seed, options=SMALL))

    a, b = run(0), run(0)
    assert a == b
    gen = torch.Generator().manual_seed(0)
    c0, _ = sample_codes(FactorEncoder(dm.ground_truth, seed=1), dm, 500, gen)
    c1, _ = sample_codes(FactorEncoder(dm.ground_truth, seed=1), dm, 500, torch.Generator().manual_seed(1))
    assert not torch.equal(c0, c1)
    c = scores_of(evaluate_all(FactorEncoder(dm.ground_truth, seed=1), dm, metrics=("mig",), seed=1,
                               options=SMALL))
    assert c["mig"] != a["mig"]  # another seed draws another sample


def test_mask_restricts_every_draw(dm):
    classes = dm.index_to_classes(torch.arange(dm.num_points))
    mask = (classes[:, 0] < 2) & (classes[:, 4] < 6)  # factors 0 and 4 below half their range
    enc = Recorder(FactorEncoder(dm.ground_truth))
    r = evaluate_all(enc, dm, seed=0, mask=mask, options=SMALL)
    seen = enc.classes()
    assert len(seen) > 100_000  # every metric drew through the mask ...
    assert bool((seen[:, 0] < 2).all() and (seen[:, 4] < 6).all())  # ... and only there
    assert r["settings"]["mask_points"] == int(mask.sum())
    assert r["settings"]["factor_vae"]["mask_points"] == int(mask.sum())
    assert r["beta_vae_score"] == 1.0 and r["factor_vae_score"] == 1.0 and r["mig"] > 0.95
    # a factor fixed by the mask cannot be scored: it is left out and named
    only = classes[:, 1] == 3
    enc = FactorEncoder(dm.ground_truth)
    codes, factors = sample_codes(enc, dm, 1000, torch.Generator().manual_seed(0), mask=only)
    assert bool((factors[:, 1] == 3).all())
    assert mig(codes, factors)["details"]["constant_factors"] == [1]
    b = beta_vae_score(enc, dm, num_train=200, num_eval=100, mask=only)
    assert b["details"]["fixed_factors"] == [0, 2, 3, 4] and b["beta_vae_score"] == 1.0


def test_bad_mask_is_a_config_error(dm):
    with pytest.raises(ConfigError, match="metrics.mask"):
        evaluate_all(RandomEncoder(), dm, metrics=("mig",), mask=torch.ones(10, dtype=torch.bool))
    with pytest.raises(ConfigError, match="at least one grid point"):
        sample_codes(RandomEncoder(), dm, 10, mask=torch.zeros(dm.num_points, dtype=torch.bool))


# ---- suite and torchmetrics wrappers -----------------------------------------------------------
def test_evaluate_all_layout(dm):
    r = evaluate_all(FactorEncoder(dm.ground_truth), dm, options=SMALL)
    expected = {"mig", "sap", "dci_disentanglement", "dci_completeness", "dci_informativeness", "modularity",
                "explicitness", "beta_vae_score", "factor_vae_score"}
    scores = scores_of(r)
    assert expected <= set(scores)
    assert all(isinstance(v, float) and math.isfinite(v) for v in scores.values())
    assert set(r) - set(scores) == {"settings", "versions", "timings", "details"}
    assert r["settings"]["seed"] == 0 and r["settings"]["dci"]["num_train"] == 2000
    assert r["settings"]["beta_vae"]["batch_size"] == 64
    assert set(r["timings"]) >= {"beta_vae", "factor_vae", "mig", "sap", "dci", "modularity", "total"}
    assert r["versions"]["sklearn"] and r["versions"]["torch"]
    # SAP, DCI, modularity and MIG share one seeded sample, drawn once
    assert [k for k in r["timings"] if k.startswith("sample_")] == ["sample_2000x1000"]


def test_unknown_metric_or_option_is_a_one_line_config_error(dm):
    with pytest.raises(ConfigError) as err:
        evaluate_all(RandomEncoder(), dm, metrics=("mig", "irs"))
    msg = str(err.value)
    assert "\n" not in msg and "'irs'" in msg
    assert all(name in msg for name in ("beta_vae", "factor_vae", "mig", "sap", "dci", "modularity"))
    with pytest.raises(ConfigError, match="num_bins"):
        evaluate_all(RandomEncoder(), dm, metrics=("mig",), options={"mig": {"bins": 10}})


def test_torchmetrics_modules_equal_the_functional(rotated):
    tr_c, tr_f, te_c, te_f = (t[:900] for t in rotated)
    m = MIG()
    for i in range(0, 900, 128):
        m.update(tr_c[i : i + 128], tr_f[i : i + 128])
    assert m.compute()["mig"].item() == mig(tr_c, tr_f)["mig"]
    assert m.result["settings"]["num_points"] == 900

    for module, fn, kwargs in (
        (SAP(), sap, {}),
        (ModularityExplicitness(), modularity_explicitness, {}),
        (DCI(n_estimators=10), dci, {"n_estimators": 10}),
    ):
        for i in range(0, 900, 300):
            module.update(tr_c[i : i + 300], tr_f[i : i + 300])
            module.update(te_c[i : i + 300], te_f[i : i + 300], test=True)
        ref = scores_of(fn(tr_c, tr_f, te_c, te_f, **kwargs))
        got = {k: v.item() for k, v in module.compute().items()}
        assert got == pytest.approx(ref, abs=1e-12)
    # without test updates the accumulated sample is split 2:1 in order, like 10,000 : 5,000
    s = SAP()
    s.update(torch.cat([tr_c[:600], te_c[:300]]), torch.cat([tr_f[:600], te_f[:300]]))
    assert s.compute()["sap"].item() == sap(tr_c[:600], tr_f[:600], te_c[:300], te_f[:300])["sap"]
    with pytest.raises(ValueError, match="no samples"), pytest.warns(UserWarning, match="before the ``update``"):
        MIG().compute()
