"""Real photographs shipped inside PyPI and Debian packages, with the provenance and licence of each.

Candidates are every raster image in the listed folders of the unpacked packages (and inside GCompris's Qt
resource bundles). A candidate is kept when it looks like a photograph: at least 128 px on its shorter side,
in colour, mostly opaque, not a near duplicate of a photo already kept, not on the by-eye list below of digital
graphics and paintings, and (GCompris) credited to a third-party photographer in GCompris's own README.
Everything left out is listed with the reason.
"""
from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import json
import re
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import numpy as np
from PIL import Image

MIN_SIDE = 128
RASTER = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp")

# Where the images are, per package: globs relative to the package root (a wheel's or a .deb's unpacked tree).
FOLDERS: dict[str, list[str]] = {
    "scikit-image": ["skimage/data/*"],
    "scikit-learn": ["sklearn/datasets/images/*"],
    "matplotlib": ["matplotlib/mpl-data/sample_data/*"],
    "darknet": ["usr/share/darknet/data/*"],
    "lomiri-wallpapers-16.04": ["usr/share/backgrounds/*"],
    "lomiri-wallpapers-20.04": ["usr/share/backgrounds/*"],
    "mate-backgrounds": ["usr/share/backgrounds/mate/*/*"],
    "gcompris-qt-data": ["usr/share/gcompris-qt/rcc/*.rcc"],  # images inside the Qt resource bundles
}

# Left out by eye: digital graphics, paintings and patterns that pass the numbers (fnmatch patterns).
BY_EYE: list[tuple[str, str]] = [
    ("scikit-image:skimage/data/motorcycle_right.png", "stereo twin of motorcycle_left.png"),
    ("scikit-image:skimage/data/color.png", "synthetic colour wheel"),
    ("scikit-image:skimage/data/logo.png", "logo"),
    ("darknet:usr/share/darknet/data/scream.jpg", "painting (Munch's The Scream), not a photograph"),
    ("lomiri-wallpapers-16.04:*/analogpattern_by_Peter_Nerlich.jpg", "abstract pattern"),
    ("lomiri-wallpapers-16.04:*/umang_by_Abhishek_Mudgal.jpg", "digital graphic (colour gradients)"),
    ("lomiri-wallpapers-20.04:*/Fossa_by_Jasper_Roks.jpg", "digital graphic"),
    ("lomiri-wallpapers-20.04:*/Infinite-Sea_by_Aury88.jpg", "digital composite (galaxy over a rendered sea)"),
    ("lomiri-wallpapers-20.04:*/Painting-Colors_by__herobrine7gamer.jpg", "digital graphic"),
    ("mate-backgrounds:*/abstract/*", "painting or digital graphic (MATE's 'abstract' set)"),
    ("mate-backgrounds:*/desktop/*", "digital graphic (MATE's 'desktop' set)"),
]
# GCompris bundles whose images are artworks or drawings, not photographs.
GCOMPRIS_NOT_PHOTOS = {"paintings.rcc": "paintings (artworks), not photographs"}

# Licences of the pip packages' sample images, as their own docs state them.
PIP_LICENCES: dict[str, tuple[str, str]] = {  # path -> (licence, credit/origin)
    "skimage/data/astronaut.png": ("public domain", "NASA Great Images database (Eileen Collins)"),
    "skimage/data/chelsea.png": ("CC0-1.0", "Stefan van der Walt"),
    "skimage/data/coffee.png": ("CC0-1.0", "Rachel Michetti, courtesy of Pikolo Espresso Bar"),
    "skimage/data/rocket.jpg": ("public domain", "SpaceX (DSCOVR launch on Falcon 9)"),
    "skimage/data/hubble_deep_field.jpg": ("public domain", "NASA / HubbleSite"),
    "skimage/data/retina.jpg": ("CC0-1.0", "Wikimedia Commons, Fundus_photograph_of_normal_left_eye.jpg"),
    "skimage/data/ihc.png": ("no known copyright restrictions", "Center for Microscopy And Molecular Imaging"),
    "skimage/data/motorcycle_left.png": ("Middlebury 2014 stereo benchmark (terms not stated in scikit-image)",
                                         "Scharstein et al., Middlebury College"),
    "skimage/data/motorcycle_right.png": ("Middlebury 2014 stereo benchmark (terms not stated in scikit-image)",
                                          "Scharstein et al., Middlebury College"),
    "skimage/data/camera.png": ("CC0-1.0", "Lav Varshney"),
    "skimage/data/coins.png": ("no known copyright restrictions", "Brooklyn Museum Collection"),
    "skimage/data/clock_motion.png": ("public domain", "Stefan van der Walt"),
    "skimage/data/brick.png": ("CC0-1.0", "CC0Textures Bricks25"),
    "skimage/data/grass.png": ("CC0-1.0", "CC0Textures"),
    "skimage/data/gravel.png": ("CC0-1.0", "CC0Textures Gravel04"),
    "skimage/data/microaneurysms.png": ("CC0-1.0", "Andreas Maier"),
    "skimage/data/horse.png": ("CC0-1.0", "Andreas Preuss"),
    "skimage/data/cell.png": ("CC0-1.0", "scikit-image"),
    "skimage/data/text.png": ("public domain", "scikit-image"),
    "sklearn/datasets/images/china.jpg": ("CC-BY-2.0", "danielbuechele on Flickr (photo 6061409035)"),
    "sklearn/datasets/images/flower.jpg": ("CC-BY-2.0", "vultilion on Flickr (photo 6056698931)"),
    "matplotlib/mpl-data/sample_data/grace_hopper.jpg": ("public domain", "U.S. Navy (Grace Hopper)"),
}


