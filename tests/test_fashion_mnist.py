"""Fashion-MNIST: the real 60,000/10,000 dataset prepared offline from Debian's dataset-fashion-mnist.

The full-size test needs the package (``.ci/run`` installs it when it runs as root with apt); it
is skipped with the reason otherwise. The other tests use small files written here and run anywhere.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from sparse_vae.cli import main
from sparse_vae.data import build_dataset, download, load_dataset, prepare
from sparse_vae.data import fashion_mnist
from sparse_vae.data.mnist import RAW_FILES
from sparse_vae.errors import DataError

PARAMS = {"n_train": None, "n_test": None, "seed": 0}
PACKAGE_FILES = [fashion_mnist.DEBIAN_FOLDER / f"{name}.gz" for name in RAW_FILES]
needs_package = pytest.mark.skipif(
    not all(path.is_file() for path in PACKAGE_FILES),
    reason=f"Debian package {fashion_mnist.DEBIAN_PACKAGE} not installed (no {fashion_mnist.DEBIAN_FOLDER}); "
           f"apt-get install {fashion_mnist.DEBIAN_PACKAGE}",
)


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX (big-endian): two zero bytes, type 0x08 (ubyte), ndim, dims as int32, then the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def small_files(n_train: int = 20, n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 10,
    }


@needs_package
def test_full_dataset_from_the_debian_package(tmp_path: Path, no_network: None) -> None:
    download("fashion_mnist", tmp_path)  # extracts and md5-checks the package's archives, offline
    raw = tmp_path / "FashionMNIST" / "raw"
    out = tmp_path / "fashion_mnist.npz"
    prepare("fashion_mnist", PARAMS, tmp_path, out)
    ds = load_dataset(out)

    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.image_shape == (28, 28)
    assert ds.x_train.dtype == np.float32
    # grey levels k / 255 for k = 0..255, both ends used
    for x in (ds.x_train, ds.x_test):
        assert x.min() == 0.0 and x.max() == 1.0
    levels = np.unique(ds.x_test)
    np.testing.assert_allclose(levels * 255, np.round(levels * 255), atol=1e-4)
    np.testing.assert_array_equal(np.bincount(ds.y_train, minlength=10), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(ds.y_test, minlength=10), np.full(10, 1000))

    recorded = ds.metadata["checksums"]["inputs_sha256"]
    package = {name: hashlib.sha256(gzip.decompress((fashion_mnist.DEBIAN_FOLDER / f"{name}.gz").read_bytes()))
               .hexdigest() for name in RAW_FILES}
    assert recorded == package
    extracted_md5 = {name: hashlib.md5((raw / name).read_bytes()).hexdigest() for name in RAW_FILES}
    assert extracted_md5 == fashion_mnist.OFFICIAL_RAW_MD5
    assert ds.metadata["source"] == "fashion_mnist"
    assert ds.metadata["sizes"] == {"n_train": 60000, "n_test": 10000, "input_dim": 784}


def test_found_files_are_read_without_network(tmp_path: Path, no_network: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", tmp_path / "no-package")
    arrays = small_files()
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name, array in arrays.items():
        (raw / name).write_bytes(idx_bytes(array))
    download("fashion_mnist", tmp_path)  # files present: nothing to fetch
    ds = build_dataset("fashion_mnist", {"n_train": 8, "n_test": None, "seed": 1}, tmp_path)
    assert ds.x_train.shape == (8, 784) and ds.x_test.shape == (10, 784)
    np.testing.assert_allclose(ds.x_test, arrays["t10k-images-idx3-ubyte"].reshape(10, -1) / 255.0, atol=1e-7)
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert "Fashion-MNIST" in ds.metadata["description"]


def test_offline_without_files_names_both_ways(tmp_path: Path, no_network: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", tmp_path / "no-package")
    with pytest.raises(DataError) as error:
        download("fashion_mnist", tmp_path / "data")
    message = str(error.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(tmp_path / "data" / "FashionMNIST" / "raw") in message
    assert "\n" not in message

    with pytest.raises(DataError) as error:
        build_dataset("fashion_mnist", PARAMS, tmp_path / "data")
    assert "apt-get install dataset-fashion-mnist" in str(error.value)
    assert "--source fashion_mnist" in str(error.value)


def test_package_archive_that_fails_its_md5_is_refused(tmp_path: Path, no_network: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Archives that are not the official content (here: small random files) must not be used."""
    package = tmp_path / "package"
    package.mkdir()
    for name, array in small_files().items():
        (package / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(array)))
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", package)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: extracts to md5 [0-9a-f]{32}, the official"):
        download("fashion_mnist", tmp_path / "data")
    assert list((tmp_path / "data" / "FashionMNIST" / "raw").iterdir()) == []  # nothing half-made kept


def test_package_archive_that_is_not_gzip_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "package"
    package.mkdir()
    for name in RAW_FILES:
        (package / f"{name}.gz").write_bytes(b"not a gzip file")
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", package)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: cannot extract .*reinstall dataset-fashion-mnist"):
        download("fashion_mnist", tmp_path / "data")


def test_cli_download_marker_and_prepare_error(tmp_path: Path, no_network: None, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", tmp_path / "no-package")
    done = tmp_path / "data" / "fashion_mnist.ok"
    code = main(["download", "--source", "fashion_mnist", "--root", str(tmp_path / "data"), "--done", str(done)])
    assert code != 0 and not done.exists()
    code = main(["prepare", "--source", "fashion_mnist", "--params", json.dumps(PARAMS),
                 "--root", str(tmp_path / "data"), "--out", str(tmp_path / "fm.npz")])
    assert code != 0 and not (tmp_path / "fm.npz").exists()
    assert "dataset-fashion-mnist" in capsys.readouterr().err
