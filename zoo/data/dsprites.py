"""dSprites (Matthey et al. 2017): 2D sprites on a full grid of 6 factors, 737,280 binary 64x64 images.

The grid is read from the official file when the user put one in ``data_dir``; otherwise it is
rendered here (vector shapes rasterised without anti-aliasing, geometry per
``shared/reference/datasets.md``) and cached on disk as a bit-packed file (~377 MB).

Look-up order of :meth:`DSpritesDataModule.load_images` in ``data_dir``:

1. the official HDF5 ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5`` (sha256 verified first),
   or the official ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (no published checksum:
   ``imgs`` shape/dtype/value set and ``latents_classes`` are checked against our grid; only
   ``imgs``, ``latents_classes`` and ``latents_values`` are read, never ``metadata``, never with
   pickles allowed);
2. our rendered cache ``dsprites_rendered_64x64.zcache`` when its format version, renderer
   parameters and renderer fingerprint match this code and its payload checksum holds;
3. otherwise the grid is rendered and the cache written atomically (temp file in the same
   directory, fsync, ``os.replace``), so a killed build never leaves a file that loads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import struct
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from zoo.config import ConfigError
from zoo.data.factor import FactorDataModule, index_to_classes

log = logging.getLogger(__name__)

# ---- the grid -------------------------------------------------------------------------------
FACTOR_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (1, 3, 6, 40, 32, 32)
FACTOR_VALUES = (
    torch.tensor([1.0], dtype=torch.float64),
    torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),  # square, ellipse, heart
    torch.linspace(0.5, 1.0, 6, dtype=torch.float64),
    torch.linspace(0.0, 2 * math.pi, 40, dtype=torch.float64),  # 0 and 2*pi both present
    torch.linspace(0.0, 1.0, 32, dtype=torch.float64),
    torch.linspace(0.0, 1.0, 32, dtype=torch.float64),
)
SQUARE, ELLIPSE, HEART = 0, 1, 2  # shape classes
IMAGE_SIZE = 64

# ---- official files -------------------------------------------------------------------------
OFFICIAL_NPZ = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
OFFICIAL_HDF5 = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5"
HDF5_SIZE = 28_024_106
HDF5_SHA256 = "729fa22e884c9c500e1f17415d580746b4c5894fbbb780a1319bbcfa39a745bb"

# ---- renderer geometry (pixels at scale 1; see the reference notes) ------------------------
SQUARE_SIDE = 19.2
ELLIPSE_SEMI_AXES = (12.8, 7.2)  # (horizontal, vertical) at orientation 0
HEART_SIDE = 11.25  # side of the 45-degree square; the two lobes are discs of that diameter


def _heart_geometry(scale: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Heart in its own frame (math axes: x right, y UP), diamond centred at the origin.

    The heart is the square of side ``h`` rotated 45 degrees (a diamond with its tip down at
    (0, -d), d = h / sqrt(2)) plus two discs of radius r = h / 2 centred on the midpoints
    (+-d/2, d/2) of its two upper edges. The discs' inner halves lie inside the diamond and their
    outer halves are disjoint (the circles cross only at the top vertex and the centre), so

        area = h^2 + pi r^2,
        centroid y = 2 * (pi r^2 / 2) * (d/2 + 4 r / (3 pi sqrt 2)) / area   (x = 0 by symmetry),

    the outer half-discs' centroids lying 4r/(3 pi) out along the edges' normals (-+1, 1)/sqrt 2.

    PIVOT: the heart is placed with its area centroid on the anchor, and it turns about that
    point, exactly like the (centrally symmetric) square and ellipse. So (posX, posY) is the
    centroid of every sprite at every orientation, and orientation moves no mass off the anchor.

    Returns (d, r, cy): half-diagonal, lobe radius and the centroid's height above the diamond's
    centre, all already multiplied by ``scale``.
    """
    h = HEART_SIDE * scale
    d, r = h / math.sqrt(2.0), h / 2
    area = h * h + math.pi * r * r
    cy = math.pi * r * r * (d / 2 + 4 * r / (3 * math.pi * math.sqrt(2.0))) / area
    return d, r, cy


