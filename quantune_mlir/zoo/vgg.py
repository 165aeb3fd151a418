"""VGG16 with batch norm, with torchvision's module names (torchvision.models.vgg, config "D")."""
from __future__ import annotations

import torch
from torch import nn

from ._common import scaled

_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    """small_input: the last two max pools become identities (28 -> 14 -> 7 -> 3) and the classifier
    reads a 1x1 average; the module indices, and so the checkpoint keys, stay torchvision's."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0,
                 small_input: bool = False, hidden: int = 4096, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        pools = 0
        for item in _VGG16:
            if item == "M":
                pools += 1
                keep_pool = not small_input or pools <= 3
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2) if keep_pool else nn.Identity())
            else:
                out = scaled(item, width)
                layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1), nn.BatchNorm2d(out),
                           nn.ReLU(inplace=True)]
                channels = out
        self.features = nn.Sequential(*layers)
        pooled = 1 if small_input else 7
        self.avgpool = nn.AdaptiveAvgPool2d((pooled, pooled))
        self.classifier = nn.Sequential(
            nn.Linear(channels * pooled * pooled, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def vgg16_bn(**kwargs) -> VGG:
    return VGG(**kwargs)
