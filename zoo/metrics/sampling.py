"""Drawing factor samples from a :class:`~zoo.data.factor.FactorDataModule` and encoding their images.

Every draw goes through ``datamodule.sample_factors`` (uniform over the grid, or over a ``mask``) and
``datamodule.images_for``; factors that are not ground truth (dSprites' constant colour) are drawn like
the others but never fixed or returned. All randomness comes from the ``torch.Generator`` passed in, and
all factors of a metric are drawn before anything is encoded, so results do not depend on the encoding
batch size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from zoo.config import ConfigError

#: images per ``encode`` call.
ENCODE_BATCH = 1024

Encoder = Callable[[Tensor], Tensor]


def check_mask(datamodule, mask: Tensor | None) -> Tensor | None:
    """Validate a bool mask over grid indices (length ``datamodule.num_points``); returns it on the CPU."""
    if mask is None:
        return None
    n = datamodule.num_points
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != (n,):
        shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        dtype = getattr(mask, "dtype", None)
        raise ConfigError("metrics.mask", f"<{dtype} of shape {shape}>", f"a bool tensor of shape ({n},)")
    mask = mask.cpu()
    if not bool(mask.any()):
        raise ConfigError("metrics.mask", "<no grid point selected>", "a mask that selects at least one grid point")
    return mask


def infer_device(encode: Encoder) -> torch.device | None:
    """The device of the module behind ``encode`` (a bound ``nn.Module`` method or a module), if any."""
    owner = encode if isinstance(encode, torch.nn.Module) else getattr(encode, "__self__", None)
    if isinstance(owner, torch.nn.Module):
        p = next(owner.parameters(), None)
        if p is not None:
            return p.device
    return None


@contextlib.contextmanager
def eval_mode(encode: Encoder) -> Iterator[None]:
    """Put the module behind ``encode`` in eval mode while scoring (restored afterwards), no autograd."""
    owner = encode if isinstance(encode, torch.nn.Module) else getattr(encode, "__self__", None)
    was_training = isinstance(owner, torch.nn.Module) and owner.training
    if was_training:
        owner.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if was_training:
            owner.train()


def encode_factors(
    encode: Encoder,
    datamodule,
    factors: Tensor,
    batch_size: int = ENCODE_BATCH,
    device: torch.device | str | None = None,
) -> Tensor:
    """Codes (M, D) float32 on the CPU of the images of factor classes (M, K) (all factors of the grid).

    ``encode`` gets float images (B, C, H, W) on ``device`` (default: the device of the module behind
    ``encode``, else wherever ``images_for`` puts them); a tuple output (mean, logvar) uses its first item.
    """
    if batch_size < 1:
        raise ConfigError("metrics.batch_size", batch_size, "an integer >= 1")
    device = device if device is not None else infer_device(encode)
    out = []
    with eval_mode(encode):
        for i in range(0, len(factors), batch_size):
            images = datamodule.images_for(factors[i : i + batch_size])
            if device is not None:
                images = images.to(device, non_blocking=True)
            z = encode(images)
            if isinstance(z, (tuple, list)):
                z = z[0]
            if z.dim() != 2 or len(z) != len(images):
                raise ValueError(f"encode must return codes (B, D) for B images, got shape {tuple(z.shape)}")
            out.append(z.detach().float().cpu())
    return torch.cat(out) if out else torch.empty(0, 0)


def sample_codes(
    encode: Encoder,
    datamodule,
    n: int,
    generator: torch.Generator | None = None,
    mask: Tensor | None = None,
    batch_size: int = ENCODE_BATCH,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """Draw ``n`` points uniformly over the grid (or ``mask``) and encode them.

    Returns:
        codes float32 (n, D) and factor classes long (n, len(ground_truth)): only the ground-truth factors.
    """
    if n < 1:
        raise ConfigError("metrics.num_points", n, "an integer >= 1")
    mask = check_mask(datamodule, mask)
    factors = datamodule.sample_factors(n, generator, mask)
    codes = encode_factors(encode, datamodule, factors, batch_size, device)
    return codes, factors[:, list(datamodule.ground_truth)]


class FactorSampler:
    """Draws batches that share one ground-truth factor, uniformly over the grid or over a mask.

    Without a mask this is the reference's recipe (draw uniformly, then overwrite the fixed column).
    With a mask, a point that shares factor k's class with its anchor is drawn uniformly among the
    masked grid points with that class, so every drawn point stays inside the mask.
    """

    def __init__(self, datamodule, mask: Tensor | None) -> None:
        self.dm = datamodule
        self.mask = check_mask(datamodule, mask)
        self.gt = list(datamodule.ground_truth)
        if not self.gt:
            raise ValueError(f"{type(datamodule).__name__} declares no ground-truth factors")
        sizes = datamodule.factor_sizes
        if self.mask is None:
            self.varying = [j for j, c in enumerate(self.gt) if sizes[c] > 1]
            return
        self.allowed = self.mask.nonzero().squeeze(1)
        classes = datamodule.index_to_classes(self.allowed)
        self.tables = []
        self.varying = []
        for j, c in enumerate(self.gt):
            col = classes[:, c]
            counts = torch.bincount(col, minlength=sizes[c])
            self.tables.append((torch.argsort(col, stable=True), counts, torch.cumsum(counts, 0) - counts))
            if int((counts > 0).sum()) > 1:
                self.varying.append(j)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n points (n, K) uniformly over the grid or the mask."""
        return self.dm.sample_factors(n, generator, self.mask)

    def fixed_index(self, n: int, generator: torch.Generator) -> Tensor:
        """n ground-truth positions j (into ``ground_truth``) to fix, uniform over the varying factors."""
        if not self.varying:
            raise ValueError("no ground-truth factor varies over the (masked) grid")
        pick = torch.randint(len(self.varying), (n,), generator=generator)
        return torch.tensor(self.varying, dtype=torch.long)[pick]

    def sharing(self, anchors: Tensor, fixed: Tensor, m: int, generator: torch.Generator) -> Tensor:
        """For each anchor (n, K) draw m points (n, m, K) whose factor ``gt[fixed[i]]`` equals the anchor's."""
        n, k = anchors.shape
        cols = torch.tensor(self.gt, dtype=torch.long)[fixed]  # (n,) grid column of the fixed factor
        if self.mask is None:
            out = self.dm.sample_factors(n * m, generator).view(n, m, k)
            rows = torch.arange(n)
            out[rows, :, cols] = anchors[rows, cols].unsqueeze(1)
            return out
        out = torch.empty(n, m, k, dtype=torch.long)
        for j in range(len(self.gt)):
            sel = (fixed == j).nonzero().squeeze(1)
            if len(sel) == 0:
                continue
            order, counts, starts = self.tables[j]
            value = anchors[sel, self.gt[j]]
            cnt, st = counts[value], starts[value]
            u = torch.rand(len(sel), m, generator=generator, dtype=torch.float64)
            offset = torch.minimum((u * cnt[:, None]).long(), (cnt - 1)[:, None])
            out[sel] = self.dm.index_to_classes(self.allowed[order[st[:, None] + offset]].view(-1)).view(-1, m, k)
        return out
