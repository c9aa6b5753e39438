"""GAN and InfoGAN training throughput: Lightning next to a plain PyTorch loop of the same networks.

    python benchmarks/gan_throughput.py [--steps 60] [--rounds 3] [--batch-size 64]

Both paths train the InfoGAN MNIST networks (28x28, conv 64-128, fc 1024; Chen et al. 2016) on the
same in-memory uint8 images (random pixels: throughput does not depend on content). One step = one
D update and one G (and Q) update on one batch, the zoo's definition of a step. The plain loop
calls the model's own networks and loss functions with hand-written optimiser steps; the
Lightning path is the zoo's (``LabelledImageDataModule`` + model + ``Trainer``), bare and with the
progress bar and W&B offline logging that ``python train.py`` uses. Rounds alternate the paths so
host load affects them alike; medians are reported. The glibc allocator is tuned as in
``train.py`` (set ZOO_TUNE_MALLOC=0 to measure the default one).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zoo.runtime import reexec_with_tuned_allocator  # noqa: E402

reexec_with_tuned_allocator()

import torch  # noqa: E402
from torch import Tensor  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from benchmarks._common import environment, lightning_images_per_second  # noqa: E402
from zoo.data.mnist import LabelledImageDataModule  # noqa: E402
from zoo.models import GAN, InfoGAN  # noqa: E402

MODELS: dict[str, type[GAN]] = {"GAN": GAN, "InfoGAN": InfoGAN}


class RandomDigits(LabelledImageDataModule):
    """MNIST-shaped uint8 images with random pixels and labels, held in memory."""

    factor_sizes = (10,)

    def load_split(self, train: bool) -> tuple[Tensor, Tensor]:
        gen = torch.Generator().manual_seed(int(train))
        n = 60_000 if train else 1_000
        return torch.randint(256, (n, 28, 28), generator=gen, dtype=torch.uint8), torch.randint(10, (n,), generator=gen)


def plain_step(model: GAN, opts: tuple[torch.optim.Optimizer, torch.optim.Optimizer], x: Tensor) -> None:
    """One D update, then one G (and Q) update with D frozen: the maths of ``GAN.training_step``."""
    opt_d, opt_g = opts
    z = model.sample_latent(len(x))
    fake = model.decode(z)
    d_loss = model.discriminator_loss(model.discriminate(x), model.discriminate(fake.detach()))
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    d_params = model.discriminator_parameters()
    for p in d_params:
        p.requires_grad_(False)
    g_total = model.generator_terms(z, model.trunk(fake))["g_total"]
    opt_g.zero_grad(set_to_none=True)
    g_total.backward()
    opt_g.step()
    for p in d_params:
        p.requires_grad_(True)


def plain_loop(cls: type[GAN], store: Tensor, steps: int, batch_size: int, warmup: int) -> float:
    """Images/s of a hand-written loop: random batch by tensor indexing, D step, G step."""
    torch.manual_seed(0)
    model = cls(image_shape=(1, 28, 28))
    opts = model.configure_optimizers()
    for i in range(warmup + steps):
        if i == warmup:
            t = time.perf_counter()
        x = store[torch.randint(len(store), (batch_size,))].unsqueeze(1).float().div_(255)
        plain_step(model, opts, x)
    return steps * batch_size / (time.perf_counter() - t)


def step_mflop(cls: type[GAN], batch_size: int) -> float:
    """MFLOP per image of one training step (both updates, forward + backward, counted by torch)."""
    model = cls(image_shape=(1, 28, 28))
    x = torch.rand(batch_size, 1, 28, 28)
    with FlopCounterMode(display=False) as counter:
        plain_step(model, model.configure_optimizers(), x)
    return counter.get_total_flops() / batch_size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    dm = RandomDigits(batch_size=args.batch_size)
    dm.setup("fit")
    store = dm.train_set.store

    results: dict[tuple[str, str], list[float]] = {}
    paths = ("plain PyTorch loop", "Lightning, bare", "Lightning + progress bar + W&B offline")
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.rounds):
            for name, cls in MODELS.items():
                for path in paths:
                    if path == paths[0]:
                        v = plain_loop(cls, store, args.steps, args.batch_size, args.warmup)
                    else:
                        torch.manual_seed(0)
                        model = cls(image_shape=dm.image_shape)
                        v = lightning_images_per_second(model, dm, args.steps, args.warmup, path == paths[2], out)
                    results.setdefault((name, path), []).append(v)

    print("## Environment")
    print("\n".join(environment(f"batch {args.batch_size}, fp32, MNIST 28x28 paper nets, {args.rounds} rounds x {args.steps} steps after {args.warmup} warm-up (medians)")))
    print()
    print("| model | path | img/s | ms/step | vs plain | per-round img/s |")
    print("|---|---|---|---|---|---|")
    for name, cls in MODELS.items():
        plain = statistics.median(results[name, paths[0]])
        for path in paths:
            vals = results[name, path]
            v = statistics.median(vals)
            per_round = ", ".join(f"{r:.0f}" for r in vals)
            print(f"| {name} | {path} | {v:,.0f} | {args.batch_size / v * 1e3:.1f} | {v / plain:.3f}x | {per_round} |")
    print()
    for name, cls in MODELS.items():
        print(f"- {name}: {step_mflop(cls, args.batch_size):.0f} MFLOP per image per step")


if __name__ == "__main__":
    main()
