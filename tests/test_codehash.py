"""The normalised code hash: blind to comments, docstrings and formatting, sensitive to any change of
what the code does, over exactly the modules a stage imports."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sparse_vae import codehash, versions


def test_comments_docstrings_and_formatting_do_not_count(tmp_path: Path) -> None:
    base = tmp_path / "a.py"
    base.write_text('"""Module."""\nX = 1\n\ndef f(a):\n    """Doc."""\n    return a + X\n')
    same = tmp_path / "b.py"
    same.write_text('# a comment\n"""Another docstring."""\nX = (1)\n\n\ndef f(a):  # why\n    return a+X\n')
    changed = tmp_path / "c.py"
    changed.write_text('"""Module."""\nX = 2\n\ndef f(a):\n    """Doc."""\n    return a + X\n')
    renamed = tmp_path / "d.py"
    renamed.write_text('"""Module."""\nX = 1\n\ndef f(b):\n    """Doc."""\n    return b + X\n')
    norm = codehash.normalised_source
    assert norm(base) == norm(same)
    assert norm(base) != norm(changed)
    assert norm(base) != norm(renamed)   # a rename is a change of the code; only the versions ignore it


@pytest.mark.parametrize("stage", ["train", "analysis", "report", "data:natural", "data:fashion_mnist"])
def test_the_import_graph_covers_every_module_a_stage_loads(stage: str) -> None:
    """What importing the stage's entry module really loads (in a fresh interpreter) is inside the
    statically found graph, so no module a stage runs escapes the hash (but the provenance machinery,
    ``codehash.NOT_HASHED``, which computes no number)."""
    entry = versions.entry_module(stage)
    script = textwrap.dedent(f"""
        import importlib, json, sys
        importlib.import_module({entry!r})
        print(json.dumps(sorted(m for m in sys.modules if m == "sparse_vae" or m.startswith("sparse_vae."))))
    """)
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                       check=True).stdout)
    assert set(loaded) - codehash.NOT_HASHED <= set(codehash.imported_modules(entry))


def test_a_source_module_is_in_its_own_stage_only() -> None:
    natural = codehash.imported_modules(versions.entry_module("data:natural"))
    assert "sparse_vae.data.natural" in natural and "sparse_vae.data.mnist" not in natural
    assert "sparse_vae.data.mnist" in codehash.imported_modules(versions.entry_module("data:fashion_mnist"))
    assert "sparse_vae.report.html" not in codehash.imported_modules(versions.entry_module("train"))
    assert not codehash.NOT_HASHED & set(codehash.imported_modules(versions.entry_module("train")))


def test_stage_record_carries_version_and_hash() -> None:
    record = codehash.stage_record("train")
    assert record == {"stage": "train", "version": versions.TRAIN, "code_hash": codehash.stage_hash("train")}
    assert len(record["code_hash"]) == 16
    with pytest.raises(KeyError, match="no DATA version"):
        versions.version("data:nowhere")
