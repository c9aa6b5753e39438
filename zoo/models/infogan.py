"""InfoGAN (Chen et al. 2016): a GAN whose structured latent codes are made recoverable from its images."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.config import check
from zoo.metrics.hungarian import confusion_matrix, hungarian_accuracy
from zoo.models.base import LatentLayout
from zoo.models.gan import GAN

#: differential entropy of a continuous code c ~ U(-1, 1), in nats.
UNIFORM_ENTROPY = math.log(2.0)


def gaussian_nll(c: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """-log N(c; mean, exp(log_std)²) elementwise, in nats."""
    return 0.5 * ((c - mean) * torch.exp(-log_std)).pow(2) + log_std + 0.5 * math.log(2 * math.pi)


class InfoGAN(GAN):
    """InfoGAN: latent = noise z ~ N(0, I), categorical codes (uniform, one-hot) and continuous codes ~ U(-1, 1).

    Q shares the discriminator's trunk and adds the paper's head (fc ``q_hidden`` - BN - LeakyReLU -
    fc): logits of each categorical code, the mean of each continuous code and, with
    ``continuous_std=None``, its log standard deviation (the paper's exponential parameterisation).
    Categorical codes are scored by cross-entropy, continuous ones by a Gaussian log-likelihood.

    What the information term updates: it is minimised in the generator step, together with G's
    adversarial loss, and updates G and Q's head (Adam at ``g_lr``). D's trunk is frozen in that
    step, so the trunk learns from the adversarial loss alone. Why: every parameter then belongs to
    exactly one optimiser (D's step changes only D, G's step only G and Q), the trunk stays a
    discriminator rather than bending its features to make Q's job easy (the codes must become
    visible in features that D learned for realness), and the G step computes no weight
    gradients for the trunk. The authors' TensorFlow code instead also subtracts λ·L_I from D's
    loss, so there the trunk and Q's head learn from L_I at D's learning rate.

    Mutual-information bound per code (logged as ``mi_bound/<code>`` next to ``entropy/<code>``):
    L_I = H(c) - E[-log Q(c | G(z, c))]. Categorical: H = ln(classes), so the bound is ln 10 ≈
    2.303 nats for a Q that recovers a 10-way code and 0 for a uniform Q. Continuous: H = ln 2
    (differential), and with a fixed std σ the bound is at most ln 2 - ln σ - ½ ln 2π (< 0 for
    σ = 1): a looser bound, still the quantity maximised. With a learned std it can exceed ln 2:
    a differential entropy is no ceiling on the mutual information of a continuous code.

    Args:
        noise_dim: incompressible noise dimensions (paper, MNIST: 62).
        categorical: number of classes of each categorical code (paper: one 10-way code).
        continuous: number of continuous codes (paper: 2).
        lambda_info: weight λ of the categorical information terms (paper: 1).
        lambda_continuous: weight of the continuous information terms (paper: smaller, e.g. 0.1).
        continuous_std: Q's fixed std for continuous codes, or None to let Q predict it.
        q_hidden: width of Q's hidden layer (paper: 128).
        traversal_span: continuous codes are swept over [-span, span] in the traversals (paper: 2,
            beyond the training range [-1, 1]).
        Other arguments as :class:`GAN`; the defaults are the paper's MNIST recipe (LeakyReLU 0.1,
        Adam β1 = 0.5, lr 2e-4 for D and 1e-3 for G and Q).
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        noise_dim: int = 62,
        categorical: Sequence[int] = (10,),
        continuous: int = 2,
        lambda_info: float = 1.0,
        lambda_continuous: float = 0.1,
        continuous_std: float | None = None,
        q_hidden: int = 128,
        channels: Sequence[int] | None = None,
        hidden: Sequence[int] = (1024,),
        negative_slope: float = 0.1,
        d_lr: float = 2e-4,
        g_lr: float = 1e-3,
        adam_betas: Sequence[float] = (0.5, 0.999),
        traversal_span: float = 2.0,
    ) -> None:
        categorical = [int(k) for k in categorical]
        check(all(k >= 2 for k in categorical), "model.categorical", categorical, "a list of class counts, each >= 2")
        check(continuous >= 0, "model.continuous", continuous, "an integer >= 0")
        check(categorical or continuous > 0, "model.continuous", continuous, ">= 1 when model.categorical is empty")
        check(lambda_info >= 0, "lambda_info", lambda_info, "a number >= 0")
        check(lambda_continuous >= 0, "model.lambda_continuous", lambda_continuous, "a number >= 0")
        check(
            continuous_std is None or continuous_std > 0,
            "model.continuous_std", continuous_std, "null (Q predicts it) or a number > 0",
        )  # fmt: skip
        check(q_hidden >= 1, "model.q_hidden", q_hidden, "an integer >= 1")
        check(traversal_span > 0, "model.traversal_span", traversal_span, "a number > 0")
        super().__init__(image_shape, noise_dim, channels, hidden, negative_slope, d_lr, g_lr, adam_betas)
        layout = self.latent_layout
        q_out = layout.code_size + (layout.continuous if continuous_std is None else 0)
        self.q_head = nn.Sequential(
            nn.Linear(self.trunk.out_features, q_hidden, bias=False),
            nn.BatchNorm1d(q_hidden),
            nn.LeakyReLU(negative_slope),
            nn.Linear(q_hidden, q_out),
        )
        self._confusion: dict[tuple[int, int], Tensor] = {}

    def make_layout(self) -> LatentLayout:
        hp = self.hparams
        return LatentLayout(noise=hp.noise_dim, categorical=tuple(int(k) for k in hp.categorical), continuous=hp.continuous)

    # ---- latents --------------------------------------------------------------------------
    def assemble(self, noise: Tensor, cat: Tensor, cont: Tensor) -> Tensor:
        """Noise (B, N), categorical values long (B, K) and continuous codes (B, M) -> latents (B, layout.size)."""
        onehots = [F.one_hot(cat[:, k], n).to(noise.dtype) for k, n in enumerate(self.latent_layout.categorical)]
        return torch.cat([noise, *onehots, cont], dim=1)

    def split_codes(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Latents (B, layout.size) -> categorical values long (B, K) and continuous codes (B, M)."""
        lay = self.latent_layout
        onehots = z[:, lay.noise : lay.noise + sum(lay.categorical)].split(list(lay.categorical), dim=1)
        cat = torch.stack([o.argmax(1) for o in onehots], 1) if onehots else z.new_zeros(len(z), 0, dtype=torch.long)
        return cat, z[:, lay.size - lay.continuous :]

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n prior draws (n, layout.size): z ~ N(0, I), uniform categorical values, continuous ~ U(-1, 1)."""
        lay = self.latent_layout
        noise = self.draw(torch.randn, n, lay.noise, generator=generator)
        cat = [self.draw(torch.randint, k, (n,), generator=generator) for k in lay.categorical]
        cat = torch.stack(cat, 1) if cat else noise.new_zeros(n, 0, dtype=torch.long)
        cont = self.draw(torch.rand, n, lay.continuous, generator=generator) * 2 - 1
        return self.assemble(noise, cat, cont)

    # ---- Q --------------------------------------------------------------------------------
    def q_estimates(self, features: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
        """D's trunk features (B, F) -> Q's logits per categorical code [(B, classes)], means and log-stds (B, M)."""
        lay = self.latent_layout
        q = self.q_head(features)
        logits = list(q[:, : sum(lay.categorical)].split(list(lay.categorical), dim=1))
        mean = q[:, sum(lay.categorical) : lay.code_size]
        std = self.hparams.continuous_std
        log_std = q[:, lay.code_size :] if std is None else torch.full_like(mean, math.log(std))
        return logits, mean, log_std

    def encode(self, x: Tensor) -> Tensor:
        """Q's estimate of the codes of images x: categorical probabilities, then continuous means (B, code_size)."""
        logits, mean, _ = self.q_estimates(self.trunk(x))
        return torch.cat([*(lg.softmax(1) for lg in logits), mean], dim=1)

    def info_terms(self, z: Tensor, features: Tensor) -> dict[str, Tensor]:
        """The information terms of latents z (B, size) from D's trunk features (B, F) of G(z), in nats.

        Returns per code ``mi_bound/<code>`` and ``entropy/<code>``, their sums ``mi_bound`` and
        ``entropy``, and ``info_loss`` = λ·Σ cross-entropies + λ_cont·Σ Gaussian NLLs (minimised).
        """
        hp, lay = self.hparams, self.latent_layout
        cat, cont = self.split_codes(z)
        logits, mean, log_std = self.q_estimates(features)
        ce = [F.cross_entropy(lg, cat[:, k]) for k, lg in enumerate(logits)]
        nll = gaussian_nll(cont, mean, log_std).mean(0)  # (M,)
        entropy = [math.log(n) for n in lay.categorical] + [UNIFORM_ENTROPY] * lay.continuous
        names = [f"cat{k}" for k in range(len(ce))] + [f"cont{j}" for j in range(lay.continuous)]
        # Chen et al. 2016, Eq. 4-6: min_{G,Q} V(D, G) - λ L_I(G, Q), L_I = E[log Q(c | G(z, c))] + H(c) <= I(c; G(z, c)).
        bounds = [h - term for h, term in zip(entropy, [*ce, *nll])]
        terms = {f"mi_bound/{name}": b for name, b in zip(names, bounds)}
        terms |= {f"entropy/{name}": z.new_tensor(h) for name, h in zip(names, entropy)}
        terms["mi_bound"] = torch.stack(bounds).sum()
        terms["entropy"] = z.new_tensor(sum(entropy))
        terms["info_loss"] = hp.lambda_info * sum(ce, z.new_zeros(())) + hp.lambda_continuous * nll.sum()
        return terms

    def generator_terms(self, z: Tensor, features: Tensor) -> dict[str, Tensor]:
        """G's adversarial loss plus the information terms; ``g_total`` = g_loss + info_loss."""
        terms = super().generator_terms(z, features)
        info = self.info_terms(z, features)
        terms["g_total"] = terms["g_total"] + info["info_loss"]
        return {**terms, **info}

    def generator_parameters(self) -> list[nn.Parameter]:
        """What the G step updates: the generator and Q's head (not D's trunk, see the class docstring)."""
        return [*self.generator.parameters(), *self.q_head.parameters()]

    # ---- validation: the categorical codes as classifiers ---------------------------------
    def scored_pairs(self) -> list[tuple[int, int, str]]:
        """(code k, label column j, label name) for every label with as many classes as categorical code k.

        Label sizes and names come from the datamodule (``factor_sizes``, ``factor_names``): MNIST's
        10-way label for a 10-way code, dSprites' 3-way shape for a 3-way code.
        """
        dm = self.trainer.datamodule
        sizes, names = getattr(dm, "factor_sizes", ()), getattr(dm, "factor_names", ())
        return [(k, j, names[j]) for k, n in enumerate(self.latent_layout.categorical) for j, s in enumerate(sizes) if s == n]

    def on_validation_epoch_start(self) -> None:
        self._confusion = {}

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        features = super().validation_step(batch, batch_idx)
        y = batch[1]
        logits, _, _ = self.q_estimates(features)
        for k, j, _ in self.scored_pairs():
            n = self.latent_layout.categorical[k]
            conf = confusion_matrix(logits[k].argmax(1), y[:, j].to(self.device), n, n)
            self._confusion[k, j] = self._confusion[k, j] + conf if (k, j) in self._confusion else conf
        return features

    def on_validation_epoch_end(self) -> None:
        """Log ``val/cat_accuracy/cat<k>/<label>``: accuracy after the Hungarian matching of values to labels."""
        for k, j, name in self.scored_pairs():
            if (k, j) in self._confusion:
                self.log(f"val/cat_accuracy/cat{k}/{name}", hungarian_accuracy(self._confusion[k, j]))

    # ---- what the latents do --------------------------------------------------------------
    @torch.no_grad()
    def traversals(self, x: Tensor, steps: int = 10) -> dict[str, Tensor]:
        """The paper's figures (Chen et al. 2016, Fig. 2), from fixed draws (a generator seeded 0).

        ``cat<k>``: rows = len(x) fixed noise draws, columns = the values of code k.
        ``cont<j>``: rows = the values of the first categorical code (or len(x) noise draws if there is
        none), columns = code j swept over [-span, span]. All other codes are held at 0.
        Returns ``{name: (R, S, C, H, W)}``.
        """
        lay = self.latent_layout
        num_cat, num_cont = len(lay.categorical), lay.continuous
        noise = self.draw(torch.randn, len(x), lay.noise, generator=torch.Generator().manual_seed(0))

        def grid(row_noise: Tensor, cat: Tensor, cont: Tensor) -> Tensor:
            """(R, S, ...) latent parts -> decoded images (R, S, C, H, W)."""
            rows, cols = cat.shape[:2]
            z = self.assemble(row_noise.expand(rows, cols, -1).flatten(0, 1), cat.flatten(0, 1), cont.flatten(0, 1))
            return self.decode(z).unflatten(0, (rows, cols))

        grids = {}
        long = {"dtype": torch.long, "device": self.device}
        for k, n in enumerate(lay.categorical):
            cat = torch.zeros(len(x), n, num_cat, **long)
            cat[:, :, k] = torch.arange(n, device=self.device)
            grids[f"cat{k}"] = grid(noise[:, None], cat, noise.new_zeros(len(x), n, num_cont))
        rows = lay.categorical[0] if num_cat else len(x)
        row_noise = noise[:1, None] if num_cat else noise[:, None]
        sweep = torch.linspace(-self.hparams.traversal_span, self.hparams.traversal_span, steps, device=self.device)
        for j in range(num_cont):
            cat = torch.zeros(rows, steps, num_cat, **long)
            if num_cat:
                cat[:, :, 0] = torch.arange(rows, device=self.device)[:, None]
            cont = noise.new_zeros(rows, steps, num_cont)
            cont[:, :, j] = sweep
            grids[f"cont{j}"] = grid(row_noise, cat, cont)
        return grids
