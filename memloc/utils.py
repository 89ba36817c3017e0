"""Small helpers shared by every stage: devices, seeds, atomic writes."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

import torch


def get_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: the one asked for, else CUDA when present, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A seeded generator on ``device``; library code never touches the global RNG."""
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(int(seed))
    return g


def repo_root() -> Path:
    """The checkout that holds this package (``data/``, ``cache/`` and ``book/`` live there)."""
    return Path(__file__).resolve().parent.parent


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj) -> None:
    """JSON twin of :func:`atomic_write_bytes` (sorted keys, so equal objects give equal files)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_torch_save(obj, path: str | Path) -> None:
    """``torch.save`` through a temporary file and ``os.replace``: an interrupted save leaves
    the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_key_values(items: list[str] | None, option: str) -> dict:
    """``KEY=VALUE`` strings of a command-line ``option`` (``--param``, ``--set``) as a dict,
    each value read as JSON when it parses (numbers, lists), else kept as text; an item
    without ``=`` stops the command with one line naming the option.

    >>> parse_key_values(["epochs=3", "dataset=digits", "crop_scale=[0.5,1]"], "--set")
    {'epochs': 3, 'dataset': 'digits', 'crop_scale': [0.5, 1]}
    """
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"{option} expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def code_digest(path: str | Path) -> bytes:
    """What a Python source computes: the hash of its syntax tree without docstrings, so that
    editing comments, docstrings or layout keeps stored results and executed notebooks valid
    (another Python version may dump the tree differently: its first run recomputes)."""
    tree = ast.parse(Path(path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = node.body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).digest()


def memloc_sources() -> list[Path]:
    """memloc's Python sources: git's view (tracked plus untracked, not ignored) when the
    checkout is a git repository, else every ``memloc/**/*.py``. Here, at the bottom layer,
    so that the measurement stores and the workflow can both fingerprint code without
    importing each other."""
    package = Path(__file__).resolve().parent
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "memloc"],
            cwd=package.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        files = [package.parent / p for p in listed if p.endswith(".py")]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if not files:
        files = list(package.rglob("*.py"))
    return sorted(p for p in files if p.is_file())


def code_hash(sources: list[Path] | None = None, root: Path | None = None) -> str:
    """SHA-256 over ``sources``' :func:`memloc.utils.code_digest` (what they compute, not
    their docstrings or comments) and their paths relative to ``root``; by default memloc's
    sources (:func:`memloc_sources`) relative to the repository."""
    root = Path(root) if root is not None else Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in memloc_sources() if sources is None else sources:
        h.update(Path(path).relative_to(root).as_posix().encode() + b"\0")
        h.update(code_digest(path) + b"\0")
    return h.hexdigest()


def sha256_file(path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks (cache manifests, bundles)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def relative_path(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` (POSIX form) when it lies below it, else absolute."""
    try:
        return Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return str(Path(path).resolve())
