"""Datasets of the study: one builder module per source, all prepared into the same ``.npz`` format.

Each source module (``synthetic``, ``mnist``, ``fashion_mnist``, ``cifar``, ``digits``,
``natural``) exposes ``PARAMS`` (the ``prepare:`` keys it reads) and ``build(params, root) ->
Dataset``; those that need raw files (``DOWNLOADABLE``) also expose ``download(root)``. Modules
are imported on demand so that preparing the synthetic data never pays for importing torchvision.

Every prepared file's metadata records where it came from (source, params, the preprocessing as
formulas, sizes, checksums of the inputs), so a figure can always be traced back to its data.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from sparse_vae.data.io import Dataset, array_checksum, load_dataset, save_dataset
from sparse_vae.errors import DataError

__all__ = [
    "SOURCES",
    "DOWNLOADABLE",
    "Dataset",
    "build_dataset",
    "download",
    "load_dataset",
    "prepare",
    "save_dataset",
    "subsample",
]

SOURCES = ("synthetic", "sparse_linear", "mnist", "fashion_mnist", "cifar", "digits", "natural")
DOWNLOADABLE = ("mnist", "fashion_mnist", "cifar")


def _module(source: str) -> ModuleType:
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r} (known: {', '.join(SOURCES)})")
    return importlib.import_module(f"sparse_vae.data.{source}")


def _check_params(source: str, params: dict[str, Any], expected: tuple[str, ...],
                  optional: tuple[str, ...] = ()) -> None:
    """Reject missing and unknown keys up front: a typo must not silently fall back to a default.

    ``optional`` keys (a source's ``OPTIONAL``) may be left out; the source documents their defaults.
    """
    if not isinstance(params, dict):
        raise DataError(f"{source}: prepare params must be a mapping, got {type(params).__name__}")
    missing = [key for key in expected if key not in params]
    unknown = sorted(set(params) - set(expected) - set(optional))
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown {', '.join(unknown)}")
    if problems:
        raise DataError(f"{source} prepare params: {'; '.join(problems)} (expected: {', '.join(expected + optional)})")


def subsample(n: int | None, total: int, rng: np.random.Generator, what: str) -> np.ndarray:
    """Indices of a seeded random subset (kept in the source's order), or all when ``n`` is null."""
    if n is None:
        return np.arange(total)
    if n > total:
        raise DataError(f"{what}: asked for {n} examples, the source has {total}")
    return np.sort(rng.choice(total, size=int(n), replace=False))


def build_dataset(source: str, params: dict[str, Any], root: Path) -> Dataset:
    """Build a source's dataset in memory and stamp the metadata every source shares."""
    module = _module(source)
    _check_params(source, params, module.PARAMS, tuple(getattr(module, "OPTIONAL", ())))
    dataset: Dataset = module.build(params, Path(root))
    metadata = dict(dataset.metadata)
    metadata.update(
        source=source,
        params=params,
        image_shape=[int(v) for v in dataset.image_shape],
        sizes={
            "n_train": int(dataset.x_train.shape[0]),
            "n_test": int(dataset.x_test.shape[0]),
            "input_dim": int(dataset.x_train.shape[1]),
        },
    )
    checksums = dict(metadata.get("checksums", {}))
    # The content checksum identifies the prepared arrays themselves, whatever produced them.
    checksums["arrays_sha256"] = array_checksum(dataset.x_train, dataset.x_test)
    metadata["checksums"] = checksums
    dataset.metadata = metadata
    return dataset


def prepare(source: str, params: dict[str, Any], root: Path, out: Path) -> None:
    """Build ``source`` with its ``prepare:`` params (raw files under ``root``) into ``out``."""
    save_dataset(out, build_dataset(source, params, root))


def download(source: str, root: Path) -> None:
    """Fetch (or verify already present) raw files of a downloadable source into ``root``."""
    if source not in DOWNLOADABLE:
        raise DataError(f"{source!r} has no raw files to download (downloadable: {', '.join(DOWNLOADABLE)})")
    _module(source).download(Path(root))