@dataclass
class Candidate:
    package: str
    version: str
    kind: str          # "pip" or "deb"
    path: str          # inside the package; "bundle.rcc:/inner/path" for Qt resources
    data: bytes


@dataclass
class Photo:
    id: str
    file: str
    package: str
    version: str
    kind: str
    path: str
    width: int
    height: int
    licence: str
    credit: str
    origin: str
    sha256: str


# ---------------------------------------------------------------- Qt resource bundles (GCompris's .rcc files)

def read_rcc(data: bytes) -> dict[str, bytes]:
    """Files in a Qt resource bundle (rcc format 1-3): {'/inner/path': bytes}."""
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource bundle")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node_size = 14 if version == 1 else 22
    files: dict[str, bytes] = {}

    def name(offset: int) -> str:
        at = names + offset
        (length,) = struct.unpack(">H", data[at:at + 2])
        return data[at + 6:at + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> None:
        at = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[at:at + 6])
        here = name(name_offset) if index else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", data[at + 6:at + 14])
            for child in range(count):
                walk(first + child, f"{prefix}{here}/" if index else "/")
            return
        (offset,) = struct.unpack(">I", data[at + 10:at + 14])
        start = payload + offset
        (size,) = struct.unpack(">I", data[start:start + 4])
        blob = data[start + 4:start + 4 + size]
        if flags & 1:  # zlib with a 4-byte length in front (qCompress)
            blob = zlib.decompress(blob[4:])
        elif flags & 4:  # zstd: not used by GCompris 3.1
            return
        files[prefix + here] = blob

    walk(0, "")
    return files


def parse_gcompris_readme(text: str) -> dict[str, dict[str, str]]:
    """GCompris's resource README: blocks of Copyright/Source/License/Files lines -> {file: fields}."""
    out: dict[str, dict[str, str]] = {}
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        files: list[str] = []
        key = None
        for line in block.splitlines():
            m = re.match(r"^(Copyright|Source|License|Licence|Files|Comments?)\s*:\s*(.*)$", line.strip())
            if m:
                key = m.group(1).lower().replace("licence", "license")
                if key == "files":
                    files += m.group(2).split()
                else:
                    fields[key] = m.group(2).strip()
            elif key == "files" and line.strip():
                files += line.split()
            elif key and line.strip():
                fields[key] = (fields.get(key, "") + " " + line.strip()).strip()
        for f in files:
            out[f] = fields
    return out


# ---------------------------------------------------------------- Debian copyright files (DEP-5)

def parse_dep5(text: str) -> list[tuple[list[str], str, str]]:
    """[(file patterns, licence, copyright)] of a machine-readable debian/copyright, in file order."""
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        files, licence, holder, key = [], "", "", None
        for line in block.splitlines():
            m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if m:
                key, value = m.group(1).lower(), m.group(2).strip()
                if key == "files":
                    files += value.split()
                elif key == "license":
                    licence = value
                elif key == "copyright":
                    holder = value
            elif line.startswith((" ", "\t")) and key == "files":
                files += line.split()
            elif line.startswith((" ", "\t")) and key == "copyright":
                holder += "; " + line.strip()
        if files:
            stanzas.append((files, licence, holder))
    return stanzas


def dep5_lookup(stanzas, path: str) -> tuple[str, str]:
    """Licence and copyright of path; the last matching stanza wins, as DEP-5 says. Patterns are matched
    against the installed path's tail too, since upstream paths (16.04/x.jpg) differ from installed ones."""
    found = ("", "")
    base = PurePosixPath(path).name
    for patterns, licence, holder in stanzas:
        for p in patterns:
            name = PurePosixPath(p).name
            if (fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, "*/" + p)
                    or ("*" not in name and base == name)):
                found = (licence, holder)
    return found


