"""Fashion-MNIST through torchvision: 60,000/10,000 real 28x28 images that need no network.

Zalando's Fashion-MNIST has MNIST's format and size, and Debian ships it
(``apt-get install dataset-fashion-mnist`` puts four .gz archives in
``/usr/share/datasets/fashion-mnist``). So ``download`` gets the files the first way that works:

1. already under ``<root>/FashionMNIST/raw`` (extracted): nothing to do;
2. the Debian package installed: its archives are extracted into that folder and each extracted
   file is md5-checked against the official release (Debian recompressed the archives, so their
   own md5 differs from the one torchvision knows, while the content is byte-identical);
3. otherwise torchvision downloads the official archives and md5-checks them.

Reading and preparation are MNIST's (:mod:`sparse_vae.data.mnist`): one IDX reader for both.
"""

from __future__ import annotations

import gzip
import shutil
import zlib
from pathlib import Path
from typing import Any

from sparse_vae.data.io import Dataset
from sparse_vae.data.mnist import PARAMS, RAW_FILES, IdxSource, build_idx, missing_files, torchvision_download
from sparse_vae.errors import DataError

__all__ = ["PARAMS", "FASHION_MNIST", "DEBIAN_FOLDER", "OFFICIAL_RAW_MD5", "build", "download",
           "extract_debian_archives"]

DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_FOLDER = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST = IdxSource(
    source="fashion_mnist", title="Fashion-MNIST", torchvision_class="FashionMNIST",
    description=("Zalando Fashion-MNIST clothing images, 10 classes "
                 "(torchvision.datasets.FashionMNIST, raw IDX files)"),
    hint=(f"or install the Debian package, which needs no network here: apt-get install "
          f"{DEBIAN_PACKAGE} (files in {DEBIAN_FOLDER}), then rerun"),
)


# md5 of the official release's extracted files (the archives' own md5s are torchvision's
# FashionMNIST.resources), as other frameworks' Fashion-MNIST loaders publish them; the Debian
# package's archives extract to exactly these bytes.
OFFICIAL_RAW_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


def extract_debian_archives(root: Path, debian_folder: Path | None = None) -> bool:
    """Extract the package's archives into the raw folder, each md5-checked against the official file.

    Returns False (and does nothing) unless all four archives are there. A file that fails its
    check is not kept: DataError names it.
    """
    from torchvision.datasets.utils import calculate_md5

    debian_folder = DEBIAN_FOLDER if debian_folder is None else Path(debian_folder)
    archives = {name: debian_folder / f"{name}.gz" for name in RAW_FILES}
    if not all(path.is_file() for path in archives.values()):
        return False
    folder = FASHION_MNIST.raw_folder(root)
    folder.mkdir(parents=True, exist_ok=True)
    for name, archive in archives.items():
        partial = folder / f"{name}.partial"
        try:
            with gzip.open(archive, "rb") as source, open(partial, "wb") as target:
                shutil.copyfileobj(source, target, length=1 << 20)
        except (OSError, EOFError, zlib.error) as error:
            partial.unlink(missing_ok=True)
            raise DataError(f"{archive}: cannot extract ({type(error).__name__}: {error}); "
                            f"reinstall {DEBIAN_PACKAGE}") from None
        md5 = calculate_md5(str(partial))
        if md5 != OFFICIAL_RAW_MD5[name]:
            partial.unlink()
            raise DataError(f"{archive}: extracts to md5 {md5}, the official {name} has "
                            f"{OFFICIAL_RAW_MD5[name]}; reinstall {DEBIAN_PACKAGE}")
        partial.replace(folder / name)  # a killed extraction never leaves a truncated file under its name
    return True


def download(root: Path) -> None:
    """Make the four raw files present under ``root``: found, extracted from Debian's, or downloaded."""
    if not missing_files(FASHION_MNIST, root):
        return
    if not extract_debian_archives(root):
        torchvision_download(FASHION_MNIST, root)


def build(params: dict[str, Any], root: Path) -> Dataset:
    """Fashion-MNIST as x = pixel / 255 flattened to 784, with labels; optional seeded subsample."""
    return build_idx(FASHION_MNIST, params, root)
