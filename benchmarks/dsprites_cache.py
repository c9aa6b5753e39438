"""Time the dSprites grid: full render, cache write, cache validation and cache load (+ unpack).

    python benchmarks/dsprites_cache.py [DATA_DIR]   # default /tmp/zoo-data

Rebuilds the cache only when it is missing or stale (pass --force to re-render anyway).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from zoo.data import dsprites as D


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default="/tmp/zoo-data")
    parser.add_argument("--force", action="store_true", help="render and rewrite the cache")
    args = parser.parse_args()
    cache = Path(args.data_dir) / D.CACHE_NAME
    print(f"torch threads: {torch.get_num_threads()}")

    t = time.perf_counter()
    valid = D.cache_is_valid(cache)
    print(f"cache check ({'valid' if valid else 'missing/stale'}): {time.perf_counter() - t:.2f} s")
    if args.force or not valid:
        t = time.perf_counter()
        images = D.render_grid()
        print(f"render full grid {tuple(images.shape)}: {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        D.write_cache(cache, images)
        print(f"write cache: {time.perf_counter() - t:.1f} s")
        del images
    print(f"cache size: {cache.stat().st_size / 1e6:.1f} MB ({cache})")

    t = time.perf_counter()
    images = D.read_cache(cache)
    print(f"load + unpack cache: {time.perf_counter() - t:.2f} s")
    assert images is not None and images.shape == (737280, 64, 64)
    probe = torch.randint(len(images), (2048,), generator=torch.Generator().manual_seed(0))
    same = torch.equal(images[probe], D.render(D.grid_classes(0, len(images))[probe]))
    print(f"2048 random cached images equal fresh renders: {same}")


if __name__ == "__main__":
    main()
