"""The paper's five CNNs, each in an ImageNet and a small-image (28x28, Fashion-MNIST) configuration.

Module names follow torchvision, so a torchvision state_dict loads into the ImageNet configuration with
strict=True.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..data import FASHION_MNIST_PREPROCESS, Preprocess
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
IMAGENET_PREPROCESS = Preprocess(channels=3, resize=256, crop=224, mean=(0.485, 0.456, 0.406),
                                 std=(0.229, 0.224, 0.225))
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


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

    @property
    def preprocess(self) -> Preprocess:
        return FASHION_MNIST_PREPROCESS if self.config == "small" else IMAGENET_PREPROCESS

    @property
    def shipped_weights(self) -> Path | None:
        """The trained checkpoint that ships with quantune for this configuration, if any."""
        path = WEIGHTS_DIR / f"{self.id}.pt"
        return path if path.is_file() else None


def load_weights(model: nn.Module, path: Path | str, model_id: str) -> nn.Module:
    """Load a state_dict file (torchvision's format) with strict=True, naming the keys that do not fit."""
    import torch
    path = Path(path)
    if not path.is_file():
        raise QuantuneError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise QuantuneError(f"{path}: not a PyTorch checkpoint ({str(e).splitlines()[0]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise QuantuneError(f"{path}: expected a state_dict (a dict of tensors), as torch.save(model.state_dict()) "
                            "writes")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    problems = [f"{label} ({len(keys)}): {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                    ("shape mismatches", wrong)) if keys]
    if problems:
        raise QuantuneError(f"{path} does not fit {model_id}: {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)
    return model.eval()


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
