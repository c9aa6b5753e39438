"""β-VAE training throughput: Lightning next to a plain PyTorch loop, against the machine's ceiling.

    python benchmarks/throughput.py [--steps 150] [--rounds 3] [--batch-size 64] [--data-dir DIR]

Prints one table (images/s, ms per step, MB) and the environment. Both paths train the same
Burgess network on the same in-memory dSprites images with the same batch; the Lightning path is
the zoo's own (`FactorDataModule` + `BetaVAE` + `Trainer`), measured with and without the
progress bar and W&B offline logging that `python train.py` uses. The glibc allocator is tuned
as in `train.py` (set ZOO_TUNE_MALLOC=0 to measure the default one).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zoo.runtime import reexec_with_tuned_allocator  # noqa: E402

reexec_with_tuned_allocator()

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from benchmarks._common import environment, lightning_images_per_second  # noqa: E402
from zoo.data.dsprites import DSpritesDataModule, grid_classes, load_grid, render  # noqa: E402
from zoo.models import BetaVAE  # noqa: E402


def peak_mb() -> float:
    """Peak resident memory of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_gflops(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def step_flops(model: BetaVAE, x: torch.Tensor) -> float:
    """FLOP per image of one training step (forward + backward, counted by torch)."""
    with FlopCounterMode(display=False) as counter:
        logits, mu, logvar = model(x)
        model.loss(x, logits, mu, logvar)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)


def layer_gflops(model: BetaVAE, x: torch.Tensor, reps: int = 20) -> float:
    """GFLOP/s of the network's conv and linear layers, each timed alone forward + backward.

    This is the compute ceiling of the step: what the layers reach without the loss, the
    optimiser, the element-wise ops and the allocator between them.
    """
    inputs: dict[torch.nn.Module, torch.Tensor] = {}
    kinds = (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)

    def keep_input(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        inputs.setdefault(module, args[0].detach())

    hooks = [m.register_forward_hook(keep_input) for m in model.modules() if isinstance(m, kinds)]
    model(x)
    for h in hooks:
        h.remove()
    flops = seconds = 0.0
    for layer, inp in inputs.items():
        inp = inp.clone().requires_grad_(True)
        with FlopCounterMode(display=False) as counter:
            layer(inp).sum().backward()
        for _ in range(3):
            layer(inp).sum().backward()
        t = time.perf_counter()
        for _ in range(reps):
            layer(inp).sum().backward()
        seconds += time.perf_counter() - t
        flops += counter.get_total_flops() * reps
    model.zero_grad(set_to_none=True)
    return flops / seconds / 1e9


def plain_loop(store: torch.Tensor, steps: int, batch_size: int, warmup: int = 10) -> float:
    """Images/s of a hand-written loop: random batch by tensor indexing, forward, loss, step."""
    torch.manual_seed(0)
    model = BetaVAE(image_shape=(1, 64, 64))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    for i in range(warmup + steps):
        if i == warmup:
            t = time.perf_counter()
        idx = torch.randint(len(store), (batch_size,))
        x = store[idx].unsqueeze(1).float()
        logits, mu, logvar = model(x)
        loss = model.loss(x, logits, mu, logvar)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * batch_size / (time.perf_counter() - t)


def loader_ms(dm: DSpritesDataModule, batches: int = 200) -> float:
    """Milliseconds per batch to draw a shuffled batch from the datamodule's train loader."""
    loader = dm.train_dataloader()
    batches = min(batches, len(loader) - 1)
    it = iter(loader)
    next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    return (time.perf_counter() - t) / batches * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR", "data"))
    parser.add_argument("--subset", type=int, default=50_000, help="dSprites images held in memory for the loops")
    args = parser.parse_args()
    torch.manual_seed(0)
    rows: list[tuple[str, str, str, str]] = []

    # dSprites: render and cache times.
    part = 737_280 // 16
    t = time.perf_counter()
    render(grid_classes(0, part))
    render_s = (time.perf_counter() - t) * 16
    rows.append(("dSprites render (full grid, x16 the first 46,080 images)", f"{render_s:.1f} s", "", ""))
    t = time.perf_counter()
    grid = load_grid(args.data_dir)
    rows.append((f"dSprites cache build or load ({args.data_dir})", f"{time.perf_counter() - t:.1f} s", "", f"{peak_mb():.0f}"))
    t = time.perf_counter()
    del grid
    grid = load_grid(args.data_dir)
    rows.append(("dSprites cache load (warm)", f"{time.perf_counter() - t:.1f} s", "", f"{peak_mb():.0f}"))
    store = grid[torch.randperm(len(grid))[: args.subset]].clone()
    del grid

    dm = DSpritesDataModule(data_dir=args.data_dir, batch_size=args.batch_size, subset=args.subset)
    dm.setup("fit")
    x = store[: args.batch_size].unsqueeze(1).float()
    net = BetaVAE(image_shape=(1, 64, 64))
    flop_per_image, peak = step_flops(net, x), layer_gflops(net, x)
    mm = matmul_gflops()
    ceiling = peak * 1e9 / flop_per_image
    matmul_ceiling = mm * 1e9 / flop_per_image

    plain, bare, full = [], [], []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.rounds):
            plain.append(plain_loop(store, args.steps, args.batch_size, args.warmup))
            for extras, results in ((False, bare), (True, full)):
                torch.manual_seed(0)
                model = BetaVAE(image_shape=dm.image_shape)
                results.append(lightning_images_per_second(model, dm, args.steps, args.warmup, extras, out))
    p = statistics.median(plain)
    load = loader_ms(dm)
    step_ms = args.batch_size / p * 1e3
    for name, vals in (("plain PyTorch loop", plain), ("Lightning, bare", bare), ("Lightning + progress bar + W&B offline", full)):
        v = statistics.median(vals)
        rows.append((f"β-VAE step: {name}", f"{v:,.0f} img/s", f"{args.batch_size / v * 1e3:.1f} ms ({v / p:.3f}x plain, {v / ceiling:.0%} of layer ceiling, {v / matmul_ceiling:.0%} of matmul ceiling)", f"{peak_mb():.0f}"))
    rows.append(("data: one shuffled batch from the train loader", f"{load:.2f} ms", f"{load / step_ms:.1%} of a plain step", ""))

    print("## Environment")
    print("\n".join(environment(f"batch {args.batch_size}, fp32, {args.rounds} rounds x {args.steps} steps after {args.warmup} warm-up (medians)")))
    print(f"- matmul {mm:.0f} GFLOP/s; β-VAE step {flop_per_image / 1e6:.1f} MFLOP/image ")
    print(f"- ceiling: its conv/linear layers timed alone reach {peak:.0f} GFLOP/s -> {ceiling:,.0f} img/s; at the matmul rate -> {matmul_ceiling:,.0f} img/s")
    print()
    print("| measurement | value | detail | peak MB |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\nper-round img/s: plain {[round(v) for v in plain]}, bare {[round(v) for v in bare]}, full {[round(v) for v in full]}")


if __name__ == "__main__":
    main()
