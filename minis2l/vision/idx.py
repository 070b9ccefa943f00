"""Fashion-MNIST's IDX files, read offline, with a small fallback.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017; arXiv 1708.07747) is 70 000 grey 28 x 28 images
of clothing in 10 classes, 60 000 for training and 10 000 for testing, stored in four gzipped
IDX files. Debian's ``dataset-fashion-mnist`` package installs them in :data:`DEBIAN_DIR`
(``make`` installs it where apt-get can). Any directory holding the four files works too.

IDX format: a 4-byte magic ``00 00 08 D`` (8 = unsigned bytes, D = number of dimensions), then
D big-endian uint32 sizes, then the values in C order.

Where the package is missing and no directory is given, :func:`find_images` falls back on
scikit-learn's bundled 8 x 8 handwritten digits (1 797 images), upsampled to 28 x 28, and says
so in one line.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGE_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
INSTALL = "apt-get install dataset-fashion-mnist"


def read_idx(path: str | Path) -> np.ndarray:
    """The array in an IDX file (gzipped or not) as uint8.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an IDX file of unsigned bytes, or truncated (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {path} is missing")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"IDX file {path} is corrupt: cannot decompress it ({err})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise ValueError(f"IDX file {path} is corrupt: bad magic number {raw[:4].hex() or '-'}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX file {path} is corrupt: truncated header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(
            f"IDX file {path} is corrupt: {len(raw)} bytes for shape {shape}, expected {expected}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@dataclass
class ImageSource:
    """Train and test images (uint8, ``(N, 28, 28)``) with their labels, and where from."""

    name: str
    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    classes: tuple[str, ...]
    files: list[dict[str, str]]


def _locate(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"IDX file {directory / (stem + '.gz')} is missing")


def read_image_dir(directory: str | Path) -> ImageSource:
    """Read the four Fashion-MNIST IDX files (``.gz`` or not) from ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"image directory {directory} does not exist")
    paths = {key: _locate(directory, stem) for key, stem in FILES.items()}
    arrays = {key: read_idx(p) for key, p in paths.items()}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(
                f"{paths[f'{split}_images']}: {split} images {x.shape} do not match "
                f"labels {y.shape}"
            )
        if y.max(initial=0) >= len(IMAGE_CLASSES):
            raise ValueError(f"{paths[f'{split}_labels']}: label {y.max()} is not a class 0-9")
    files = [
        {"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in paths.values()
    ]
    return ImageSource(
        name=f"Fashion-MNIST (IDX files from {directory.name}/)",  # no machine path
        train=(arrays["train_images"], arrays["train_labels"].astype(np.int64)),
        test=(arrays["test_images"], arrays["test_labels"].astype(np.int64)),
        classes=IMAGE_CLASSES,
        files=files,
    )


def sklearn_digits() -> ImageSource:
    """scikit-learn's 8 x 8 digits upsampled (bilinear) to 28 x 28; a fixed third is test."""
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    x = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    x = (x[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    y = digits.target.astype(np.int64)
    test = np.random.default_rng(0).permutation(len(y)) < len(y) // 3
    return ImageSource(
        name="scikit-learn digits (8 x 8, upsampled to 28 x 28)",
        train=(x[~test], y[~test]),
        test=(x[test], y[test]),
        classes=tuple(str(d) for d in range(10)),
        files=[],
    )


def find_images(directory: str | Path | None = None, *, verbose: bool = True) -> ImageSource:
    """The images to use: ``directory`` if given, else Debian's Fashion-MNIST, else digits.

    A given directory or an installed package that is incomplete or corrupt is an error (no
    silent fallback); only a package that is not installed at all falls back on the digits.
    """
    if directory is not None:
        return read_image_dir(directory)
    if DEBIAN_DIR.is_dir():
        return read_image_dir(DEBIAN_DIR)
    if verbose:
        print(
            f"minis2l: Fashion-MNIST is not installed ({INSTALL}); using scikit-learn's 8 x 8 "
            "digits upsampled to 28 x 28 instead",
            file=sys.stderr,
        )
    return sklearn_digits()
