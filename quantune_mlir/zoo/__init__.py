"""The paper's five CNNs, each in an ImageNet and a small-image (28x28, Fashion-MNIST) configuration.

Module names follow torchvision, so a torchvision state_dict loads into the ImageNet configuration with
strict=True.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ..errors import QuantuneError
from .mobilenetv2 import mobilenet_v2
from .resnet import resnet18, resnet50
from .squeezenet import squeezenet1_1
from .vgg import vgg16_bn

_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "squeezenet1_1": squeezenet1_1,
    "vgg16_bn": vgg16_bn,
    "mobilenet_v2": mobilenet_v2,
}

_SMALL_WIDTH: dict[str, dict[str, Any]] = {
    "resnet18": {"width": 0.5},
    "resnet50": {"width": 0.25},
    "squeezenet1_1": {"width": 0.5},
    "vgg16_bn": {"width": 0.25, "hidden": 256},
    "mobilenet_v2": {"width": 0.5},
}

CONFIGS = ("imagenet", "small")


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry: the model name, its configuration and the builder arguments that make it."""

    name: str
    config: str
    input_shape: tuple[int, ...]
    num_classes: int
    builder_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.name}-{self.config}"

    def build(self) -> nn.Module:
        return _BUILDERS[self.name](num_classes=self.num_classes, **self.builder_kwargs).eval()


def zoo_model(name: str, config: str = "imagenet") -> ZooModel:
    if name not in _BUILDERS:
        raise QuantuneError(f"unknown zoo model '{name}': choose one of {', '.join(_BUILDERS)}")
    if config not in CONFIGS:
        raise QuantuneError(f"unknown configuration '{config}' for {name}: choose one of {', '.join(CONFIGS)}")
    if config == "imagenet":
        return ZooModel(name, config, (1, 3, 224, 224), 1000)
    kwargs = {"in_channels": 1, "small_input": True, **_SMALL_WIDTH[name]}
    return ZooModel(name, config, (1, 1, 28, 28), 10, kwargs)


def parse_zoo_id(model_id: str) -> ZooModel:
    """'resnet18' (ImageNet) or 'resnet18-small'."""
    name, _, config = model_id.partition("-")
    return zoo_model(name, config or "imagenet")


MODEL_NAMES = tuple(_BUILDERS)
