"""Time every disentanglement metric at the reference sample sizes, on codes of a synthetic grid.

    python benchmarks/metrics.py                      # sanity grid (4, 6, 8, 10, 12), rotated codes
    python benchmarks/metrics.py --grid dsprites --codes perfect --skip-suite
    python benchmarks/metrics.py --threads 1          # robust when other processes load the cores

The encoder is a trivial read-out of the synthetic "images" (their pixels are the factor classes), so
the numbers are the metrics' own cost. For the sampling metrics (BetaVAE, FactorVAE, the suite) the
time spent in ``images_for`` + ``encode`` is measured and subtracted in the "excl. encoder" column.
Targets on 2 cores: MIG on 10,000 codes < 0.5 s, whole suite < 60 s.

Timings on a shared machine drift with the load of other processes: the load average is printed.
With 2 OpenMP threads on 2 loaded cores, small torch ops (the synthetic encoder, MIG's counts) slow
down by 10x or more; ``--threads 1`` avoids that. DCI always fits its factors in worker threads with
single-threaded torch ops.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import sklearn
import torch

from zoo.metrics import beta_vae_score, dci, evaluate_all, factor_vae_score, mig, modularity_explicitness, sap
from zoo.metrics.synthetic import (
    DSPRITES_SIZES,
    SANITY_SIZES,
    FactorEncoder,
    RandomEncoder,
    SyntheticFactors,
    random_rotation,
)


class Stopwatch:
    """Accumulated seconds inside wrapped callables."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        return timed


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> list[str]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return [
        f"python {platform.python_version()}  torch {torch.__version__}  sklearn {sklearn.__version__}  "
        f"numpy {np.__version__}",
        f"cpu: {cpu_model()}  ({os.cpu_count()} logical cores)  torch threads: {torch.get_num_threads()}  "
        f"load average: {', '.join(f'{x:.2f}' for x in load)}",
    ]


def make_encoder(kind: str, dm: SyntheticFactors):
    k = len(dm.ground_truth)
    if kind == "perfect":
        return FactorEncoder(dm.ground_truth)
    if kind == "rotated":
        return FactorEncoder(dm.ground_truth, transform=random_rotation(k, seed=0))
    if kind == "random":
        return RandomEncoder(10)
    raise SystemExit(f"--codes {kind!r}: expected perfect, rotated or random")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", choices=("sanity", "dsprites"), default="sanity")
    ap.add_argument("--codes", default="rotated", help="perfect | rotated | random")
    ap.add_argument("--repeat", type=int, default=5, help="repeats of the fast metrics (median reported)")
    ap.add_argument("--skip-suite", action="store_true", help="do not time evaluate_all")
    ap.add_argument("--skip-sampling", action="store_true", help="do not time BetaVAE / FactorVAE")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    sizes = SANITY_SIZES if args.grid == "sanity" else DSPRITES_SIZES
    dm = SyntheticFactors(sizes)
    watch = Stopwatch()
    dm.images_for = watch.wrap(dm.images_for)  # count image gathering as encoder time
    enc = watch.wrap(make_encoder(args.codes, dm))

    print("\n".join(environment()))
    print(f"grid {sizes} ({dm.num_points} points), codes: {args.codes}\n")
    rows: list[tuple[str, float, float | None, str, str]] = []

    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(0)
    from zoo.metrics import sample_codes

    train = sample_codes(enc, dm, 10_000, gen)
    test = sample_codes(enc, dm, 5_000, gen)
    rows.append(("draw + encode codes", time.perf_counter() - t0, None, "10,000 + 5,000", ""))

    def timed(fn, repeat: int):
        times, result = [], None
        for _ in range(repeat):
            t = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times), result

    s, r = timed(lambda: mig(*train), args.repeat)
    rows.append(("mig", s, None, "10,000", f"mig={r['mig']:.3f}"))
    s, r = timed(lambda: sap(*train, *test), max(1, args.repeat // 2))
    rows.append(("sap", s, None, "10,000 / 5,000", f"sap={r['sap']:.3f}"))
    s, r = timed(lambda: modularity_explicitness(*train, *test), 1)
    rows.append(("modularity_explicitness", s, None, "10,000 / 5,000",
                 f"mod={r['modularity']:.3f} expl={r['explicitness']:.3f}"))
    s, r = timed(lambda: dci(*train, *test), 1)
    rows.append(("dci (100 trees x classes, depth 3)", s, None, "10,000 / 5,000",
                 f"D={r['dci_disentanglement']:.3f} C={r['dci_completeness']:.3f} "
                 f"I={r['dci_informativeness']:.3f}"))

    if not args.skip_sampling:
        for name, fn, size in (
            ("beta_vae", beta_vae_score, "64 x 2 x (10,000 + 5,000) images"),
            ("factor_vae", factor_vae_score, "64 x (10,000 + 5,000) + 10,000 images"),
        ):
            watch.seconds = 0.0
            t = time.perf_counter()
            r = fn(enc, dm)
            total = time.perf_counter() - t
            rows.append((name, total, total - watch.seconds, size, f"score={r[name + '_score']:.3f}"))

    if not args.skip_suite:
        watch.seconds = 0.0
        t = time.perf_counter()
        r = evaluate_all(enc, dm)
        total = time.perf_counter() - t
        rows.append(("evaluate_all (whole suite)", total, total - watch.seconds, "reference sizes", ""))

    w = max(len(r[0]) for r in rows)
    print(f"{'metric':<{w}}  {'seconds':>8}  {'excl. encoder':>13}  {'sample sizes':<38}  score")
    print("-" * (w + 80))
    for name, secs, excl, size, score in rows:
        ex = f"{excl:13.2f}" if excl is not None else " " * 13
        print(f"{name:<{w}}  {secs:8.2f}  {ex}  {size:<38}  {score}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    print("\nload average at the end: " + ", ".join(f"{x:.2f}" for x in load))


if __name__ == "__main__":
    main()
