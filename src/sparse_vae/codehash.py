"""A normalised hash of the code a stage runs, for provenance (not for invalidation: ``versions``).

The modules are found from the import graph, not from a hand-kept list: starting at the stage's
entry module, every ``import sparse_vae...`` / ``from sparse_vae... import`` (at any depth of the
file, so imports inside functions count) and every parent package's ``__init__`` is followed. Each
module is hashed as its syntax tree with docstrings removed, so comments, docstrings and formatting
do not change the hash while any change to what the code does (a constant, a name, an expression)
does. The tree's text (``ast.dump``) can differ between Python versions, so compare hashes made by
the same Python.
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

from sparse_vae import versions

__all__ = ["PACKAGE", "imported_modules", "module_path", "normalised_source", "stage_hash", "stage_record"]

PACKAGE = "sparse_vae"
_ROOT = Path(__file__).resolve().parent
#: the provenance machinery itself: the versions are recorded beside the hash, and neither module
#: computes a number (bumping ANALYSIS must not make every training run "older code")
NOT_HASHED = frozenset({"sparse_vae.versions", "sparse_vae.codehash"})


def module_path(module: str) -> Path | None:
    """The file of a ``sparse_vae`` module or package, or None when there is none."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = _ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module name of a (possibly relative) ``from ... import``."""
    if not node.level:
        return node.module or ""
    anchor = module.split(".") if is_package else module.split(".")[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join(anchor + ([node.module] if node.module else []))


def _direct_imports(module: str) -> set[str]:
    """Package modules one module imports (``from pkg import name`` counts ``pkg.name`` when that is a
    module), plus the parent packages of each, whose ``__init__`` runs first."""
    path = module_path(module)
    if path is None:
        return set()
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, path.name == "__init__.py")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if module_path(f"{base}.{alias.name}"))
    ours = {name for name in found if module_path(name) is not None}
    parents = {".".join(name.split(".")[:i]) for name in ours | {module} for i in range(1, name.count(".") + 1)}
    return (ours | parents) - {module}


def imported_modules(entry: str) -> list[str]:
    """Every package module the entry module runs, itself included, sorted."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        module = todo.pop()
        if module in seen or module in NOT_HASHED or module_path(module) is None:
            continue
        seen.add(module)
        todo.extend(_direct_imports(module) - seen)
    return sorted(seen)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def normalised_source(path: Path) -> str:
    """A module's syntax tree without docstrings, as text: blind to comments and formatting."""
    return ast.dump(_strip_docstrings(ast.parse(path.read_text(), filename=str(path))), include_attributes=False)


@lru_cache(maxsize=None)
def stage_hash(stage: str) -> str:
    """The normalised hash (16 hex digits) of the modules a stage imports (``versions.entry_module``)."""
    digest = hashlib.sha256()
    for module in imported_modules(versions.entry_module(stage)):
        path = module_path(module)
        assert path is not None
        digest.update(module.encode() + b"\0" + normalised_source(path).encode() + b"\0")
    return digest.hexdigest()[:16]


def stage_record(stage: str) -> dict[str, str | int]:
    """What a run records of the code that made it: stage, version and normalised hash."""
    return {"stage": stage, "version": versions.version(stage), "code_hash": stage_hash(stage)}
