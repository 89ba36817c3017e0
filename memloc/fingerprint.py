"""Which code a stored result depends on: one rule for every store.

A stored result depends on the module that computes it, on the modules of the objects it is
given (an encoder's architecture, an augmentation policy: their code runs inside the
computation without being imported by it), and on every memloc module those import, directly
or through others, at module level or inside a function. Its fingerprint is the SHA-256 of the
code of exactly those sources (:func:`memloc.utils.code_hash`: what they compute, so a
docstring, a comment or the layout do not count). Editing a function inside that closure
invalidates the stored result; editing a module outside it, or a docstring, keeps it.

The stores that use it: the LayerMem scores (:mod:`memloc.experiments.layers`), the UnitMem
mean activations (:mod:`memloc.experiments.units`) and the book's notebooks
(:func:`memloc.workflow.write_code_digest`, the closure of every module). Trained encoders are
keyed by their configuration and memloc's version instead (retraining is the expensive step,
so a code change retrains only with a version bump); each entry records the fingerprint of
the training code it was trained with (``provenance.json``).

This module sits at the bottom: it reads sources with :mod:`ast` and imports no memloc module
but :mod:`memloc.utils`.

Example
-------
>>> "memloc/stats.py" in [p.as_posix()[-15:] for p in sources("memloc.metrics.unitmem")]
True
>>> len(fingerprint("memloc.metrics.unitmem"))
64
"""

from __future__ import annotations

import ast
import functools
import types
from pathlib import Path

from memloc.utils import code_hash, repo_root

TRAINING = ("memloc.train", "memloc.ssl", "memloc.augment", "memloc.models", "memloc.privacy")


def _module_files(root: Path) -> dict[str, Path]:
    """memloc's modules under ``root`` (the folder holding the ``memloc`` package) by name."""
    files = {}
    for path in sorted((root / "memloc").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _owner(dotted: str, files: dict[str, Path]) -> str | None:
    """The module ``dotted`` names, or the module it is an attribute of."""
    while dotted:
        if dotted in files:
            return dotted
        dotted = dotted.rpartition(".")[0]
    return None


def imports_of(module: str, root: Path | None = None) -> set[str]:
    """The memloc modules ``module`` imports anywhere in its source (``from memloc.models
    import create`` counts as memloc.models; ``from memloc.metrics import layermem`` as the
    submodule when ``layermem`` is one)."""
    files = _module_files(Path(root) if root else repo_root())
    tree = ast.parse(files[module].read_text())
    package = module if files[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: against the importer's package
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            owner = _owner(name, files) if name.startswith("memloc") else None
            if owner and owner != module:
                found.add(owner)
    return found


def _module_of(target) -> str:
    if isinstance(target, str):
        return target
    if isinstance(target, types.ModuleType):
        return target.__name__
    return type(target).__module__


def closure(*targets, root: Path | None = None) -> list[str]:
    """Every memloc module the ``targets`` depend on, themselves included, sorted.

    ``targets``: module names (``"memloc.experiments.layers"``), modules, or objects whose
    class's module counts (an encoder, a policy). Targets outside memloc are ignored.
    """
    root = Path(root) if root else repo_root()
    files = _module_files(root)
    todo = [m for m in (_owner(_module_of(t), files) for t in targets) if m]
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(imports_of(module, root) - seen)
    return sorted(seen)


def sources(*targets, root: Path | None = None) -> list[Path]:
    """The source files of :func:`closure`."""
    root = Path(root) if root else repo_root()
    files = _module_files(root)
    return [files[m] for m in closure(*targets, root=root)]


def fingerprint(*targets, root: Path | None = None) -> str:
    """SHA-256 of the code of everything ``targets`` depend on (:func:`closure`)."""
    root = Path(root) if root else repo_root()
    if root == repo_root():
        return _cached(tuple(sorted(closure(*targets))))
    return code_hash(sources(*targets, root=root), root=root)


@functools.lru_cache(maxsize=64)
def _cached(modules: tuple[str, ...]) -> str:
    # memloc's own sources do not change while a process runs: hash each closure once.
    return code_hash(sources(*modules), root=repo_root())


def everything(root: Path | None = None) -> list[str]:
    """Every memloc module (the scope of the book's notebooks, which may import any)."""
    return sorted(_module_files(Path(root) if root else repo_root()))
