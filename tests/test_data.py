"""Dataset preparation: every source's format, determinism, ground truth, raw-file readers, errors.

MNIST and CIFAR are exercised on tiny files these tests write in torchvision's on-disk formats
(IDX files under <root>/MNIST/raw, python pickle batches under <root>/cifar-10-batches-py); no
network is touched.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any
from urllib.error import URLError

import numpy as np
import pytest

from sparse_vae.cli import main
from sparse_vae.analysis.display import display_direction, for_display
from sparse_vae.data import build_dataset, download, load_dataset, prepare
from sparse_vae.data import natural as natural_module
from sparse_vae.data.io import Dataset, save_dataset
from sparse_vae.errors import DataError

from rawdata import write_cifar, write_mnist

# --------------------------------------------------------------------------- helpers: raw formats


def natural(whiten: str = "none", **overrides: Any) -> dict[str, Any]:
    return {"patch_size": 4, "n_train": 600, "n_test": 100, "whiten": whiten, "seed": 0, **overrides}


def check_format(ds: Dataset, n_train: int, n_test: int, shape: tuple[int, int], labels: bool) -> None:
    for x, n in ((ds.x_train, n_train), (ds.x_test, n_test)):
        assert x.dtype == np.float32 and x.shape == (n, shape[0] * shape[1])
        assert 0.0 <= x.min() and x.max() <= 1.0
    assert tuple(ds.image_shape) == shape
    assert ds.has_labels == labels
    if labels:
        assert ds.y_train.shape == (n_train,) and ds.y_test.shape == (n_test,)
        assert ds.y_train.dtype == np.int64
    for key in ("source", "params", "preprocessing", "sizes", "checksums", "image_shape"):
        assert key in ds.metadata, key


# --------------------------------------------------------------------------- synthetic


def test_synthetic_ground_truth(tmp_path: Path, synthetic_params: dict[str, Any]) -> None:
    out = tmp_path / "s.npz"
    prepare("synthetic", synthetic_params, tmp_path, out)
    ds = load_dataset(out)
    check_format(ds, 256, 64, (5, 5), labels=False)
    meta, ex = ds.metadata, ds.extras
    assert ex["templates"].shape == (4, 25) and ex["weights_train"].shape == (256, 4)
    # Templates are stored in pixel units: bars of height pixel_gain, alternately row and column.
    bars = ex["templates"].reshape(4, 5, 5) / meta["pixel_gain"]
    for k in range(4):
        expected = np.zeros((5, 5))
        if k % 2 == 0:
            expected[k // 2, :] = 1.0
        else:
            expected[:, k // 2] = 1.0
        np.testing.assert_allclose(bars[k], expected, atol=1e-6)
    for split in ("train", "test"):
        clean = meta["pixel_offset"] + ex[f"weights_{split}"] @ ex["templates"]
        np.testing.assert_allclose(clean, ex[f"clean_{split}"], atol=1e-5)
        noise = getattr(ds, f"x_{split}") - ex[f"clean_{split}"]
        assert abs(noise.std() / meta["noise_std_pixels"] - 1.0) < 0.1
        assert abs(noise.mean()) < 3 * meta["noise_std_pixels"] / np.sqrt(noise.size) + 1e-6
    # The gain is the largest that fits: some pixel touches 0 or 1.
    extreme = max(np.abs(ds.x_train - 0.5).max(), np.abs(ds.x_test - 0.5).max(),
                  np.abs(ex["clean_train"] - 0.5).max(), np.abs(ex["clean_test"] - 0.5).max())
    assert extreme == pytest.approx(0.5, abs=1e-6)


def test_synthetic10_two_blob_templates(synthetic_params: dict[str, Any], tmp_path: Path) -> None:
    params = {**synthetic_params, "image_size": 10, "n_templates": 2, "templates": "blobs"}
    ds = build_dataset("synthetic", params, tmp_path)
    check_format(ds, 256, 64, (10, 10), labels=False)
    templates = ds.extras["templates"] / ds.metadata["pixel_gain"]
    assert templates.shape == (2, 100)
    np.testing.assert_allclose(templates.max(axis=1), 1.0, atol=1e-6)
    assert templates[0].argmax() != templates[1].argmax()
    np.testing.assert_allclose(
        ds.metadata["pixel_offset"] + ds.extras["weights_test"] @ ds.extras["templates"],
        ds.extras["clean_test"], atol=1e-5)


def test_random_templates_peak_one(synthetic_params: dict[str, Any], tmp_path: Path) -> None:
    ds = build_dataset("synthetic", {**synthetic_params, "templates": "random"}, tmp_path)
    peaks = np.abs(ds.extras["templates"]).max(axis=1) / ds.metadata["pixel_gain"]
    np.testing.assert_allclose(peaks, 1.0, atol=1e-6)


def test_spike_slab_sparsity(synthetic_params: dict[str, Any], tmp_path: Path) -> None:
    params = {**synthetic_params, "weights": "spike_slab", "active_prob": 0.3, "n_train": 2000}
    ds = build_dataset("synthetic", params, tmp_path)
    active = np.mean(ds.extras["weights_train"] != 0)
    assert abs(active - 0.3) < 0.03  # 8000 Bernoulli draws: sd 0.005
    laplace = build_dataset("synthetic", synthetic_params, tmp_path)
    assert np.mean(laplace.extras["weights_train"] != 0) == 1.0


def test_synthetic_streams_are_independent(synthetic_params: dict[str, Any], tmp_path: Path) -> None:
    """More train examples must not change the templates or the test split."""
    a = build_dataset("synthetic", {**synthetic_params, "templates": "blobs"}, tmp_path)
    b = build_dataset("synthetic", {**synthetic_params, "templates": "blobs", "n_train": 300}, tmp_path)
    c = build_dataset("synthetic", {**synthetic_params, "templates": "blobs", "seed": 1}, tmp_path)
    np.testing.assert_array_equal(a.extras["weights_test"], b.extras["weights_test"])
    # Same raw templates; only the data-chosen pixel gain (and float32 rounding) differs.
    np.testing.assert_allclose(a.extras["templates"] / a.metadata["pixel_gain"],
                               b.extras["templates"] / b.metadata["pixel_gain"], rtol=1e-6)
    assert not np.array_equal(a.extras["weights_test"], c.extras["weights_test"])


def test_synthetic_bad_params(synthetic_params: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(DataError, match="only 10 bars"):
        build_dataset("synthetic", {**synthetic_params, "n_templates": 11}, tmp_path)
    with pytest.raises(DataError, match="missing seed"):
        build_dataset("synthetic", {k: v for k, v in synthetic_params.items() if k != "seed"}, tmp_path)
    with pytest.raises(DataError, match="unknown sed"):
        build_dataset("synthetic", {**synthetic_params, "sed": 1}, tmp_path)
    with pytest.raises(DataError, match="unknown data source"):
        build_dataset("imagenet", {}, tmp_path)
    with pytest.raises(DataError, match="no raw files"):
        download("digits", tmp_path)


SPARSE_LINEAR = {"image_size": 4, "n_sources": 6, "atom_norm": 1.0, "noise_std": 0.3, "n_train": 3000,
                 "n_test": 500, "seed": 0}


def test_sparse_linear_control_is_the_linear_model_with_known_truth(tmp_path: Path) -> None:
    """x = W z + noise exactly (no offset, rescaling or clipping), W's columns unit-norm random
    directions far from any pixel axis, z Laplace(0, 1), noise sd = noise_std; real values allowed."""
    prepare("sparse_linear", SPARSE_LINEAR, tmp_path, tmp_path / "c.npz")
    data = load_dataset(tmp_path / "c.npz")
    w, z = data.extras["templates"].astype(np.float64), data.extras["weights_train"].astype(np.float64)
    assert w.shape == (6, 16) and data.image_shape == (4, 4) and data.metadata["value_range"] == "real"
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, rtol=1e-6)
    assert np.abs(w).max(axis=1).max() < 0.9                      # no column is (nearly) one pixel
    np.testing.assert_allclose(data.extras["clean_train"], z @ w, atol=1e-5)
    noise = data.x_train - data.extras["clean_train"]
    assert abs(noise.std() - 0.3) < 0.01 and abs(noise.mean()) < 0.01
    # Laplace(0, 1): E|z| = 1, kurtosis 6
    assert abs(np.abs(z).mean() - 1.0) < 0.03
    assert data.x_train.min() < 0.0 or data.x_train.max() > 1.0     # genuinely not squeezed into [0, 1]
    more = build_dataset("sparse_linear", {**SPARSE_LINEAR, "n_train": 100}, tmp_path)
    np.testing.assert_array_equal(more.extras["templates"], data.extras["templates"])
    np.testing.assert_array_equal(more.x_test, data.x_test)
    with pytest.raises(DataError, match="sources but only 16 pixels"):
        build_dataset("sparse_linear", {**SPARSE_LINEAR, "n_sources": 17}, tmp_path)


def test_only_real_valued_data_may_leave_the_unit_interval(tmp_path: Path) -> None:
    x = np.full((4, 4), 1.5, np.float32)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        save_dataset(tmp_path / "a.npz", Dataset(x, x, (2, 2)))
    save_dataset(tmp_path / "b.npz", Dataset(x, x, (2, 2), metadata={"value_range": "real"}))
    bad = x.copy()
    bad[0, 0] = np.inf
    with pytest.raises(DataError, match="finite"):
        save_dataset(tmp_path / "c.npz", Dataset(bad, x, (2, 2), metadata={"value_range": "real"}))


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("source, params", [("digits", {"test_fraction": 0.2, "seed": 0}),
                                            ("natural", natural("zca")), ("sparse_linear", SPARSE_LINEAR)])
def test_prepare_is_deterministic(source: str, params: dict[str, Any], tmp_path: Path) -> None:
    prepare(source, params, tmp_path, tmp_path / "a.npz")
    prepare(source, params, tmp_path, tmp_path / "b.npz")
    # io.save_dataset stamps zip members with a fixed time, so even the bytes agree.
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_synthetic_file_bytes_identical(tmp_path: Path, synthetic_params: dict[str, Any]) -> None:
    for name in ("a", "b"):
        prepare("synthetic", synthetic_params, tmp_path, tmp_path / f"{name}.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    a, b = load_dataset(tmp_path / "a.npz"), load_dataset(tmp_path / "b.npz")
    assert a.metadata == b.metadata
    prepare("synthetic", {**synthetic_params, "seed": 5}, tmp_path, tmp_path / "c.npz")
    assert not np.array_equal(a.x_train, load_dataset(tmp_path / "c.npz").x_train)


# --------------------------------------------------------------------------- digits, natural


def test_digits(tmp_path: Path) -> None:
    ds = build_dataset("digits", {"test_fraction": 0.2, "seed": 0}, tmp_path)
    check_format(ds, 1437, 360, (8, 8), labels=True)
    assert ds.x_train.max() == 1.0
    train_counts, test_counts = np.bincount(ds.y_train, minlength=10), np.bincount(ds.y_test, minlength=10)
    np.testing.assert_allclose(test_counts / (train_counts + test_counts), 0.2, atol=0.02)
    other = build_dataset("digits", {"test_fraction": 0.2, "seed": 1}, tmp_path)
    assert not np.array_equal(ds.y_test, other.y_test) or not np.array_equal(ds.x_test, other.x_test)


def test_natural_unwhitened(tmp_path: Path) -> None:
    ds = build_dataset("natural", natural(), tmp_path)
    check_format(ds, 600, 100, (4, 4), labels=False)
    assert ds.extras == {}
    assert "right half" in ds.metadata["split"]
    assert set(ds.metadata["checksums"]["inputs_sha256"]) == {"china.jpg", "flower.jpg"}
    np.testing.assert_array_equal(for_display(ds, ds.x_test), ds.x_test)


@pytest.mark.parametrize("method", ["pca", "zca"])
def test_natural_whitening_inverts(method: str, tmp_path: Path) -> None:
    plain = build_dataset("natural", natural(n_train=2000), tmp_path)
    ds = build_dataset("natural", natural(method, n_train=2000), tmp_path)
    check_format(ds, 2000, 100, (4, 4), labels=False)
    meta, ex = ds.metadata, ds.extras
    whitened = (ds.x_train.astype(np.float64) - meta["display_offset"]) / meta["display_scale"]
    np.testing.assert_allclose(whitened.mean(axis=0), 0.0, atol=1e-4)
    covariance = np.cov(whitened, rowvar=False, bias=True)
    np.testing.assert_allclose(covariance, np.eye(16), atol=0.02)
    # The stored matrices reproduce the stored values from the raw patches ...
    np.testing.assert_allclose((plain.x_train - ex["patch_mean"]) @ ex["whitening"], whitened, atol=1e-3)
    # ... and for_display undoes all of it, on both splits.
    np.testing.assert_allclose(for_display(ds, ds.x_train), plain.x_train, atol=1e-4)
    np.testing.assert_allclose(for_display(ds, ds.x_test), plain.x_test, atol=1e-4)
    # Differences (receptive fields) map linearly, with no offset and no clipping.
    delta = ds.x_train[:50] - ds.x_train[50:100]
    np.testing.assert_allclose(display_direction(ds, delta), plain.x_train[:50] - plain.x_train[50:100],
                               atol=1e-4)
    np.testing.assert_array_equal(display_direction(plain, delta), delta)
    if method == "zca":
        np.testing.assert_allclose(ex["whitening"], ex["whitening"].T, atol=1e-4)


def test_natural_olshausen_field_whitening(tmp_path: Path) -> None:
    """R(f) whitening of whole image halves: unit-variance, zero-mean train pixels, stored in [0, 1]."""
    params = natural("olshausen_field", patch_size=12, n_train=3000, images=["camera", "grass", "china.jpg"])
    ds = build_dataset("natural", params, tmp_path)
    check_format(ds, 3000, 100, (12, 12), labels=False)
    meta = ds.metadata
    white = (ds.x_train.astype(np.float64) - meta["display_offset"]) / meta["display_scale"]
    assert abs(white.mean()) < 1e-3 and white.var() == pytest.approx(1.0, rel=1e-3)
    assert meta["data_sd"] == meta["display_scale"] and meta["images"] == ["camera", "grass", "china.jpg"]
    assert set(meta["checksums"]["inputs_sha256"]) == {"camera", "grass", "china.jpg"}
    assert ds.extras == {}  # the filtered images are shown as they are
    # Pixels six apart, strongly correlated in the photographs, are decorrelated by whitening.
    patches = white.reshape(-1, 12, 12)
    far = np.corrcoef(patches[:, :, 2].ravel(), patches[:, :, 8].ravel())[0, 1]
    raw = build_dataset("natural", natural(patch_size=12, n_train=3000, images=["camera", "grass", "china.jpg"]),
                        tmp_path).x_train.reshape(-1, 12, 12)
    raw_far = np.corrcoef(raw[:, :, 2].ravel(), raw[:, :, 8].ravel())[0, 1]
    assert abs(far) < 0.1 < 0.5 < raw_far


def test_olshausen_field_filter_flattens_a_one_over_f_spectrum() -> None:
    """A random-phase image with amplitude 1/f comes out with amplitude exp(-(f/f0)^4): flat below f0."""
    rng = np.random.default_rng(0)
    side, f0 = 256, 0.39
    f = np.hypot(np.fft.fftfreq(side)[:, None], np.fft.fftfreq(side)[None, :])
    amplitude = np.where(f > 0, 1.0 / np.maximum(f, 1e-9), 0.0)
    image = np.real(np.fft.ifft2(amplitude * np.exp(2j * np.pi * rng.random((side, side)))))
    out = np.abs(np.fft.fft2(natural_module.olshausen_field_filter(image, f0)))

    def band(lo: float, hi: float) -> float:
        return float(np.median(out[(f >= lo) & (f < hi)]))

    low, mid, high = band(0.04, 0.08), band(0.15, 0.25), band(0.45, 0.5)
    expected_mid = np.exp(-(0.2 / f0) ** 4) / np.exp(-(0.06 / f0) ** 4)
    assert mid / low == pytest.approx(expected_mid, rel=0.2)      # whitened: flat, not 1/f
    assert high / low < 0.5                                        # low-passed near Nyquist


def test_natural_options_are_checked(tmp_path: Path) -> None:
    for bad, match in [({"images": ["lena"]}, "unknown images lena"), ({"images": []}, "non-empty"),
                       ({"whiten": "olshausen_field", "whiten_f0": 0.9}, "whiten_f0"),
                       ({"whiten": "zca", "whiten_epsilon": 0}, "whiten_epsilon"),
                       ({"whiten": "dct"}, "unknown whiten"), ({"scale": "unit"}, "unknown scale"),
                       ({"scale": "unit_variance"}, "needs whiten")]:
        with pytest.raises(DataError, match=match):
            build_dataset("natural", {**natural(), **bad}, tmp_path)


def test_natural_regularised_zca_has_unit_variance(tmp_path: Path) -> None:
    """A large eigenvalue floor low-passes; the gain still makes the mean train variance 1."""
    ds = build_dataset("natural", natural("zca", n_train=2000, whiten_epsilon=5.0), tmp_path)
    white = (ds.x_train.astype(np.float64) - ds.metadata["display_offset"]) / ds.metadata["display_scale"]
    assert white.var(axis=0).mean() == pytest.approx(1.0, rel=1e-3)
    covariance = np.cov(white, rowvar=False, bias=True)
    assert np.abs(covariance - np.diag(np.diag(covariance))).max() > 0.05   # not fully white
    np.testing.assert_allclose(for_display(ds, ds.x_train),
                               build_dataset("natural", natural(n_train=2000), tmp_path).x_train, atol=1e-4)


# --------------------------------------------------------------------------- MNIST


def test_mnist_reads_torchvision_raw_files(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path)
    out = tmp_path / "mnist.npz"
    prepare("mnist", {"n_train": None, "n_test": None, "seed": 0}, tmp_path, out)
    ds = load_dataset(out)
    check_format(ds, 12, 6, (28, 28), labels=True)
    np.testing.assert_allclose(ds.x_train, arrays["train-images-idx3-ubyte"].reshape(12, -1) / 255.0, atol=1e-7)
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert set(ds.metadata["checksums"]["inputs_sha256"]) == set(arrays)

    sub = build_dataset("mnist", {"n_train": 5, "n_test": 3, "seed": 7}, tmp_path)
    check_format(sub, 5, 3, (28, 28), labels=True)
    full = ds.x_train.tolist()
    assert all(row in full for row in sub.x_train.tolist())
    again = build_dataset("mnist", {"n_train": 5, "n_test": 3, "seed": 7}, tmp_path)
    np.testing.assert_array_equal(sub.x_train, again.x_train)
    with pytest.raises(DataError, match="asked for 13"):
        build_dataset("mnist", {"n_train": 13, "n_test": None, "seed": 0}, tmp_path)


def test_mnist_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="MNIST raw files missing") as error:
        build_dataset("mnist", {"n_train": None, "n_test": None, "seed": 0}, tmp_path)
    assert str(tmp_path / "MNIST" / "raw") in str(error.value)
    write_mnist(tmp_path)
    bad = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        build_dataset("mnist", {"n_train": None, "n_test": None, "seed": 0}, tmp_path)


def test_mnist_download_offline_error(tmp_path: Path, no_network: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.mnist as tv_mnist

    def offline(*args: Any, **kwargs: Any) -> None:
        raise URLError("no network")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    with pytest.raises(DataError) as error:
        download("mnist", tmp_path)
    message = str(error.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte.gz" in message
    assert "presets/offline.yaml" in message
    assert "\n" not in message


def test_mnist_download_is_a_no_op_when_files_exist(tmp_path: Path, no_network: None) -> None:
    write_mnist(tmp_path)
    download("mnist", tmp_path)


# --------------------------------------------------------------------------- CIFAR


def cifar(**overrides: Any) -> dict[str, Any]:
    return {"size": 16, "patch_size": None, "n_train": None, "n_test": None, "seed": 0, **overrides}


def test_cifar_grayscale_and_area_average(tmp_path: Path) -> None:
    batches = write_cifar(tmp_path)
    data, labels = batches["data_batch_1"]
    with pytest.warns(UserWarning, match="differ from the official CIFAR-10 release"):
        full = build_dataset("cifar", cifar(size=32), tmp_path)
    check_format(full, 20, 4, (32, 32), labels=True)
    rgb = data[0].reshape(3, 32, 32).astype(np.float64)
    # A known pixel: BT.601 luma of (R, G, B) at row 0, column 0 of the first image.
    expected = (0.299 * rgb[0, 0, 0] + 0.587 * rgb[1, 0, 0] + 0.114 * rgb[2, 0, 0]) / 255.0
    assert full.x_train[0, 0] == pytest.approx(expected, abs=1e-6)
    assert full.y_train.tolist()[:4] == labels
    assert full.y_test.tolist() == batches["test_batch"][1]

    with pytest.warns(UserWarning):
        small = build_dataset("cifar", cifar(size=16), tmp_path)
    check_format(small, 20, 4, (16, 16), labels=True)
    gray = full.x_train[0].reshape(32, 32).astype(np.float64)
    # A known block: output pixel (3, 5) is the mean of input rows 6-7, columns 10-11.
    assert small.x_train[0].reshape(16, 16)[3, 5] == pytest.approx(gray[6:8, 10:12].mean(), abs=1e-6)
    assert "2x2 blocks" in small.metadata["resize_method"]

    with pytest.warns(UserWarning):
        odd = build_dataset("cifar", cifar(size=12), tmp_path)
    check_format(odd, 20, 4, (12, 12), labels=True)
    assert "adaptive_avg_pool2d" in odd.metadata["resize_method"]
    assert odd.x_train[0].mean() == pytest.approx(gray.mean(), abs=0.02)


def test_cifar_patches_and_subsample(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    with pytest.warns(UserWarning):
        whole = build_dataset("cifar", cifar(size=8), tmp_path)
        ds = build_dataset("cifar", cifar(size=8, patch_size=4, n_train=7, n_test=3, seed=3), tmp_path)
        again = build_dataset("cifar", cifar(size=8, patch_size=4, n_train=7, n_test=3, seed=3), tmp_path)
    check_format(ds, 7, 3, (4, 4), labels=True)
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    images = whole.x_train.reshape(-1, 8, 8)
    for patch, label in zip(ds.x_train.reshape(-1, 4, 4), ds.y_train):
        # Each patch is a window of one of the images, and carries that image's label.
        hits = [i for i, image in enumerate(images) for r in range(5) for c in range(5)
                if np.array_equal(image[r:r + 4, c:c + 4], patch)]
        assert hits and all(whole.y_train[i] == label for i in hits)


def test_cifar_reads_official_style_str_keys(tmp_path: Path) -> None:
    """The official batches are Python 2 pickles: keys decode to str under latin1."""
    batches = write_cifar(tmp_path)
    data, labels = batches["test_batch"]
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    entry = {"data": data, "labels": labels, "batch_label": "testing batch 1 of 1"}
    path.write_bytes(pickle.dumps(entry, protocol=2))
    with pytest.warns(UserWarning):
        ds = build_dataset("cifar", cifar(size=32), tmp_path)
    assert ds.y_test.tolist() == labels


@pytest.mark.parametrize("content", [
    b"not a pickle at all",
    pickle.dumps({b"data": np.zeros((4, 100), dtype=np.uint8), b"labels": [0, 1, 2, 3]}),
    pickle.dumps({b"data": np.zeros((4, 3072), dtype=np.uint8), b"labels": [0, 1]}),
    b"cos\nsystem\n(S'echo pwned'\ntR.",  # a pickle that would run a shell command
])
def test_cifar_corrupt_batch_names_the_file(tmp_path: Path, content: bytes) -> None:
    write_cifar(tmp_path)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(content)
    with pytest.warns(UserWarning), pytest.raises(DataError, match="data_batch_3") as error:
        build_dataset("cifar", cifar(), tmp_path)
    assert str(bad) in str(error.value)


def test_cifar_missing_batches(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cifar-10-batches-py") as error:
        build_dataset("cifar", cifar(), tmp_path)
    assert "presets/offline.yaml" in str(error.value)


def test_cifar_download_offline_error(tmp_path: Path, no_network: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.cifar as tv_cifar

    def offline(*args: Any, **kwargs: Any) -> None:
        raise URLError("no network")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    with pytest.raises(DataError) as error:
        download("cifar", tmp_path)
    message = str(error.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "cifar-10-python.tar.gz" in message
    assert "snakemake --cores 2 --configfile presets/offline.yaml" in message


# --------------------------------------------------------------------------- file format, CLI


def test_corrupt_npz_names_the_file(synthetic_npz: Path, tmp_path: Path) -> None:
    good = synthetic_npz.read_bytes()
    cases = {
        "garbage.npz": b"this is not a zip file",
        "truncated.npz": good[: len(good) // 2],
        "flipped.npz": good[:200] + bytes(b ^ 0xFF for b in good[200:400]) + good[400:],
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataError, match=name):
            load_dataset(path)
    with pytest.raises(DataError, match="missing.npz"):
        load_dataset(tmp_path / "missing.npz")


def test_save_refuses_out_of_range(tmp_path: Path) -> None:
    x = np.full((2, 4), 1.5, dtype=np.float32)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        save_dataset(tmp_path / "bad.npz", Dataset(x, x, (2, 2)))
    assert not list(tmp_path.iterdir())


def test_for_display_clips_plain_data(synthetic_npz: Path) -> None:
    ds = load_dataset(synthetic_npz)
    np.testing.assert_array_equal(for_display(ds, ds.x_test), ds.x_test)
    assert for_display(ds, np.array([[-0.2, 1.3]])).tolist() == [[0.0, 1.0]]


def test_cli_prepare(tmp_path: Path, synthetic_params: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results" / "data" / "synthetic.npz"
    code = main(["prepare", "--source", "synthetic", "--params", json.dumps(synthetic_params),
                 "--root", str(tmp_path), "--out", str(out)])
    assert code == 0
    assert load_dataset(out).metadata["params"] == synthetic_params
    assert [p.name for p in out.parent.iterdir()] == ["synthetic.npz"]  # no temporary left behind
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600

    mnist_params = json.dumps({"n_train": None, "n_test": None, "seed": 0})
    code = main(["prepare", "--source", "mnist", "--params", mnist_params,
                 "--root", str(tmp_path / "empty"), "--out", str(tmp_path / "mnist.npz")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("sparse-vae prepare: error:") and "Traceback" not in err
    assert not (tmp_path / "mnist.npz").exists()


@pytest.mark.parametrize("method", ["zca", "olshausen_field"])
def test_natural_unit_variance_storage(method: str, tmp_path: Path) -> None:
    """scale unit_variance stores the whitened values themselves: the default [0, 1] file mapped back."""
    params = natural(method, n_train=2000, patch_size=8)
    squeezed = build_dataset("natural", params, tmp_path)
    real = build_dataset("natural", {**params, "scale": "unit_variance"}, tmp_path)
    assert real.metadata["value_range"] == "real" and "value_range" not in squeezed.metadata
    assert real.x_train.min() < 0.0 < 1.0 < real.x_train.max()
    assert real.x_train.astype(np.float64).var(axis=0).mean() == pytest.approx(1.0, rel=1e-3)
    meta = squeezed.metadata
    for a, b in [(real.x_train, squeezed.x_train), (real.x_test, squeezed.x_test)]:
        np.testing.assert_allclose(a, (b.astype(np.float64) - meta["display_offset"]) / meta["display_scale"],
                                   atol=2e-4 / meta["display_scale"])
    if method == "zca":   # dewhitened for figures either way (filtered images are shown as stored)
        np.testing.assert_allclose(for_display(real, real.x_test), for_display(squeezed, squeezed.x_test), atol=1e-4)
    save_dataset(tmp_path / "real.npz", real)
    np.testing.assert_array_equal(load_dataset(tmp_path / "real.npz").x_train, real.x_train)