#: everything the rendered images depend on, stored in the cache header.
RENDER_PARAMS = {
    "renderer_version": 1,
    "image_size": IMAGE_SIZE,
    "anchor": "x = 16 + 32 posX, y = 16 + 32 posY (px; y down); pixel on iff centre inside",
    "rotation": "counter-clockwise on screen by 2*pi*(orientation_class mod 39)/39",
    "square_side": SQUARE_SIDE,
    "ellipse_semi_axes": list(ELLIPSE_SEMI_AXES),
    "heart_side": HEART_SIDE,
    "heart_pivot": "area centroid",
    "dtype": "float32",
}


# ---- rendering ------------------------------------------------------------------------------
def _radius(shape: int) -> float:
    """Distance from the pivot to the farthest point of a shape at scale 1 (px)."""
    if shape == SQUARE:
        return SQUARE_SIDE / math.sqrt(2.0)
    if shape == ELLIPSE:
        return max(ELLIPSE_SEMI_AXES)
    d, r, cy = _heart_geometry(torch.tensor(1.0))
    return max(float(d + cy), math.hypot(float(d / 2), float(d / 2 - cy)) + float(r))  # tip, lobes


def _render_shape(shape: int, classes: Tensor, out: Tensor) -> None:
    """Draw sprites of one shape, long classes (n, 6), into the zeroed uint8 view ``out`` (n, 4096).

    Only a square window around each anchor, just big enough for the largest sprite of the batch
    (at most 30 x 30 px), is evaluated; it is then scattered into place.
    """
    n = len(classes)
    dt = torch.float64
    scale_c, orient_c, px_c, py_c = (classes[:, k] for k in range(2, 6))
    scale = FACTOR_VALUES[2][scale_c]
    # Half window h: pixel centres reach at least h - 1 px from the anchor on every side.
    h = math.ceil(_radius(shape) * float(scale.max())) + 1
    w = 2 * h
    # Angle from the class, with class 39 (2*pi) folded onto class 0: both render identically.
    theta = (orient_c % (FACTOR_SIZES[3] - 1)).to(dt) * (2 * math.pi / (FACTOR_SIZES[3] - 1))
    ax = 16 + 32 * FACTOR_VALUES[4][px_c]  # anchor, screen x (columns), in [16, 48]
    ay = 16 + 32 * FACTOR_VALUES[5][py_c]  # anchor, screen y (rows, downwards)
    c0 = torch.round(ax).long() - h  # window origin, in [0, 64 - w] as h <= 16
    r0 = torch.round(ay).long() - h
    j = torch.arange(w, dtype=dt) + 0.5
    # Pixel centres relative to the anchor in math axes (x right, y UP), so that a positive
    # angle is counter-clockwise on screen.
    x = ((c0.to(dt) - ax)[:, None] + j).float()[:, None, :]  # (n, 1, w)
    y = ((ay - r0.to(dt))[:, None] - j).float()[:, :, None]  # (n, w, 1): screen y grows down
    cos = torch.cos(theta).float()[:, None, None]
    sin = torch.sin(theta).float()[:, None, None]
    # Rotate each pixel centre by -theta into the sprite's own frame.
    u = x * cos + y * sin  # (n, w, w)
    v = y * cos - x * sin
    s = scale.float()[:, None, None]
    if shape == SQUARE:
        half = (SQUARE_SIDE / 2) * s
        inside = torch.maximum(u.abs_(), v.abs_()) <= half
    elif shape == ELLIPSE:
        a, b = ELLIPSE_SEMI_AXES[0] * s, ELLIPSE_SEMI_AXES[1] * s
        inside = u.div_(a).square_().add_(v.div_(b).square_()) <= 1
    else:
        d, r, cy = _heart_geometry(s)
        v += cy  # relative to the diamond's centre (the pivot, the centroid, is cy above it)
        u.abs_()  # the heart is mirror-symmetric in u
        inside = u + v.abs() <= d
        inside |= (u - d / 2).square_().add_((v - d / 2).square_()) <= r * r
    rows = (r0[:, None] + torch.arange(w))[:, :, None] * IMAGE_SIZE  # (n, w, 1)
    flat = (rows + (c0[:, None] + torch.arange(w))[:, None, :]).view(n, -1)
    out.scatter_(1, flat, inside.view(n, -1).to(torch.uint8))


