"""The code's layout: every memloc module imports on its own, no import circle among memloc's
modules, and the tests reach memloc through its public names only.

The import graph is read from the sources with ``ast``: an edge A -> B for every
``import``/``from ... import`` of a memloc module B in A, at module level or inside a function
(imports under ``if TYPE_CHECKING:`` never run and are left out). Loading a submodule runs its
package's ``__init__`` first; that is Python's loading order, not an import the module makes,
so it is no edge (a package re-exporting its submodules would otherwise be a circle).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from memloc.utils import repo_root

ROOT = repo_root()
PACKAGE = ROOT / "memloc"

# Import circles allowed for now, each closed only by an import inside a function, with why.
# The test fails when one of them disappears, so that this list stays true.
# None left: the notebook registry and runner (memloc.notebooks) sit below both the workflow
# and the book, and the Snakefile, not memloc.workflow, calls the book's page writer.
ALLOWED_LAZY_EDGES: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def memloc_module(dotted: str | None) -> str | None:
    """The memloc module ``dotted`` names, or the module it is an attribute of (``from
    memloc.models import create`` -> memloc.models); None outside memloc."""
    while dotted:
        if dotted in MODULES:
            return dotted
        dotted = dotted.rpartition(".")[0]
    return None


def imported_modules(node: ast.Import | ast.ImportFrom, importer: str) -> set[str]:
    """The memloc modules one import statement of module ``importer`` loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: resolved against the importer's package
            package = importer.split(".")
            if not MODULES[importer].name == "__init__.py":
                package = package[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join(package + ([node.module] if node.module else []))
        names = [base] + [f"{base}.{alias.name}" for alias in node.names]
    return {m for m in map(memloc_module, names) if m}


def type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import statements under ``if TYPE_CHECKING:``."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def import_graph() -> dict[tuple[str, str], set[str]]:
    """``{(importer, imported): {"module", "function"}}``: where the imports sit."""
    edges: dict[tuple[str, str], set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        top = {id(stmt) for stmt in tree.body}
        skipped = type_checking_only(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in skipped:
                continue
            level = "module" if id(node) in top else "function"
            for target in imported_modules(node, name) - {name}:
                edges.setdefault((name, target), set()).add(level)
    return edges


def find_cycle(edges) -> list[str] | None:
    """One circle of the directed graph ``edges`` as a path (first == last), or None."""
    successors: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        successors.setdefault(a, []).append(b)
    state: dict[str, str] = {}  # "open" while on the DFS path, "done" after
    path: list[str] = []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in successors.get(node, []):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(successors):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({("a", "b"), ("b", "c")}) is None
    assert find_cycle({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == ["a", "b", "c", "a"]


def test_no_import_circle_among_memloc_modules():
    edges = import_graph()
    assert ("memloc.models", "memloc.models.resnet9") in edges  # the graph is read at all
    for edge in ALLOWED_LAZY_EDGES:
        assert edges.get(edge) == {"function"}, f"{edge}: {edges.get(edge)}; update the list"
    kept = {e for e in edges if e not in ALLOWED_LAZY_EDGES}
    cycle = find_cycle(kept)
    assert cycle is None, (
        "import circle: "
        + " -> ".join(cycle)
        + ("; move what the lower module needs down into it (or into memloc.utils)")
    )


# The check runs in one fresh interpreter: third-party packages stay loaded, memloc's modules
# are all unloaded before each import, so each memloc module is imported with no other one
# loaded first (a fresh interpreter per module would cost about 4 s each for torch alone).
IMPORT_EACH = """
import importlib, json, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "memloc" or m.startswith("memloc.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
"""


def test_every_memloc_module_imports_on_its_own():
    names = sorted(MODULES)
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, json.dumps(names)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    failed = json.loads(run.stdout.strip().splitlines()[-1])
    assert failed == {}, "\n".join(f"{name}:\n{err}" for name, err in failed.items())


# ----------------------------------------------------------------------------- public API


def private_uses(source: str) -> list[str]:
    """Where a test reaches a private memloc name: ``from memloc.x import _y``, ``mod._y``
    on a memloc module (bound by import, or ``memloc.x._y``), ``setattr(mod, "_y", ...)`` and
    ``monkeypatch.setattr("memloc.x._y", ...)``. Dunder names (``__version__``) are public."""

    def private(name: str) -> bool:
        return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

    tree = ast.parse(source)
    modules: dict[str, str] = {}  # local name -> memloc module
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if memloc_module(alias.name):
                    if alias.asname:
                        modules[alias.asname] = alias.name
                    else:
                        modules[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and memloc_module(node.module):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if private(alias.name):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
                elif full in MODULES:
                    modules[alias.asname or alias.name] = full

    def module_of(expr) -> str | None:
        if isinstance(expr, ast.Name):
            return modules.get(expr.id)
        if isinstance(expr, ast.Attribute) and (base := module_of(expr.value)):
            full = f"{base}.{expr.attr}"
            return full if full in MODULES else None
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr) and module_of(node.value):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("setattr"):
            args = node.args
            strings = [a.value for a in args[:2] if isinstance(a, ast.Constant)]
            if len(args) >= 2 and module_of(args[0]) and strings and private(strings[0]):
                found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
            elif args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                target = args[0].value
                owner, _, attr = target.rpartition(".")
                if memloc_module(owner) == owner and private(attr):
                    found.append(f"line {node.lineno}: setattr of {target}")
    return sorted(found, key=lambda where: int(where.split()[1].rstrip(":")))


def test_the_private_name_scan_finds_each_form():
    source = """
import memloc.book
from memloc import artifacts
from memloc.experiments import layers as L
from memloc.splits import _checksum
import memloc.experiments.units as U
artifacts._sha256(p)
L._cache_stem(p)
memloc.book._filter_toc(t)
U.unitmem_table(r)
monkeypatch.setattr(artifacts, "_train_entry", f)
monkeypatch.setattr("memloc.artifacts._train_entry", f)
monkeypatch.setattr(artifacts, "train", f)
model._forward_hooks
memloc.__version__
"""
    found = private_uses(source)
    assert len(found) == 6, found
    assert [f.split(":")[0] for f in found] == [
        "line 5", "line 7", "line 8", "line 9", "line 11", "line 12"
    ]  # fmt: skip


@pytest.mark.parametrize("path", sorted((ROOT / "tests").glob("*.py")), ids=lambda p: p.name)
def test_tests_use_public_memloc_names_only(path):
    found = private_uses(path.read_text())
    assert not found, f"{path.name} reaches private memloc names:\n" + "\n".join(found)