# ---------------------------------------------------------------- candidates

def candidates(unpacked: dict[str, tuple[Path, str, str]]) -> Iterator[Candidate]:
    """unpacked: package -> (root folder, version, 'pip'|'deb')."""
    for package, globs in FOLDERS.items():
        if package not in unpacked:
            continue
        root, version, kind = unpacked[package]
        for pattern in globs:
            for f in sorted(root.glob(pattern)):
                rel = f.relative_to(root).as_posix()
                if f.suffix == ".rcc":
                    for inner, blob in sorted(read_rcc(f.read_bytes()).items()):
                        if inner.lower().endswith(RASTER):
                            yield Candidate(package, version, kind, f"{f.name}:{inner}", blob)
                elif f.is_file() and f.suffix.lower() in RASTER:
                    yield Candidate(package, version, kind, rel, f.read_bytes())


def licence_of(c: Candidate, root: Path, readmes: dict[str, dict[str, dict[str, str]]]):
    """(licence, credit, origin) of a candidate; ('', '', '') when the package states none for it."""
    if c.kind == "pip":
        licence, credit = PIP_LICENCES.get(c.path, ("", ""))
        return licence, credit, ""
    if c.package == "gcompris-qt-data":
        bundle, inner = c.path.split(":", 1)
        folder, name = inner.rsplit("/", 1)
        entry = readmes.get(f"{bundle}:{folder}", {}).get(name)
        if not entry:
            return "", "", ""
        return entry.get("license", ""), entry.get("copyright", ""), entry.get("source", "")
    copyright_file = root / "usr/share/doc" / c.package / "copyright"
    if copyright_file.is_file():
        licence, holder = dep5_lookup(parse_dep5(copyright_file.read_text(errors="replace")), c.path)
        return licence, holder, ""
    return "", "", ""


def normalise_licence(text: str) -> str:
    """'CC-BY-SA 4.0' -> 'CC-BY-SA-4.0', 'Public Domain' -> 'public domain'."""
    text = re.sub(r"^(CC[-A-Z]*?)[ -](\d\.\d)$", r"\1-\2", text.strip())
    return "public domain" if text.lower() == "public domain" else text


def gcompris_readmes(root: Path) -> dict[str, dict[str, dict[str, str]]]:
    """'bundle.rcc:/folder' -> README entries, for every README inside GCompris's bundles."""
    out = {}
    for f in sorted((root / "usr/share/gcompris-qt/rcc").glob("*.rcc")):
        for inner, blob in read_rcc(f.read_bytes()).items():
            if inner.rsplit("/", 1)[-1].lower() == "readme":
                folder = inner.rsplit("/", 1)[0]
                for name, fields in parse_gcompris_readme(blob.decode("utf-8", "replace")).items():
                    sub, _, leaf = name.rpartition("/")
                    key = f"{f.name}:{folder}/{sub}" if sub else f"{f.name}:{folder}"
                    out.setdefault(key, {})[leaf] = fields
    return out


# ---------------------------------------------------------------- is it a photograph?

def measure(image: Image.Image) -> dict[str, float]:
    """The numbers the photo test reads: the share of (nearly) transparent pixels and the mean chroma
    (max - min channel, 0..255) at 128x128."""
    transparent = 0.0
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
        transparent = float((alpha < 250).mean())
    small = np.asarray(image.convert("RGB").resize((128, 128), Image.BILINEAR), dtype=np.float32)
    return {"transparent": transparent, "chroma": float((small.max(-1) - small.min(-1)).mean())}


def not_a_photo(m: dict[str, float]) -> str:
    """The automatic part of the test; digital graphics that pass it are on the by-eye list."""
    if m["transparent"] > 0.01:
        return f"{m['transparent']:.0%} transparent pixels (cut-out, icon or drawing)"
    if m["chroma"] < 6:
        return f"grey or nearly so (mean chroma {m['chroma']:.1f} of 255)"
    return ""


def dhash(image: Image.Image) -> int:
    g = np.asarray(image.convert("L").resize((9, 8), Image.BILINEAR), dtype=np.int16)
    bits = (g[:, 1:] > g[:, :-1]).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


# ---------------------------------------------------------------- the collection

