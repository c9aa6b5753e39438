"""β-VAE: the KL against its closed form, the capacity schedule, the loss reduction, the interface."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from zoo.config import ConfigError
from zoo.models import BetaVAE
from zoo.models.beta_vae import gaussian_kl, reconstruction_nll


def small(**kw) -> BetaVAE:
    return BetaVAE(image_shape=(1, 64, 64), latent_dim=4, channels=(8, 8, 8, 8), hidden=(32,), **kw)


def test_kl_matches_torch_distributions() -> None:
    mu, logvar = torch.randn(5, 7), torch.randn(5, 7)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)
    # Hand-computed case: N(1, e^1) vs N(0, 1) = 0.5 (1 + e - 1 - 1).
    assert gaussian_kl(torch.tensor([1.0]), torch.tensor([1.0])).item() == pytest.approx(0.5 * (math.e - 1))


def test_reconstruction_is_summed_over_pixels_in_nats() -> None:
    x = torch.randint(0, 2, (3, 1, 4, 4)).float()
    logits = torch.randn(3, 1, 4, 4)
    bern = torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(reconstruction_nll(logits, x, "bernoulli", 1.0), -bern)
    gauss = Normal(torch.sigmoid(logits), 0.3).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(reconstruction_nll(logits, x, "gaussian", 0.3), -gauss)


def test_higgins_loss_is_recon_plus_beta_kl() -> None:
    model = small(beta=4.0)
    x = torch.randint(0, 2, (6, 1, 64, 64)).float()
    logits, mu, logvar = model(x)
    t = model.loss(x, logits, mu, logvar)
    recon = reconstruction_nll(logits, x, "bernoulli", 1.0).mean()
    kl = gaussian_kl(mu, logvar).sum(1).mean()
    torch.testing.assert_close(t["recon"], recon)
    torch.testing.assert_close(t["kl"], kl)
    torch.testing.assert_close(t["loss"], recon + 4.0 * kl)
    torch.testing.assert_close(t["kl_per_dim"].sum(), kl)


def test_capacity_schedule_and_loss() -> None:
    model = small(objective="capacity", gamma=100.0, capacity_max=20.0, capacity_steps=1000)
    assert [model.capacity(s) for s in (0, 250, 500, 1000, 5000)] == [0.0, 5.0, 10.0, 20.0, 20.0]
    x = torch.randint(0, 2, (4, 1, 64, 64)).float()
    logits, mu, logvar = model(x)
    t = model.loss(x, logits, mu, logvar)  # global_step is 0 outside a trainer: C = 0
    torch.testing.assert_close(t["loss"], t["recon"] + 100.0 * (t["kl"] - 0.0).abs())


def test_interface_shapes_and_ranges() -> None:
    model = small().eval()
    x = torch.rand(2, 1, 64, 64)
    assert model.encode(x).shape == (2, 4)
    assert model.latent_layout.size == 4 and model.latent_layout.code_size == 4
    for out in (model.decode(torch.randn(3, 4)), model.sample(3), model.reconstruct(x)):
        assert out.shape[1:] == (1, 64, 64) and 0 <= out.min() and out.max() <= 1
    model.kl_per_dim.copy_(torch.tensor([0.1, 3.0, 0.0, 1.0]))
    grids = model.traversals(x, steps=5)
    assert set(grids) == {"image_0", "image_1"} and grids["image_0"].shape == (4, 5, 1, 64, 64)
    # Row 0 sweeps the most informative latent (dim 1): decode it by hand.
    mu = model.encode(x[:1])[0]
    z = mu.repeat(5, 1)
    z[:, 1] += torch.linspace(-2, 2, 5)
    torch.testing.assert_close(grids["image_0"][0], model.decode(z))


def test_encoder_decoder_sized_from_the_data() -> None:
    for shape in [(3, 64, 64), (1, 32, 32)]:
        model = BetaVAE(image_shape=shape, latent_dim=3, channels=(8,) * (4 if shape[1] == 64 else 3), hidden=(16,))
        x = torch.rand(2, *shape)
        assert model(x)[0].shape == x.shape


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"beta": -1.0}, "beta=-1.0 is invalid: expected a number >= 0"),
        ({"latent_dim": 0}, "model.latent_dim=0 is invalid: expected an integer >= 1"),
        ({"objective": "tc"}, "model.objective='tc' is invalid: expected one of ('higgins', 'capacity')"),
        ({"likelihood": "poisson"}, "model.likelihood='poisson' is invalid"),
    ],
)
def test_bad_hyperparameters_fail_in_one_line(kw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        BetaVAE(**kw)
    assert message in str(err.value) and "\n" not in str(err.value)