def _render_into(classes: Tensor, flat: Tensor, chunk: int) -> None:
    """Draw long classes (n, 6) into the uint8 view ``flat`` (n, 4096), ``chunk`` at a time."""
    for start in range(0, len(classes), chunk):
        part = flat[start : start + chunk]
        part.zero_()
        cls = classes[start : start + chunk]
        shapes = cls[:, 1]
        for k in shapes.unique().tolist():
            if bool((shapes == k).all()):
                _render_shape(k, cls, part)
            else:
                sel = (shapes == k).nonzero().squeeze(1)
                drawn = torch.zeros(len(sel), IMAGE_SIZE * IMAGE_SIZE, dtype=torch.uint8)
                _render_shape(k, cls[sel], drawn)
                part[sel] = drawn


def render(
    classes: Tensor, out: Tensor | None = None, chunk: int = 1024, workers: int | None = None
) -> Tensor:
    """uint8 (N, 64, 64) images with values {0, 1} of long factor classes (N, 6), official order.

    Vectorised over images, ``chunk`` images at a time to bound memory. Large inputs are cut into
    slices that ``workers`` Python threads (default: torch's intra-op thread count) draw
    concurrently while torch runs single-threaded (restored afterwards): a chunk's tensors are too
    small for intra-op parallelism, whose barriers cost up to 4x when other processes share the
    cores. The images do not depend on ``chunk`` or ``workers``.

    Args:
        classes: long (N, 6): color, shape, scale, orientation, posX, posY classes.
        out: optional contiguous uint8 (N, 64, 64) tensor to draw into; it is overwritten.
    """
    classes = torch.as_tensor(classes).long().cpu()
    if classes.dim() != 2 or classes.shape[1] != len(FACTOR_SIZES):
        raise ValueError(f"classes must be (N, {len(FACTOR_SIZES)}), got {tuple(classes.shape)}")
    n = len(classes)
    if n and ((classes < 0) | (classes >= torch.tensor(FACTOR_SIZES))).any():
        raise ValueError(f"factor classes out of range: sizes are {FACTOR_SIZES}")
    if out is None:
        out = torch.empty(n, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
    elif out.shape != (n, IMAGE_SIZE, IMAGE_SIZE) or out.dtype != torch.uint8 or not out.is_contiguous():
        raise ValueError(f"out must be a contiguous uint8 ({n}, 64, 64) tensor")
    flat = out.view(n, IMAGE_SIZE * IMAGE_SIZE)
    step = chunk * 8
    threads = torch.get_num_threads()
    workers = max(1, min(workers or threads, -(-n // step)))
    if workers == 1:
        _render_into(classes, flat, chunk)
        return out
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers) as pool:
            jobs = [
                pool.submit(_render_into, classes[i : i + step], flat[i : i + step], chunk)
                for i in range(0, n, step)
            ]
            for job in jobs:
                job.result()
    finally:
        torch.set_num_threads(threads)
    return out


def grid_classes(start: int, stop: int, sizes: tuple[int, ...] = FACTOR_SIZES) -> Tensor:
    """long (stop - start, K): the factor classes of grid indices start..stop-1."""
    return index_to_classes(torch.arange(start, stop), sizes)


def render_grid(
    sizes: tuple[int, ...] = FACTOR_SIZES, chunk: int = 1024, workers: int | None = None
) -> Tensor:
    """uint8 (prod(sizes), 64, 64): every grid point in index order, rendered into one tensor.

    ``sizes`` may shrink the grid (tests); the classes drawn are then the first ones of each factor.
    """
    return render(grid_classes(0, math.prod(sizes), sizes), chunk=chunk, workers=workers)


# ---- the rendered cache ---------------------------------------------------------------------
CACHE_NAME = "dsprites_rendered_64x64.zcache"
CACHE_MAGIC = b"ZOODSPR\x00"
CACHE_FORMAT = 1  # bump when the file layout changes
_PACKED_ROW = IMAGE_SIZE * IMAGE_SIZE // 8  # bytes per image, np.packbits big-endian bit order
_PROBES = 256
_READ_ROWS = 1 << 14  # images per read/unpack step


def _probe_indices(n: int) -> Tensor:
    """A fixed spread of grid indices whose renders fingerprint the renderer."""
    return torch.unique((torch.arange(_PROBES) * 2_654_435_761 + 12_345) % n)


_probes: dict[tuple[int, ...], tuple[Tensor, np.ndarray, str]] = {}


def _probe(sizes: tuple[int, ...]) -> tuple[Tensor, np.ndarray, str]:
    """(probe indices, their packed renders (P, 512), renderer fingerprint) for this grid."""
    key = tuple(sizes)
    if key not in _probes:
        index = _probe_indices(math.prod(sizes))
        packed = np.packbits(render(index_to_classes(index, sizes)).numpy().reshape(len(index), -1), axis=1)
        digest = hashlib.sha256(json.dumps(RENDER_PARAMS, sort_keys=True).encode())
        digest.update(packed.tobytes())
        _probes[key] = (index, packed, digest.hexdigest())
    return _probes[key]


def renderer_fingerprint(sizes: tuple[int, ...] = FACTOR_SIZES) -> str:
    """sha256 of the renderer's parameters and of its images at fixed probe points of the grid.

    A cache written by a renderer that draws any probe image differently is rebuilt, even if
    nobody bumped ``renderer_version``.
    """
    return _probe(sizes)[2]


def _cache_header(sizes: tuple[int, ...], crc: int) -> dict:
    n = math.prod(sizes)
    return {
        "format": CACHE_FORMAT,
        "sizes": list(sizes),
        "shape": [n, IMAGE_SIZE, IMAGE_SIZE],
        "encoding": "np.packbits per image (4096 px row-major -> 512 bytes), big-endian bits",
        "render_params": RENDER_PARAMS,
        "fingerprint": renderer_fingerprint(sizes),
        "payload_bytes": n * _PACKED_ROW,
        "payload_crc32": crc,
    }


def _write_payload(f, packed: np.ndarray) -> None:
    """Write the packed images in 16 MB pieces (a hook: tests crash the writer here)."""
    view = memoryview(packed.reshape(-1))
    step = 16 << 20
    for start in range(0, len(view), step):
        f.write(view[start : start + step])


def write_cache(path: str | os.PathLike, images: Tensor, sizes: tuple[int, ...] = FACTOR_SIZES) -> None:
    """Atomically write ``images`` (uint8 (N, 64, 64), {0, 1}) as a bit-packed cache at ``path``.

    The bytes go to a temp file in the same directory, are fsynced, and the temp file is then
    renamed over ``path`` (``os.replace``), so readers see either the old file or the complete
    new one. A process killed mid-write leaves only a ``.tmp`` file, which is never read (and is
    removed by a later build once stale).
    """
    path = Path(path)
    n = math.prod(sizes)
    if images.shape != (n, IMAGE_SIZE, IMAGE_SIZE) or images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 ({n}, 64, 64), got {images.dtype} {tuple(images.shape)}")
    packed = np.empty((n, _PACKED_ROW), dtype=np.uint8)
    flat = images.numpy().reshape(n, -1)
    crc = 0
    for start in range(0, n, _READ_ROWS):
        block = packed[start : start + _READ_ROWS]
        block[...] = np.packbits(flat[start : start + _READ_ROWS], axis=1)
        crc = zlib.crc32(block, crc)
    header = json.dumps(_cache_header(sizes, crc), sort_keys=True).encode()
    offset = _payload_offset(len(header))
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600 files; the cache is meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(CACHE_MAGIC + struct.pack("<Q", len(header)) + header)
            f.write(b"\x00" * (offset - f.tell()))
            _write_payload(f, packed)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _payload_offset(header_len: int) -> int:
    return -(-(len(CACHE_MAGIC) + 8 + header_len) // 4096) * 4096  # page-aligned payload


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale_temps(path: Path, age_s: float = 600.0) -> None:
    """Delete our temp files untouched for ``age_s`` (left by killed builds; live ones are fresh)."""
    now = time.time()
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > age_s:
                tmp.unlink()
        except OSError:
            pass


def _read_header(path: Path, sizes: tuple[int, ...]) -> tuple[dict, int] | None:
    """(header, payload offset) when ``path`` is a complete cache of this renderer, else None.

    Checks the magic, format version, grid sizes, renderer parameters and fingerprint, the exact
    file length, and that the stored probe images equal fresh renders. The payload checksum is
    checked while loading.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if f.read(len(CACHE_MAGIC)) != CACHE_MAGIC:
                return _reject(path, "not a zoo dSprites cache")
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > 1 << 20:
                return _reject(path, "corrupt header")
            header = json.loads(f.read(header_len))
            if not isinstance(header, dict):
                return _reject(path, "corrupt header")
            n = math.prod(sizes)
            expected = {
                "format": CACHE_FORMAT,
                "sizes": list(sizes),
                "render_params": RENDER_PARAMS,
                "fingerprint": renderer_fingerprint(sizes),
                "payload_bytes": n * _PACKED_ROW,
            }
            for key, value in expected.items():
                found = header.get(key)
                if found != value:
                    if isinstance(value, dict) and isinstance(found, dict):
                        found = {k: v for k, v in found.items() if value.get(k) != v}
                        value = {k: v for k, v in value.items() if found.get(k) != v}
                    return _reject(path, f"{key} differs (cache {found!r}, this code {value!r})")
            offset = _payload_offset(header_len)
            if size != offset + n * _PACKED_ROW:
                return _reject(path, f"{size} bytes, expected {offset + n * _PACKED_ROW} (truncated?)")
            probes, fresh, _ = _probe(sizes)
            stored = np.empty_like(fresh)
            for i, p in enumerate(probes.tolist()):
                f.seek(offset + p * _PACKED_ROW)
                f.readinto(memoryview(stored[i]))
        if not np.array_equal(fresh, stored):
            return _reject(path, "stored images differ from this renderer's")
        return header, offset
    except (OSError, ValueError, struct.error) as err:  # json errors are ValueErrors
        return _reject(path, f"unreadable ({err})")


def _reject(path: Path, why: str) -> None:
    if path.exists():
        log.warning("dSprites cache %s ignored (it is rebuilt on the next build): %s", path, why)
    return None


def cache_is_valid(path: str | os.PathLike, sizes: tuple[int, ...] = FACTOR_SIZES) -> bool:
    """Cheap check (header, length, probe images) that ``path`` holds this renderer's grid."""
    return Path(path).exists() and _read_header(Path(path), sizes) is not None


def read_cache(path: str | os.PathLike, sizes: tuple[int, ...] = FACTOR_SIZES) -> Tensor | None:
    """The cached grid as uint8 (N, 64, 64), or None when the file is missing, stale or corrupt.

    Reads and unpacks block by block into one preallocated tensor (peak memory ~ the grid).
    """
    path = Path(path)
    if not path.exists():
        return None
    found = _read_header(path, sizes)
    if found is None:
        return None
    header, offset = found
    n = math.prod(sizes)
    out = torch.empty(n, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
    flat = out.numpy().reshape(n, -1)
    buf = np.empty((min(n, _READ_ROWS), _PACKED_ROW), dtype=np.uint8)
    crc = 0
    with open(path, "rb") as f:
        f.seek(offset)
        for start in range(0, n, _READ_ROWS):
            rows = min(_READ_ROWS, n - start)
            block = buf[:rows]
            if f.readinto(memoryview(block).cast("B")) != block.nbytes:
                return _reject(path, "short read")
            crc = zlib.crc32(block, crc)
            flat[start : start + rows] = np.unpackbits(block, axis=1)
    if crc != header["payload_crc32"]:
        return _reject(path, "payload checksum mismatch")
    return out


# ---- official files -------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _grid_check(path: Path, what: str, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError("data.data_dir", str(path), f"the official dSprites file: {what} {expected}")


def load_official_hdf5(path: str | os.PathLike, sizes: tuple[int, ...] = FACTOR_SIZES) -> Tensor:
    """``imgs`` of the official HDF5 as uint8 (N, 64, 64), after verifying its sha256."""
    path = Path(path)
    actual = _sha256(path)
    if actual != HDF5_SHA256:
        raise ConfigError(
            "data.data_dir",
            str(path),
            f"{path.name} with sha256 {HDF5_SHA256} ({HDF5_SIZE} bytes); "
            f"actual sha256 {actual} ({path.stat().st_size} bytes)",
        )
    import h5py

    n = math.prod(sizes)
    with h5py.File(path, "r") as f:
        dset = f["imgs"]
        _grid_check(path, "imgs is", dset.shape == (n, 64, 64) and dset.dtype == np.uint8,
                    f"uint8 {(n, 64, 64)}, found {dset.dtype} {dset.shape}")
        out = torch.empty(n, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
        dset.read_direct(out.numpy())
    return out


def load_official_npz(path: str | os.PathLike, sizes: tuple[int, ...] = FACTOR_SIZES) -> Tensor:
    """``imgs`` of the official npz as uint8 (N, 64, 64), checked against our grid.

    No checksum is published for the npz, so its ``imgs`` shape, dtype and value set and its
    ``latents_classes`` (and ``latents_values``) are compared with the grid instead. ``metadata``
    (a pickle) is never read and pickles are never allowed.
    """
    path = Path(path)
    n = math.prod(sizes)
    with np.load(path, allow_pickle=False) as z:
        missing = {"imgs", "latents_classes"} - set(z.files)
        _grid_check(path, "arrays", not missing, f"imgs and latents_classes, missing {sorted(missing)}")
        classes = torch.from_numpy(z["latents_classes"])
        expected = grid_classes(0, n, sizes)
        _grid_check(path, "latents_classes is", classes.shape == expected.shape and
                    torch.equal(classes.long(), expected), f"the C-order grid of sizes {sizes}")
        if "latents_values" in z.files:
            values = torch.from_numpy(z["latents_values"]).double()
            want = torch.stack([FACTOR_VALUES[k][expected[:, k]] for k in range(len(sizes))], 1)
            _grid_check(path, "latents_values are", values.shape == want.shape and
                        torch.allclose(values, want, atol=1e-6), "the factor values of the reference notes")
        del classes, expected
        imgs = z["imgs"]
    _grid_check(path, "imgs is", imgs.shape == (n, 64, 64) and imgs.dtype == np.uint8,
                f"uint8 {(n, 64, 64)}, found {imgs.dtype} {imgs.shape}")
    _grid_check(path, "imgs values are", n == 0 or int(imgs.max()) <= 1, "in {0, 1}")
    return torch.from_numpy(imgs)


def load_grid(
    data_dir: str | os.PathLike, sizes: tuple[int, ...] = FACTOR_SIZES, write: bool = True
) -> Tensor:
    """The whole grid uint8 (N, 64, 64): official file, else our cache, else render (+ cache)."""
    data_dir = Path(data_dir)
    if (data_dir / OFFICIAL_HDF5).exists():
        return load_official_hdf5(data_dir / OFFICIAL_HDF5, sizes)
    if (data_dir / OFFICIAL_NPZ).exists():
        return load_official_npz(data_dir / OFFICIAL_NPZ, sizes)
    cache = data_dir / CACHE_NAME
    images = read_cache(cache, sizes)
    if images is not None:
        return images
    t0 = time.perf_counter()
    images = render_grid(sizes)
    log.info("rendered %d dSprites images in %.1f s", len(images), time.perf_counter() - t0)
    if write:
        write_cache(cache, images, sizes)
        log.info("wrote the dSprites cache %s", cache)
    return images


class DSpritesDataModule(FactorDataModule):
    """dSprites: 737,280 binary 64x64 sprites; factors color, shape, scale, orientation, posX, posY.

    ``color`` is constant, so the ground truth is the other five factors. With ``subset`` only the
    drawn grid points are rendered (no cache); otherwise the full grid comes from the official
    file in ``data_dir`` or from the rendered cache, which :meth:`prepare_data` builds.
    """

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    factor_values = FACTOR_VALUES
    ground_truth = (1, 2, 3, 4, 5)
    image_shape = (1, IMAGE_SIZE, IMAGE_SIZE)
    max_value = 1

    def render(self, classes: Tensor) -> Tensor:
        return render(classes)

    def prepare_data(self) -> None:
        """Build the rendered cache once (Lightning calls this on one process per node)."""
        if self.subset is not None:
            return  # setup() renders just the subset
        data_dir = Path(self.data_dir)
        if (data_dir / OFFICIAL_HDF5).exists() or (data_dir / OFFICIAL_NPZ).exists():
            return
        if cache_is_valid(data_dir / CACHE_NAME, self.factor_sizes):
            return
        images = render_grid(self.factor_sizes)
        write_cache(data_dir / CACHE_NAME, images, self.factor_sizes)

    def load_images(self) -> Tensor:
        return load_grid(self.data_dir, self.factor_sizes)
