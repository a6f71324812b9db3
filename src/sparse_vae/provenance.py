"""What produced a number: the versions of every package that touches the study's numbers, the
package's git commit, and the CPU, BLAS and CUDA that ran it.

Verdicts move between machines when reduction orders change, so a run records its environment
(``versions``; train.py writes it into train.json's "versions") and the report shows it once and
flags runs that differ. Every probe is best-effort and never fails: outside a git checkout the
commit is None, without CUDA the CUDA fields say so. Not here: comparing environments (the report's
``runs.environments``).
"""

from __future__ import annotations

import platform
import re
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "versions"]

#: distribution name -> key in the versions dict: every package whose code computes a reported number
#: (torch trains, numpy/scipy/pandas compute metrics and intervals, scikit-learn the probe, MI and ICA,
#: scikit-image the natural patches and field fits, torchvision the downloads, snakemake runs it all).
PACKAGES = {
    "torch": "torch", "torchvision": "torchvision", "numpy": "numpy", "scipy": "scipy", "pandas": "pandas",
    "scikit-learn": "scikit-learn", "scikit-image": "scikit-image", "snakemake": "snakemake",
    "sparse-vae": "sparse_vae",
}


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout this package runs from (``+dirty`` with uncommitted changes to
    tracked files), or None outside a checkout or without git."""
    here = Path(__file__).resolve().parent
    try:
        top = subprocess.run(["git", "-C", str(here), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10)
        project = Path(top.stdout.strip()) / "pyproject.toml"
        if top.returncode != 0 or 'name = "sparse-vae"' not in (project.read_text() if project.is_file() else ""):
            return None  # not this project's checkout (e.g. an installed copy inside another repository)
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what the platform module says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _numpy_blas() -> str | None:
    try:
        import numpy as np

        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # numpy < 1.26 has no dict mode; the field is then unknown, not an error
        return None


def _torch_build() -> dict[str, Any]:
    """torch's BLAS/LAPACK (from torch.__config__.show()), CUDA and cuDNN versions, and the GPU."""
    try:
        import torch
    except ImportError:
        return {}
    shown = torch.__config__.show()
    blas, lapack = (re.search(rf"\b{key}=([^,\s]+)", shown) for key in ("BLAS_INFO", "LAPACK_INFO"))
    try:  # the vector kernels torch dispatches to (AVX2, AVX512, ...): they change reduction orders
        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:
        capability = None
    out: dict[str, Any] = {"torch_blas": blas and blas.group(1), "torch_lapack": lapack and lapack.group(1),
                           "torch_cpu_capability": capability, "torch_threads": torch.get_num_threads(),
                           "cuda": torch.version.cuda, "cudnn": None, "gpu": None}
    try:
        if torch.cuda.is_available():
            out["cudnn"] = torch.backends.cudnn.version()
            out["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # a broken driver must not stop a CPU run from recording its environment
        pass
    return out


def versions() -> dict[str, Any]:
    """The environment of this process, flat and JSON-able: python and each of ``PACKAGES`` (None when
    absent), the package's git commit, the platform, CPU model, numpy's and torch's BLAS, CUDA."""
    out: dict[str, Any] = {"python": platform.python_version()}
    out.update((key, _version(dist)) for dist, key in PACKAGES.items())
    out.update(git_commit=git_commit(), platform=platform.platform(), cpu=cpu_model(), numpy_blas=_numpy_blas())
    out.update(_torch_build())
    return out
