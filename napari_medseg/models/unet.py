"""A compact 3D U-Net with dropout (so Monte Carlo sampling works)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` that runs oneDNN's kernel on the CPU for every batch size.

    PyTorch picks oneDNN for a CPU float32 convolution only when the batch is
    larger than one or ``N * C * D * H`` exceeds 20,480; otherwise it falls back
    to ``slow_conv3d`` (im2col), 2-5x slower for this network's deeper levels and
    small patches at batch 1: a click network's patch, a last window. Same
    weights and state-dict keys as ``nn.Conv3d``; outputs equal to float32
    rounding. Autocast and other devices keep PyTorch's own choice.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():  # TorchScript keeps PyTorch's own dispatch
            return self._conv_forward(input, self.weight, self.bias)
        return self.with_weight(input, self.weight, self.bias)

    @torch.jit.unused
    def with_weight(self, input: torch.Tensor, weight: torch.Tensor,
                    bias: torch.Tensor | None) -> torch.Tensor:
        """This convolution (padding, stride, dispatch) with another weight and bias: for
        example the slice of its own weight that reads some of its input channels."""
        if (input.device.type == "cpu" and input.dtype == torch.float32
                and self.padding_mode == "zeros" and not isinstance(self.padding, str)
                and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
                and not torch.is_autocast_enabled("cpu")):
            return torch.ops.aten.mkldnn_convolution(input, weight.contiguous(), bias,
                                                     self.padding, self.stride, self.dilation,
                                                     self.groups)
        return self._conv_forward(input, weight, bias)


class ConvBlock(nn.Sequential):
    """Two 3x3x3 convolutions, each with instance norm and LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0):
        layers: list[nn.Module] = []
        for index in range(2):
            layers += [Conv3d(in_channels if index == 0 else out_channels, out_channels,
                                 kernel_size=3, padding=1, bias=False),
                       nn.InstanceNorm3d(out_channels, affine=True),
                       nn.LeakyReLU(0.01, inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout3d(dropout))
        super().__init__(*layers)


class UNet3D(nn.Module):
    """3D U-Net: strided-convolution encoder, transposed-convolution decoder.

    Parameters
    ----------
    in_channels : int
        Number of input contrasts.
    n_classes : int
        Output classes including background (logits, softmax over dim 1).
    widths : sequence of int
        Feature channels per level; ``len(widths) - 1`` downsamplings by 2,
        so patch sides must be multiples of ``2 ** (len(widths) - 1)``.
    dropout : float
        Channel dropout in the two deepest levels and the decoder (kept on
        at inference for Monte Carlo dropout).

    Examples
    --------
    >>> net = UNet3D(4, 4, widths=(8, 16, 32))
    >>> net(torch.zeros(1, 4, 16, 16, 16)).shape
    torch.Size([1, 4, 16, 16, 16])
    """

    def __init__(self, in_channels: int, n_classes: int, widths: Sequence[int] = (12, 24, 48, 96),
                 dropout: float = 0.1):
        super().__init__()
        widths = list(widths)
        deep = len(widths) - 2
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        previous = in_channels
        for level, width in enumerate(widths):
            self.encoders.append(ConvBlock(previous, width, dropout if level >= deep else 0.0))
            self.downs.append(Conv3d(width, width, kernel_size=2, stride=2, bias=False)
                              if level < len(widths) - 1 else nn.Identity())
            previous = width
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in range(len(widths) - 2, -1, -1):
            self.ups.append(nn.ConvTranspose3d(widths[level + 1], widths[level], kernel_size=2,
                                               stride=2, bias=False))
            self.decoders.append(ConvBlock(2 * widths[level], widths[level],
                                           dropout if level >= deep - 1 and level > 0 else 0.0))
        self.head = Conv3d(widths[0], n_classes, kernel_size=1)
        self.divisor = 2 ** (len(widths) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, n_classes, Z, Y, X]`` for input ``[B, in_channels, Z, Y, X]``."""
        skips: list[torch.Tensor] = []
        for encoder, down in zip(self.encoders, self.downs):  # the last "down" is Identity
            x = encoder(x)
            skips.append(x)
            x = down(x)
        skips.pop()  # the bottleneck output is x itself
        for up, decoder in zip(self.ups, self.decoders):
            x = decoder(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)

    def forward_samples(self, x: torch.Tensor, samples: int, per_pass: int = 4
                        ) -> torch.Tensor:
        """Monte Carlo forward: ``samples`` stochastic outputs per input, sample-major.

        The encoder levels before the first dropout layer are deterministic, so
        they run once and their activations are shared by every sample (also
        the part of a decoder's first convolution that reads them as a skip);
        only the rest of the network runs ``samples`` times (with dropout active, it
        draws a new mask per sample), ``per_pass`` samples at a time (on a CPU,
        a pass of 8 48^3 samples cost 10-17 % more per sample than passes of 4).
        Output ``[samples * B, n_classes, ...]``, equal in distribution to
        ``forward`` on the input repeated ``samples`` times.

        Parameters
        ----------
        x : Tensor of shape (B, C, Z, Y, X)
            The input.
        samples : int
            Stochastic outputs per input.
        per_pass : int
            Samples run through the stochastic levels together.
        """
        skips: list[torch.Tensor] = []
        shared = 0
        for encoder, down in zip(self.encoders, self.downs):
            if any(isinstance(m, nn.Dropout3d) for m in encoder.modules()):
                break
            x = encoder(x)
            skips.append(x)
            x = down(x)
            shared += 1
        outputs = [self._sampled_levels(x, skips, shared, min(per_pass, samples - done))
                   for done in range(0, samples, per_pass)]
        return torch.cat(outputs)

    def _sampled_levels(self, x: torch.Tensor, shared_skips: list[torch.Tensor], shared: int,
                        samples: int) -> torch.Tensor:
        """The levels from the first dropout layer on, for ``samples`` copies of ``x``.

        A decoder level whose skip comes from a shared encoder level reads it
        through the second half of its first convolution's input channels;
        convolution is linear, so that half runs once on the skip and is added
        to every sample's first half (`_decode_shared_skip`).
        """
        x = x.repeat(samples, *([1] * (x.dim() - 1)))
        skips = list(shared_skips)
        for encoder, down in zip(list(self.encoders)[shared:], list(self.downs)[shared:]):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        skips.pop()
        for up, decoder in zip(self.ups, self.decoders):
            skip = skips.pop()
            if skip.shape[0] == x.shape[0]:
                x = decoder(torch.cat([up(x), skip], dim=1))
            else:
                x = self._decode_shared_skip(decoder, up(x), skip, samples)
        return self.head(x)

    @staticmethod
    def _decode_shared_skip(decoder: ConvBlock, upsampled: torch.Tensor, skip: torch.Tensor,
                            samples: int) -> torch.Tensor:
        """``decoder(cat([upsampled, skip repeated samples times]))``, the skip's part of the
        first convolution computed once for all samples (sample-major batches)."""
        first = decoder[0]
        n_up = upsampled.shape[1]
        from_skip = first.with_weight(skip, first.weight[:, n_up:], None)
        out = first.with_weight(upsampled, first.weight[:, :n_up], first.bias)
        out = (out.unflatten(0, (samples, skip.shape[0])) + from_skip).flatten(0, 1)
        for layer in list(decoder)[1:]:
            out = layer(out)
        return out


ARCHITECTURES = {"unet3d": UNet3D}


def build_network(name: str, arguments: dict) -> nn.Module:
    """Instantiate a registered architecture by name with keyword arguments.

    Parameters
    ----------
    name : str
        A key of ``ARCHITECTURES``.
    arguments : dict
        Keyword arguments of its constructor.
    """
    from napari_medseg.errors import InputError

    if name not in ARCHITECTURES:
        raise InputError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[name](**arguments)
    except TypeError as error:
        raise InputError(f"architecture {name!r} does not accept arguments {arguments}: "
                         f"{error}") from error
