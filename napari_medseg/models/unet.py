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


def joined(upsampled: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """``cat([upsampled, skip])`` over channels, in ``upsampled``'s channels-last layout
    when reduced precision runs in it (bf16 on the CPU, `models.device.place_network`).

    The encoder's output (the skip) leaves its instance norm in the standard layout;
    concatenated so, the result is standard too, and the next convolution reorders
    all its channels to channels-last, a slow copy at the full resolution (8 ms for
    four 24-channel 48^3 windows against 1.6 ms to reorder the skip's 12 first).
    The values are the same; float32 keeps its layout.

    Parameters
    ----------
    upsampled : Tensor of shape (B, C1, Z, Y, X)
        The transposed convolution's output.
    skip : Tensor of shape (B, C2, Z, Y, X)
        The encoder's output at that level.
    """
    if (upsampled.dtype != torch.float32 and not upsampled.is_contiguous()
            and upsampled.is_contiguous(memory_format=torch.channels_last_3d)):
        skip = skip.contiguous(memory_format=torch.channels_last_3d)
    return torch.cat([upsampled, skip], dim=1)


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
            x = decoder(joined(up(x), skips.pop()))
        return self.head(x)

    def forward_samples(self, x: torch.Tensor, samples: int, per_pass: int = 4
                        ) -> torch.Tensor:
        """Monte Carlo forward: ``samples`` stochastic outputs per input, sample-major.

        Everything before the first dropout layer in training mode is
        deterministic, so it runs once and is shared by every sample: the
        dropout-free encoder levels, the convolutions of the block whose end
        drops channels, and the part of a decoder's first convolution that
        reads a shared skip (`_join`). Only the rest runs ``samples`` times, each
        drawing its own masks, ``per_pass`` samples at a time (on a CPU, a pass
        of 8 48^3 samples cost 10-17 % more per sample than passes of 4). With
        ``per_pass >= samples`` the dropout layers draw the same masks, from the
        same random state, as ``forward`` on the input repeated ``samples`` times.

        Parameters
        ----------
        x : Tensor of shape (B, C, Z, Y, X)
            The input.
        samples : int
            Stochastic outputs per input.
        per_pass : int
            Samples run through the stochastic levels together.

        Returns
        -------
        Tensor of shape (samples * B, n_classes, Z, Y, X)
        """
        steps = self._steps()
        cut = next((index for index, (_, module) in enumerate(steps)
                    if isinstance(module, nn.Dropout3d) and module.training), len(steps))
        skips: list[torch.Tensor] = []
        x = self._run(steps[:cut], x, skips)
        outputs = []
        for done in range(0, samples, per_pass):
            copies = min(per_pass, samples - done)
            outputs.append(self._run(steps[cut:], x.repeat(copies, *([1] * (x.dim() - 1))),
                                     list(skips)))
        return torch.cat(outputs)

    def _steps(self) -> list[tuple[str, nn.Module | None]]:
        """``forward`` as a flat list of steps (`_run`), each layer of a block its own
        step, so that `forward_samples` can cut it at any dropout layer (``forward``
        stays written out: TorchScript compiles it)."""
        steps: list[tuple[str, nn.Module | None]] = []
        for encoder, down in zip(self.encoders, self.downs):
            steps += [("apply", layer) for layer in encoder]
            steps += [("push", None), ("apply", down)]
        steps.append(("pop", None))  # the bottleneck's skip is x itself
        for up, decoder in zip(self.ups, self.decoders):
            steps += [("apply", up), ("join", decoder[0])]
            steps += [("apply", layer) for layer in list(decoder)[1:]]
        steps.append(("apply", self.head))
        return steps

    @staticmethod
    def _run(steps: list[tuple[str, nn.Module | None]], x: torch.Tensor,
             skips: list[torch.Tensor]) -> torch.Tensor:
        """Run `_steps` on ``x``; ``skips`` holds the encoder outputs not yet joined."""
        for kind, module in steps:
            if kind == "apply":
                x = module(x)
            elif kind == "push":
                skips.append(x)
            elif kind == "pop":
                skips.pop()
            else:
                x = UNet3D._join(module, x, skips.pop())
        return x

    @staticmethod
    def _join(first: Conv3d, upsampled: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``first(cat([upsampled, skip]))``; a skip shared by every sample (its batch
        smaller than the upsampled one's, sample-major) goes through its half of the
        weights once, added to each sample's other half (convolution is linear)."""
        if skip.shape[0] == upsampled.shape[0]:
            return first(joined(upsampled, skip))
        n_up = upsampled.shape[1]
        from_skip = first.with_weight(skip, first.weight[:, n_up:], None)
        out = first.with_weight(upsampled, first.weight[:, :n_up], first.bias)
        samples = upsampled.shape[0] // skip.shape[0]
        return (out.unflatten(0, (samples, skip.shape[0])) + from_skip).flatten(0, 1)


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
