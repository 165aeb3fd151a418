"""SqueezeNet 1.1 with torchvision's module names (torchvision.models.squeezenet)."""
from __future__ import annotations

import torch
from torch import nn

from ._common import scaled


class Fire(nn.Module):
    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int):
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    """small_input: 3x3 stride-1 stem (28 -> 28 -> 14 -> 7 -> 4 through the three ceil-mode pools)."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0,
                 small_input: bool = False, dropout: float = 0.5):
        super().__init__()

        def fire(inplanes: int, squeeze: int, expand: int) -> Fire:
            return Fire(scaled(inplanes, width), scaled(squeeze, width), scaled(expand, width), scaled(expand, width))

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, scaled(64, width), kernel_size=3, stride=1 if small_input else 2,
                      padding=1 if small_input else 0),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            fire(64, 16, 64), fire(128, 16, 64),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            fire(128, 32, 128), fire(256, 32, 128),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            fire(256, 48, 192), fire(384, 48, 192), fire(384, 64, 256), fire(512, 64, 256),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Conv2d(2 * scaled(256, width), num_classes, kernel_size=1),
            nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                final = m is self.classifier[1]
                nn.init.normal_(m.weight, mean=0.0, std=0.01) if final else nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


def squeezenet1_1(**kwargs) -> SqueezeNet:
    return SqueezeNet(**kwargs)
