"""Preprocessing as a small typed config stored with each model: how raw images become the model's input."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import QuantuneError

LAYOUTS = ("NCHW", "NHWC")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as PIL's convert("L")


@dataclass(frozen=True)
class Preprocess:
    """uint8 images (N, H, W) or (N, H, W, C) -> float32 model inputs.

    Order: resize the shorter side to `resize` (0: no resize), center-crop to `crop` (0: none), scale to
    [0, 1], convert to `channels`, normalise with `mean`/`std` per channel, lay out as `layout`.
    """

    channels: int = 3
    resize: int = 0
    crop: int = 0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    layout: str = "NCHW"

    def __post_init__(self):
        if self.channels not in (1, 3):
            raise QuantuneError(f"preprocess: channels must be 1 or 3, not {self.channels}")
        if self.layout not in LAYOUTS:
            raise QuantuneError(f"preprocess: layout must be one of {', '.join(LAYOUTS)}, not '{self.layout}'")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) not in (1, self.channels):
                raise QuantuneError(f"preprocess: {name} has {len(values)} values for {self.channels} channels")
        if any(s <= 0 for s in self.std):
            raise QuantuneError(f"preprocess: std must be positive, got {self.std}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Preprocess":
        data = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4:
            raise QuantuneError(f"preprocess: expected images (N, H, W[, C]), got shape {images.shape}")
        x = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
        if self.resize:
            x = _resize_shorter_side(x, self.resize)
        if self.crop:
            x = _center_crop(x, self.crop)
        if x.shape[-1] != self.channels:
            x = x @ _LUMA[:, None] if self.channels == 1 else np.repeat(x[..., :1], 3, axis=-1)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if self.layout == "NCHW" else x)


def _resize_shorter_side(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize with torch's interpolate (align_corners=False), the convention torchvision follows."""
    import torch
    h, w = x.shape[1:3]
    scale = size / min(h, w)
    new = (max(1, round(h * scale)), max(1, round(w * scale)))
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    return torch.nn.functional.interpolate(t, size=new, mode="bilinear", align_corners=False,
                                           antialias=True).permute(0, 2, 3, 1).numpy()


def _center_crop(x: np.ndarray, size: int) -> np.ndarray:
    h, w = x.shape[1:3]
    if h < size or w < size:
        raise QuantuneError(f"preprocess: cannot center-crop {h}x{w} images to {size}x{size}; set resize >= {size}")
    top, left = (h - size) // 2, (w - size) // 2
    return x[:, top:top + size, left:left + size]
