"""dSprites: grid constants, renderer geometry (per shared/reference/datasets.md), official files,
the atomic bit-packed cache and the datamodule. Small renders only: the full grid is never built."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest
import torch

from zoo.config import ConfigError
from zoo.data import dsprites as D
from zoo.data.dsprites import DSpritesDataModule

SMALL = (1, 3, 2, 2, 2, 2)  # a 48-point grid for the file and cache tests


def cls(shape=0, scale=5, orient=0, x=15, y=15) -> list[int]:
    return [0, shape, scale, orient, x, y]


def render(rows) -> torch.Tensor:
    return D.render(torch.tensor(rows))


def centroid(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) screen centroids (pixel centres at +0.5) of uint8 (N, 64, 64) images."""
    im = images.double()
    mass = im.sum((1, 2))
    centre = torch.arange(64, dtype=torch.float64) + 0.5
    return (im.sum(1) * centre).sum(1) / mass, (im.sum(2) * centre).sum(1) / mass


def anchor(classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return 16 + 32 * classes[:, 4].double() / 31, 16 + 32 * classes[:, 5].double() / 31


def all_positions(shape: int, scale: int, orient: int) -> torch.Tensor:
    return torch.tensor([cls(shape, scale, orient, x, y) for x in range(32) for y in range(32)])


@pytest.fixture
def small_grid(monkeypatch):
    monkeypatch.setattr(DSpritesDataModule, "factor_sizes", SMALL)
    return D.render_grid(SMALL)


# ---- grid constants -------------------------------------------------------------------------
def test_grid_constants_and_index_round_trip():
    assert D.FACTOR_NAMES == ("color", "shape", "scale", "orientation", "posX", "posY")
    assert D.FACTOR_SIZES == (1, 3, 6, 40, 32, 32)
    assert all(v.dtype == torch.float64 for v in D.FACTOR_VALUES)
    assert [len(v) for v in D.FACTOR_VALUES] == list(D.FACTOR_SIZES)
    assert D.FACTOR_VALUES[0].tolist() == [1.0] and D.FACTOR_VALUES[1].tolist() == [1.0, 2.0, 3.0]
    scales = torch.tensor([0.5, 0.6, 0.7, 0.8, 0.9, 1.0], dtype=torch.float64)
    assert torch.allclose(D.FACTOR_VALUES[2], scales)
    orient = D.FACTOR_VALUES[3]
    assert orient[0] == 0 and math.isclose(orient[-1].item(), 2 * math.pi)
    assert torch.allclose(orient.diff(), torch.full((39,), 2 * math.pi / 39, dtype=torch.float64))
    assert torch.equal(D.FACTOR_VALUES[4], torch.linspace(0, 1, 32, dtype=torch.float64))
    assert torch.equal(D.FACTOR_VALUES[5], D.FACTOR_VALUES[4])

    dm = DSpritesDataModule(data_dir="unused")
    assert dm.num_points == 737_280
    assert dm.bases.tolist() == [737280, 245760, 40960, 1024, 32, 1]
    assert dm.ground_truth == (1, 2, 3, 4, 5) and dm.image_shape == (1, 64, 64) and dm.max_value == 1
    index = torch.cat([torch.arange(0, 737_280, 997), torch.tensor([737_279])])
    classes = dm.index_to_classes(index)
    assert torch.equal(dm.classes_to_index(classes), index)
    assert torch.equal(D.index_to_classes(index, D.FACTOR_SIZES), classes)
    assert torch.equal(D.grid_classes(40_958, 40_962), dm.index_to_classes(torch.arange(40_958, 40_962)))
    assert D.grid_classes(1023, 1025).tolist() == [[0, 0, 0, 0, 31, 31], [0, 0, 0, 1, 0, 0]]


# ---- renderer -------------------------------------------------------------------------------
def test_render_dtype_values_and_input_checks():
    g = torch.Generator().manual_seed(0)
    classes = torch.stack([torch.randint(s, (300,), generator=g) for s in D.FACTOR_SIZES], 1)
    images = D.render(classes)
    assert images.dtype == torch.uint8 and images.shape == (300, 64, 64)
    assert set(images.unique().tolist()) == {0, 1}
    assert (images.flatten(1).sum(1) > 30).all()  # every sprite is drawn (smallest heart ~56 px)
    # Chunking, mixed-shape chunks and worker threads do not change a pixel.
    assert torch.equal(D.render(classes, chunk=7, workers=2), images)
    out = torch.full((300, 64, 64), 7, dtype=torch.uint8)
    assert D.render(classes, out=out) is out and torch.equal(out, images)
    with pytest.raises(ValueError):
        D.render(torch.tensor([cls(shape=3)]))
    with pytest.raises(ValueError):
        D.render(torch.tensor([[0, 0, 0, 0, 0]]))
    assert D.render(torch.zeros(0, 6, dtype=torch.long)).shape == (0, 64, 64)


@pytest.mark.parametrize("shape", [D.SQUARE, D.ELLIPSE, D.HEART])
def test_centroid_sits_on_the_anchor_and_moves_with_position(shape):
    classes = all_positions(shape, 5, 0)
    cx, cy = centroid(render(classes.tolist()))
    ax, ay = anchor(classes)
    # The heart is pivoted at its area centroid, so it sits on the anchor too.
    assert (cx - ax).abs().max() < 0.5 and (cy - ay).abs().max() < 0.5
    # Right with posX, DOWN the rows with posY, 32/31 px per class.
    cx, cy = cx.view(32, 32), cy.view(32, 32)  # [posX, posY]
    step_x = (cx[-1] - cx[0]) / 31
    step_y = (cy[:, -1] - cy[:, 0]) / 31
    assert torch.allclose(step_x, torch.full_like(step_x, 32 / 31), atol=0.03)
    assert torch.allclose(step_y, torch.full_like(step_y, 32 / 31), atol=0.03)
    assert (cx.diff(dim=0) > 0).all() and (cy.diff(dim=1) > 0).all()
    # All sprites stay in the central half of the frame (plus their own extent).
    images = render(classes.tolist())
    assert images[:, :2].sum() == 0 and images[:, -2:].sum() == 0
    assert images[:, :, :2].sum() == 0 and images[:, :, -2:].sum() == 0


def test_centroid_stays_on_the_anchor_under_rotation():
    rows = [cls(s, 5, o, x, y) for s in range(3) for o in range(0, 40, 3) for x, y in ((0, 31), (17, 4))]
    classes = torch.tensor(rows)
    cx, cy = centroid(D.render(classes))
    ax, ay = anchor(classes)
    assert (cx - ax).abs().max() < 0.5 and (cy - ay).abs().max() < 0.5


def test_square_size_and_area_scale_with_scale_squared():
    images = render([cls(0, 5, 0, x, y) for x in range(32) for y in (0, 9, 20)])
    area = images.flatten(1).sum(1).double()
    assert abs(area.mean().item() - 19.2**2) < 0.03 * 19.2**2
    # Axis-aligned solid blocks of 19.2 px: 19 or 20 pixel centres fit, depending on the anchor.
    for im in images[::7]:
        rows, cols = im.any(1).nonzero(), im.any(0).nonzero()
        assert len(rows) in (19, 20) and len(cols) in (19, 20) and im.sum() == len(rows) * len(cols)
    small = render([cls(0, 0, 0, x, 3) for x in range(32)])
    widths = {int(im.any(0).sum()) for im in small}
    assert widths <= {9, 10} and 10 in widths  # side 9.6 px at scale 0.5
    for shape in range(3):
        mean_area = [
            D.render(all_positions(shape, s, 7)[::4]).flatten(1).sum(1).double().mean().item()
            for s in range(6)
        ]
        scales = D.FACTOR_VALUES[2].tolist()
        for s in range(5):
            assert mean_area[s] / mean_area[5] == pytest.approx(scales[s] ** 2, rel=0.04)


def principal_angle(images: torch.Tensor) -> torch.Tensor:
    """Angle (radians, in (-pi/2, pi/2]) of each blob's long axis, measured with screen y flipped UP."""
    im = images.double()
    c = torch.arange(64, dtype=torch.float64) + 0.5
    x, y = c[None, None, :], -c[None, :, None]  # math axes: y up
    m = im.sum((1, 2))
    mx, my = (im * x).sum((1, 2)) / m, (im * y).sum((1, 2)) / m
    dx, dy = x - mx[:, None, None], y - my[:, None, None]
    mu20, mu02, mu11 = ((im * a * b).sum((1, 2)) for a, b in ((dx, dx), (dy, dy), (dx, dy)))
    return 0.5 * torch.atan2(2 * mu11, mu20 - mu02)


def test_ellipse_axis_and_counter_clockwise_rotation_on_screen():
    horizontal = render([cls(1, 5, 0)])[0]
    assert int(horizontal.any(0).sum()) in (25, 26) and int(horizontal.any(1).sum()) in (14, 15)
    vertical = render([cls(1, 5, 10)])[0]  # orientation 10 = 92 degrees
    assert int(vertical.any(1).sum()) >= 25 and int(vertical.any(0).sum()) <= 16
    orients = torch.arange(39)
    angles = principal_angle(D.render(torch.tensor([cls(1, 5, o) for o in orients.tolist()])))
    theta = orients.double() * 2 * math.pi / 39
    # Counter-clockwise on screen: the axis angle (y up) equals +theta modulo pi.
    err = torch.remainder(angles - theta + math.pi / 2, math.pi) - math.pi / 2
    assert err.abs().max() < math.radians(3)
    clockwise = torch.remainder(angles + theta + math.pi / 2, math.pi) - math.pi / 2
    assert clockwise.abs().max() > math.radians(45)  # the opposite sense is clearly wrong


def test_heart_is_upright_with_its_tip_turning_counter_clockwise():
    images = D.render(all_positions(2, 5, 0))
    area = images.flatten(1).sum(1).double()
    assert abs(area.mean().item() - 222) < 8 and area.min() > 205 and area.max() < 240
    for im in images[::97]:
        rows = im.any(1).nonzero().squeeze(1)
        cols = im.any(0).nonzero().squeeze(1)
        assert len(cols) in (19, 20, 21) and len(rows) in (16, 17, 18)  # ~20 wide x 17 high
        widths = im[rows].sum(1)
        assert widths[-1] <= 3 and (widths[-4:].diff() < 0).all()  # narrowing to a tip at the bottom
        assert widths.argmax() < len(rows) // 2  # widest in the upper half (the lobes)
        top = im[rows[0], cols[0] : cols[-1] + 1]
        assert (top.diff() != 0).sum() >= 2  # two lobes: the top row has a gap between them

    def tip(orient: int) -> tuple[float, float]:
        """(dx, dy_up) from the anchor to the lit pixel farthest from it."""
        (im,) = render([cls(2, 5, orient)])
        r, c = im.nonzero(as_tuple=True)
        ax = ay = 16 + 32 * 15 / 31
        dx, dy = c.double() + 0.5 - ax, ay - (r.double() + 0.5)
        k = (dx**2 + dy**2).argmax()
        return dx[k].item(), dy[k].item()

    dx, dy = tip(0)
    assert dy < -9 and abs(dx) < 1.5  # tip straight down
    dx, dy = tip(10)  # ~92 degrees counter-clockwise on screen: down -> right
    assert dx > 9 and abs(dy) < 2
    dx, dy = tip(20)  # ~185 degrees: tip up
    assert dy > 9


def test_orientation_0_and_39_render_identically():
    first = torch.tensor(
        [cls(s, sc, 0, x, y) for s in range(3) for sc in range(6) for x in (0, 13, 31) for y in (5, 30)]
    )
    last = first.clone()
    last[:, 3] = 39
    a, b = D.render(first), D.render(last)
    assert torch.equal(a, b)
    assert not torch.equal(D.render(first[:, :] + torch.tensor([0, 0, 0, 1, 0, 0])), a)


# ---- official files -------------------------------------------------------------------------
def official_arrays(sizes=SMALL):
    """Images distinct from our renders (so the test can tell which source was used)."""
    n = math.prod(sizes)
    classes = D.grid_classes(0, n, sizes)
    images = 1 - D.render(classes)
    values = torch.stack([D.FACTOR_VALUES[k][classes[:, k]] for k in range(6)], 1)
    return images.numpy(), classes.numpy(), values.numpy()


def write_fake_hdf5(path):
    imgs, classes, values = official_arrays()
    with h5py.File(path, "w") as f:
        f.create_dataset("imgs", data=imgs, compression="gzip")
        f.create_dataset("latents/classes", data=classes)
        f.create_dataset("latents/values", data=values)
    return imgs


def test_official_hdf5_is_used_after_its_checksum_is_verified(tmp_path, small_grid, monkeypatch):
    imgs = write_fake_hdf5(tmp_path / D.OFFICIAL_HDF5)
    D.write_cache(tmp_path / D.CACHE_NAME, small_grid, SMALL)  # the official file wins over the cache
    digest = hashlib.sha256((tmp_path / D.OFFICIAL_HDF5).read_bytes()).hexdigest()
    monkeypatch.setattr(D, "HDF5_SHA256", digest)
    dm = DSpritesDataModule(data_dir=str(tmp_path))
    dm.prepare_data()
    loaded = dm.load_images()
    assert loaded.dtype == torch.uint8 and torch.equal(loaded, torch.from_numpy(imgs))


def test_official_hdf5_checksum_mismatch_is_a_one_line_error(tmp_path, small_grid):
    write_fake_hdf5(tmp_path / D.OFFICIAL_HDF5)
    actual = hashlib.sha256((tmp_path / D.OFFICIAL_HDF5).read_bytes()).hexdigest()
    dm = DSpritesDataModule(data_dir=str(tmp_path))
    with pytest.raises(ConfigError) as err:
        dm.load_images()
    msg = str(err.value)
    assert "\n" not in msg and D.OFFICIAL_HDF5 in msg and D.HDF5_SHA256 in msg and actual in msg
    assert not (tmp_path / D.CACHE_NAME).exists()  # no silent fallback to rendering


def write_fake_npz(path, **override):
    imgs, classes, values = official_arrays()
    arrays = {"imgs": imgs, "latents_classes": classes, "latents_values": values}
    arrays.update(override)
    # ``metadata`` is a pickle in the official file: loading it would need allow_pickle=True.
    np.savez_compressed(path, metadata=np.array({"title": "dSprites"}, dtype=object), **arrays)
    return imgs


def test_official_npz_is_checked_against_the_grid_without_unpickling(tmp_path, small_grid):
    imgs = write_fake_npz(tmp_path / D.OFFICIAL_NPZ)
    dm = DSpritesDataModule(data_dir=str(tmp_path))
    dm.prepare_data()
    assert not (tmp_path / D.CACHE_NAME).exists()
    assert torch.equal(dm.load_images(), torch.from_numpy(imgs))


@pytest.mark.parametrize("bad", ["classes", "values", "pixels", "dtype"])
def test_official_npz_that_does_not_match_the_grid_is_rejected(tmp_path, small_grid, bad):
    imgs, classes, values = official_arrays()
    override = {
        "classes": {"latents_classes": classes[::-1].copy()},
        "values": {"latents_values": values * 2},
        "pixels": {"imgs": imgs * 255},
        "dtype": {"imgs": imgs.astype(np.float32)},
    }[bad]
    write_fake_npz(tmp_path / D.OFFICIAL_NPZ, **override)
    with pytest.raises(ConfigError) as err:
        DSpritesDataModule(data_dir=str(tmp_path)).load_images()
    assert "\n" not in str(err.value) and D.OFFICIAL_NPZ in str(err.value)


# ---- the rendered cache ---------------------------------------------------------------------
def test_cache_round_trip_is_packed_and_rebuilt_only_when_needed(tmp_path, small_grid):
    dm = DSpritesDataModule(data_dir=str(tmp_path))
    dm.prepare_data()
    path = tmp_path / D.CACHE_NAME
    assert path.exists() and D.cache_is_valid(path, SMALL)
    assert path.stat().st_size < 4096 + 48 * 512 + 1  # 1 bit per pixel after a 4 KiB header
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    mtime = path.stat().st_mtime_ns
    dm.prepare_data()
    assert path.stat().st_mtime_ns == mtime  # a valid cache is not rebuilt
    loaded = dm.load_images()
    assert loaded.dtype == torch.uint8 and torch.equal(loaded, small_grid)
    assert torch.equal(D.read_cache(path, SMALL), small_grid)
    assert list(tmp_path.iterdir()) == [path]  # no temp files left behind


def test_truncated_wrong_version_or_corrupt_caches_are_not_accepted(tmp_path, small_grid, monkeypatch):
    path = tmp_path / D.CACHE_NAME
    D.write_cache(path, small_grid, SMALL)
    good = path.read_bytes()

    path.write_bytes(good[:-100])  # truncated (as a non-atomic writer would leave it)
    assert not D.cache_is_valid(path, SMALL) and D.read_cache(path, SMALL) is None
    path.write_bytes(good[:30])  # cut inside the header
    assert D.read_cache(path, SMALL) is None
    path.write_bytes(b"")
    assert D.read_cache(path, SMALL) is None

    path.write_bytes(good)
    monkeypatch.setattr(D, "CACHE_FORMAT", D.CACHE_FORMAT + 1)  # a cache of an older file format
    assert D.read_cache(path, SMALL) is None
    monkeypatch.undo()
    monkeypatch.setattr(DSpritesDataModule, "factor_sizes", SMALL)

    path.write_bytes(good)
    original = D.RENDER_PARAMS
    params = dict(original, renderer_version=original["renderer_version"] + 1)
    monkeypatch.setattr(D, "RENDER_PARAMS", params)  # written by an older renderer
    assert D.read_cache(path, SMALL) is None
    monkeypatch.setattr(D, "RENDER_PARAMS", original)

    # A renderer that draws differently (without bumping the version) is caught by the probes.
    path.write_bytes(good)
    assert D.read_cache(path, SMALL) is not None
    monkeypatch.setattr(D, "HEART_SIDE", D.HEART_SIDE + 1)
    monkeypatch.setattr(D, "_probes", {})
    assert D.read_cache(path, SMALL) is None

    # load_images rebuilds a rejected cache and rewrites it valid.
    monkeypatch.setattr(D, "HEART_SIDE", D.HEART_SIDE - 1)
    monkeypatch.setattr(D, "_probes", {})
    path.write_bytes(good[:-100])
    assert torch.equal(DSpritesDataModule(data_dir=str(tmp_path)).load_images(), small_grid)
    assert path.read_bytes() == good


def test_corrupt_payload_is_caught_by_its_checksum(tmp_path, caplog):
    sizes = (1, 3, 2, 40, 2, 2)  # 960 images: most are not among the 256 probes
    images = D.render_grid(sizes)
    path = tmp_path / D.CACHE_NAME
    D.write_cache(path, images, sizes)
    assert torch.equal(D.read_cache(path, sizes), images)
    row = next(i for i in range(959, 0, -1) if i not in set(D._probe_indices(960).tolist()))
    corrupt = bytearray(path.read_bytes())
    corrupt[path.stat().st_size - (960 - row) * 512] ^= 0x10  # one pixel of a non-probe image
    path.write_bytes(bytes(corrupt))
    assert D.cache_is_valid(path, sizes)  # the cheap check cannot see it ...
    assert D.read_cache(path, sizes) is None  # ... the full load does
    assert "checksum" in caplog.text


def test_crash_while_writing_leaves_no_valid_looking_cache(tmp_path, small_grid, monkeypatch):
    path = tmp_path / D.CACHE_NAME
    D.write_cache(path, small_grid, SMALL)
    old = path.read_bytes()

    def crash(f, packed):
        f.write(memoryview(packed.reshape(-1))[: packed.nbytes // 2])
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of the write

    monkeypatch.setattr(D, "_write_payload", crash)
    with pytest.raises(KeyboardInterrupt):
        D.write_cache(path, 1 - small_grid, SMALL)
    assert path.read_bytes() == old  # the old cache is untouched, the temp file removed
    assert sorted(p.name for p in tmp_path.iterdir()) == [D.CACHE_NAME]

    path.unlink()
    with pytest.raises(KeyboardInterrupt):
        D.write_cache(path, small_grid, SMALL)
    assert list(tmp_path.iterdir()) == []


def test_killed_build_leaves_only_an_unloadable_temp_file_then_rebuilds(tmp_path, small_grid):
    script = textwrap.dedent(
        f"""
        import os, sys
        from zoo.data import dsprites as D
        def die(f, packed):
            f.write(memoryview(packed.reshape(-1))[: packed.nbytes // 2])
            f.flush()
            os._exit(9)  # like SIGKILL: no cleanup handlers run
        D._write_payload = die
        D.write_cache(sys.argv[1], D.render_grid({SMALL}), {SMALL})
        """
    )
    path = tmp_path / D.CACHE_NAME
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, timeout=120)
    assert done.returncode == 9, done.stderr.decode()
    assert not path.exists()
    (tmp,) = list(tmp_path.iterdir())
    assert tmp.name.endswith(".tmp") and tmp.stat().st_size > 4096
    assert D.read_cache(tmp, SMALL) is None  # even read directly, the partial file is rejected

    # The next load renders again and writes a valid cache.
    assert torch.equal(DSpritesDataModule(data_dir=str(tmp_path)).load_images(), small_grid)
    assert D.cache_is_valid(path, SMALL)
    assert tmp.exists()  # a fresh temp file may belong to a live writer: kept ...
    old = time.time() - 3600
    os.utime(tmp, (old, old))
    D.write_cache(path, small_grid, SMALL)
    assert not tmp.exists()  # ... a stale one is cleaned up by the next write


# ---- datamodule -----------------------------------------------------------------------------
def test_datamodule_subset_end_to_end(tmp_path):
    dm = DSpritesDataModule(data_dir=str(tmp_path), batch_size=32, val_fraction=0.1, seed=3, subset=600)
    dm.prepare_data()
    assert list(tmp_path.iterdir()) == []  # a subset renders its points only: no cache
    dm.setup("fit")
    assert len(dm.train_set) == 540 and len(dm.val_set) == 60
    x, y = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.float32 and x.shape == (32, 1, 64, 64)
    assert set(x.unique().tolist()) == {0.0, 1.0}
    assert y.dtype == torch.long and y.shape == (32, 6)
    assert ((y >= 0) & (y < torch.tensor(D.FACTOR_SIZES))).all()
    assert torch.equal(x[:, 0], D.render(y).float())
    assert torch.equal(dm.images_for(y), x)
    xv, yv = next(iter(dm.val_dataloader()))
    assert torch.equal(xv[:, 0], D.render(yv).float())
    values = dm.classes_to_values(y)
    assert values.dtype == torch.float64 and torch.equal(values[:, 3], D.FACTOR_VALUES[3][y[:, 3]])


def test_hydra_config_instantiates_the_datamodule(tmp_path):
    from pathlib import Path

    import hydra
    from omegaconf import OmegaConf

    conf = Path(__file__).resolve().parents[1] / "conf" / "data" / "dsprites.yaml"
    root = {"paths": {"data_dir": str(tmp_path)}, "seed": 5, "data": OmegaConf.load(conf)}
    cfg = OmegaConf.create(root)
    assert cfg.data._target_ == "zoo.data.dsprites.DSpritesDataModule"
    dm = hydra.utils.instantiate(cfg.data)
    assert isinstance(dm, DSpritesDataModule)
    assert (dm.data_dir, dm.batch_size, dm.val_fraction, dm.seed) == (str(tmp_path), 64, 0.01, 5)
    assert dm.subset is None and dm.on_device is False and dm.num_workers == 0
