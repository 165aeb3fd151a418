"""Building blocks shared by the zoo models, named as torchvision names them."""
from __future__ import annotations

from torch import nn


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: nearest multiple of divisor, never more than 10 % below value."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def scaled(channels: int, width: float) -> int:
    return channels if width == 1.0 else make_divisible(channels * width)


class Conv2dNormActivation(nn.Sequential):
    """conv (index 0), batch norm (1), activation (2): torchvision.ops.misc's layout and key names."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, activation: type[nn.Module] = nn.ReLU6):
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            activation(inplace=True),
        )