def collect(unpacked: dict[str, tuple[Path, str, str]], out: Path, log: Callable[[str], None] = print
            ) -> tuple[list[Photo], list[dict[str, str]]]:
    """Write the kept photos (original bytes) to out/images, provenance.csv/json and excluded.csv."""
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    readmes = gcompris_readmes(unpacked["gcompris-qt-data"][0]) if "gcompris-qt-data" in unpacked else {}
    kept: list[Photo] = []
    excluded: list[dict[str, str]] = []
    hashes: list[tuple[int, str]] = []
    seen_bytes: dict[str, str] = {}
    for c in candidates(unpacked):
        reason = ""
        key = f"{c.package}:{c.path}"
        digest = hashlib.sha256(c.data).hexdigest()
        licence, credit, origin = licence_of(c, unpacked[c.package][0], readmes)
        try:
            image = Image.open(io.BytesIO(c.data))
            image.load()
            width, height = image.size
        except Exception as e:  # noqa: BLE001 - any undecodable file is simply left out
            image, width, height, reason = None, 0, 0, f"not decodable ({type(e).__name__})"
        if not reason:
            reason = next((why for pattern, why in BY_EYE if fnmatch.fnmatch(key, pattern)), "")
        if not reason and c.package == "gcompris-qt-data":
            bundle = c.path.split(":", 1)[0]
            if bundle in GCOMPRIS_NOT_PHOTOS:
                reason = GCOMPRIS_NOT_PHOTOS[bundle]
            elif not origin:
                reason = "no third-party source in GCompris's README (GCompris's own artwork or unattributed)"
        if not reason and min(width, height) < MIN_SIDE:
            reason = f"smaller than {MIN_SIDE} px ({width}x{height})"
        if not reason and getattr(image, "n_frames", 1) > 1:
            reason = "animation or multi-page file"
        if not reason:
            reason = not_a_photo(measure(image))
        if not reason and digest in seen_bytes:
            reason = f"same bytes as {seen_bytes[digest]}"
        if not reason:
            h = dhash(image)
            twin = next((pid for other, pid in hashes if bin(other ^ h).count("1") <= 5), None)
            if twin:
                reason = f"near duplicate of {twin}"
        if reason:
            excluded.append({"package": c.package, "version": c.version, "path": c.path, "reason": reason})
            continue
        pid = _photo_id(c, {p.id for p in kept})
        ext = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}.get(image.format, PurePosixPath(c.path).suffix)
        (images / f"{pid}{ext}").write_bytes(c.data)
        hashes.append((dhash(image), pid))
        seen_bytes[digest] = pid
        licence = normalise_licence(licence) or "not stated for this file (see the package's licence)"
        kept.append(Photo(pid, f"images/{pid}{ext}", c.package, c.version, c.kind, c.path, width, height,
                          licence, credit, origin, digest))
    _write(out, kept, excluded)
    log(f"photos: kept {len(kept)}, left out {len(excluded)}")
    return kept, excluded


SHORT = {"scikit-image": "skimage", "scikit-learn": "sklearn", "matplotlib": "mpl", "darknet": "darknet",
         "lomiri-wallpapers-16.04": "lomiri", "lomiri-wallpapers-20.04": "lomiri", "mate-backgrounds": "mate",
         "gcompris-qt-data": "gcompris"}


def _photo_id(c: Candidate, taken: set[str]) -> str:
    if c.package == "gcompris-qt-data":
        bundle, inner = c.path.split(":", 1)
        stem = f"{PurePosixPath(bundle).stem}-{PurePosixPath(inner).stem}"
    else:
        stem = PurePosixPath(c.path).stem
    base = re.sub(r"[^A-Za-z0-9]+", "_", f"{SHORT.get(c.package, c.package)}-{stem}").strip("_").lower()
    pid, n = base, 2
    while pid in taken:
        pid, n = f"{base}_{n}", n + 1
    return pid


def _write(out: Path, kept: list[Photo], excluded: list[dict[str, str]]) -> None:
    rows = [asdict(p) for p in kept]
    (out / "provenance.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    with open(out / "provenance.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["id"])
        w.writeheader()
        w.writerows(rows)
    with open(out / "excluded.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["package", "version", "path", "reason"])
        w.writeheader()
        w.writerows(excluded)


def load_provenance(out: Path) -> list[Photo]:
    return [Photo(**row) for row in json.loads((out / "provenance.json").read_text())]


def splits(photos: list[Photo], seed: int = 0, calibration_fraction: float = 0.5) -> tuple[list[str], list[str]]:
    """Two fixed, disjoint sets of photo ids: a seeded permutation of the sorted ids, cut in two."""
    ids = sorted(p.id for p in photos)
    order = np.random.default_rng(seed).permutation(len(ids))
    cut = int(round(len(ids) * calibration_fraction))
    shuffled = [ids[i] for i in order]
    return sorted(shuffled[:cut]), sorted(shuffled[cut:])
