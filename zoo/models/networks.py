"""The one convolutional encoder/decoder family that every model builds on.

Sizes follow the image: stride-2 4x4 convolutions halve the resolution while it is even and
larger than 7, so 64x64 -> 4x4 after four convolutions (Burgess et al. 2018) and 28x28 -> 7x7
after two (Chen et al. 2016, InfoGAN MNIST). The decoder mirrors the encoder exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def conv_resolutions(size: int, num_convs: int | None = None) -> list[int]:
    """Resolutions after each stride-2 conv: halve while even and > 7 (e.g. 64 -> [32, 16, 8, 4])."""
    out = []
    while size % 2 == 0 and size > 7 and (num_convs is None or len(out) < num_convs):
        size //= 2
        out.append(size)
    return out


def conv_channels(image_shape: Sequence[int], width: int, growth: int = 1) -> list[int]:
    """Widths of the stride-2 convs the image allows, input side first: ``width * growth**i``.

    Burgess et al. (2018): width 32, growth 1 (64x64 -> [32, 32, 32, 32]; 28x28 -> [32, 32]).
    DCGAN / InfoGAN: width 64, growth 2 (64x64 -> [64, 128, 256, 512]; 28x28 -> [64, 128]).
    """
    return [width * growth**i for i in range(len(conv_resolutions(image_shape[1])))]


def _act(negative_slope: float) -> nn.Module:
    return nn.LeakyReLU(negative_slope) if negative_slope > 0 else nn.ReLU()


class ConvEncoder(nn.Module):
    """Images (B, C, H, W) -> features (B, out_dim), or the last hidden layer if ``out_dim`` is None.

    Args:
        image_shape: (C, H, W) of the input.
        channels: output channels of the stride-2 4x4 convolutions, input side first; their number
            must match :func:`conv_resolutions` of the image (4 for 64x64, 2 for 28x28).
        hidden: widths of the fully connected layers after the convolutions.
        out_dim: width of the final linear layer (no activation), or None to end at ``hidden[-1]``.
        batchnorm: batch normalisation after every layer but the first conv and the output.
        negative_slope: LeakyReLU slope (0 = ReLU).
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        channels: Sequence[int] = (32, 32, 32, 32),
        hidden: Sequence[int] = (256, 256),
        out_dim: int | None = None,
        batchnorm: bool = False,
        negative_slope: float = 0.0,
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        res = conv_resolutions(h)
        if h != w or len(res) < len(channels):
            raise ValueError(
                f"image_shape={tuple(image_shape)} allows at most {len(res)} stride-2 convolutions "
                f"(square, even sizes > 7), got {len(channels)} channels"
            )
        layers: list[nn.Module] = []
        for i, ch in enumerate(channels):
            layers.append(nn.Conv2d(c, ch, 4, stride=2, padding=1, bias=not (batchnorm and i > 0)))
            if batchnorm and i > 0:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(_act(negative_slope))
            c = ch
        layers.append(nn.Flatten())
        width = c * res[len(channels) - 1] ** 2 if channels else c * h * w
        for hd in hidden:
            layers += [nn.Linear(width, hd, bias=not batchnorm)]
            layers += [nn.BatchNorm1d(hd)] if batchnorm else []
            layers += [_act(negative_slope)]
            width = hd
        if out_dim is not None:
            layers.append(nn.Linear(width, out_dim))
            width = out_dim
        self.net = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """Latents (B, in_dim) -> image logits (B, C, H, W): the mirror image of :class:`ConvEncoder`.

    ``channels`` is given in the encoder's order (input side first); the decoder starts from
    ``channels[-1]`` maps at the smallest resolution and ends with a transposed conv to C channels.
    The output is unbounded (logits); models apply a sigmoid to get pixel means in [0, 1].
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        in_dim: int,
        channels: Sequence[int] = (32, 32, 32, 32),
        hidden: Sequence[int] = (256, 256),
        batchnorm: bool = False,
        negative_slope: float = 0.0,
    ) -> None:
        super().__init__()
        c_img, h, w = image_shape
        res = conv_resolutions(h)
        if h != w or len(res) < len(channels) or not channels:
            raise ValueError(
                f"image_shape={tuple(image_shape)} allows at most {len(res)} stride-2 convolutions "
                f"(square, even sizes > 7), got {len(channels)} channels"
            )
        self.start = (channels[-1], res[len(channels) - 1], res[len(channels) - 1])
        layers: list[nn.Module] = []
        width = in_dim
        for hd in [*hidden, int(torch.tensor(self.start).prod())]:
            layers += [nn.Linear(width, hd, bias=not batchnorm)]
            layers += [nn.BatchNorm1d(hd)] if batchnorm else []
            layers += [_act(negative_slope)]
            width = hd
        layers.append(nn.Unflatten(1, self.start))
        outs = [*reversed(channels[:-1]), c_img]
        c = channels[-1]
        for i, ch in enumerate(outs):
            last = i == len(outs) - 1
            layers.append(nn.ConvTranspose2d(c, ch, 4, stride=2, padding=1, bias=last or not batchnorm))
            if not last:
                layers += [nn.BatchNorm2d(ch)] if batchnorm else []
                layers.append(_act(negative_slope))
            c = ch
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)
