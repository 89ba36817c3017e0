"""The result notebooks: their registry (the book's table of contents), their parameters and
the execution of one of them with Papermill.

The list of result notebooks is ``book/_toc.yml`` itself: every entry ``file: results/<name>``
is the executed form of ``notebooks/<name>.py`` (Jupytext percent format). The workflow's
notebook job (:mod:`memloc.workflow`), ``memloc report`` (:mod:`memloc.report`) and the book's
pages (:mod:`memloc.book`) all read notebooks through this module, which imports none of them.

Example
-------
>>> [nb.result_id for nb in result_notebooks()][:2]
['R0', 'T1']
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from memloc.utils import relative_path, repo_root

ROOT = repo_root()
BOOK_DIR = ROOT / "book"
NOTEBOOKS_DIR = ROOT / "notebooks"
KERNEL_NAME = "memloc"
RESULTS_PREFIX = "results/"


class NotebookFailed(RuntimeError):
    """A result notebook raised an exception; names the notebook and the failing cell."""

    def __init__(self, name: str, message: str, *, cell: int | None = None, path=None):
        super().__init__(message)
        self.name = name
        self.cell = cell
        self.path = path


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ResultNotebook:
    """One result of the book: ``notebooks/<name>.py`` shown at ``book/results/<name>``."""

    name: str

    @property
    def page(self) -> str:
        return RESULTS_PREFIX + self.name

    @property
    def result_id(self) -> str:
        """The paper's label from the prefix: ``t1_layermem`` -> ``T1``, ``f3b_x`` -> ``F3b``."""
        prefix = self.name.split("_", 1)[0]
        return prefix[:1].upper() + prefix[1:]


def _toc_entries(node):
    """Every ``file:`` value of a Jupyter Book ToC, in reading order."""
    if isinstance(node, dict):
        if "file" in node:
            yield node["file"]
        for key in ("root", "parts", "chapters", "sections"):
            if key == "root" and isinstance(node.get("root"), str):
                yield node["root"]
            elif isinstance(node.get(key), list):
                for child in node[key]:
                    yield from _toc_entries(child)
    elif isinstance(node, list):
        for child in node:
            yield from _toc_entries(child)


def result_notebooks(toc: str | Path | None = None) -> list[ResultNotebook]:
    """The result notebooks the ToC lists (entries ``results/<name>``), in reading order."""
    toc = Path(toc) if toc else BOOK_DIR / "_toc.yml"
    tree = yaml.safe_load(toc.read_text())
    out = []
    for entry in _toc_entries(tree):
        entry = str(entry).removesuffix(".ipynb")
        if entry.startswith(RESULTS_PREFIX) and "/" not in entry[len(RESULTS_PREFIX) :]:
            out.append(ResultNotebook(entry[len(RESULTS_PREFIX) :]))
    return out


# ----------------------------------------------------------------------------- execution


def ensure_kernel(name: str = KERNEL_NAME) -> str:
    """A Jupyter kernelspec ``name`` that runs this interpreter (installed into the venv if
    missing or pointing elsewhere), so notebooks see the same memloc as the driver."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
        if spec.argv and Path(spec.argv[0]) == Path(sys.executable):
            return name
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    try:
        install(kernel_name=name, display_name="Python (memloc)", prefix=sys.prefix)
    except PermissionError:
        install(kernel_name=name, display_name="Python (memloc)", user=True)
    return name


def _read_notebook(source: Path):
    import jupytext

    nb = jupytext.read(source, fmt="py:percent")
    if not any("parameters" in cell.get("metadata", {}).get("tags", []) for cell in nb.cells):
        raise ValueError(
            f"{source} has no cell tagged 'parameters'; start its parameter cell with "
            '`# %% tags=["parameters"]` so Papermill can inject profile and out_dir'
        )
    nb.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python (memloc)",
        "language": "python",
    }
    return nb


def notebook_parameters(name: str, notebooks_dir: str | Path = NOTEBOOKS_DIR) -> list[str]:
    """The names of notebook ``name``'s parameters cell, read as Papermill reads them (what it
    may inject without its "Passed unknown parameter" warning)."""
    from papermill.translators import PythonTranslator

    notebook = _read_notebook(Path(notebooks_dir) / f"{name}.py")
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    return [parameter.name for parameter in PythonTranslator.inspect(cell)]


def _cell_line(source: Path, cell_source: str) -> int | None:
    """Line of ``notebooks/<name>.py`` where a cell's first non-empty line stands."""
    first = next((ln for ln in cell_source.splitlines() if ln.strip()), None)
    if first is None:
        return None
    for number, line in enumerate(Path(source).read_text().splitlines(), start=1):
        if line.rstrip() == first.rstrip():
            return number
    return None


def _failure(nb: ResultNotebook, source: Path, output: Path, err) -> NotebookFailed:
    """Turn Papermill's error into a message that names the notebook and the failing cell."""
    from papermill.exceptions import strip_color

    index = err.cell_index
    try:  # Papermill's injected-parameters cell is not a cell of the source file
        import nbformat

        cells = nbformat.read(output, as_version=4).cells
        cells = [c for c in cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
        for i, cell in enumerate(cells):
            if cell.source == err.source:
                index = i
                injected = sum(
                    "injected-parameters" in c.metadata.get("tags", []) for c in cells[:i]
                )
                index = i - injected
                break
    except Exception:  # the message stays useful without the mapping
        pass
    cell = index + 1
    line = _cell_line(source, err.source)
    where = f"{source.name}, cell {cell}" + (f" (line {line})" if line else "")
    excerpt = "\n".join("    " + ln for ln in err.source.splitlines()[:8])
    message = (
        f"notebook {nb.name!r} failed in {where}, In [{err.exec_count}]:\n{excerpt}\n"
        f"{err.ename}: {strip_color(str(err.evalue))}\n"
        f"The partly executed notebook is {output}; notebooks executed before it are kept."
    )
    return NotebookFailed(nb.name, message, cell=cell, path=output)


@dataclass
class RunRecord:
    """One executed notebook: its name, wall seconds and when it finished (UTC)."""

    name: str
    seconds: float
    executed_at: str


def run_notebook(
    nb: ResultNotebook,
    profile: str,
    *,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    results_dir: Path = BOOK_DIR / "results",
    cwd: Path = ROOT,
    parameters: dict | None = None,
    verbose: bool = False,
    run: str | None = None,
) -> RunRecord:
    """Execute one result notebook (the workflow's ``notebook`` job decides when).

    Papermill injects ``profile``, ``out_dir = <results_dir>/<run>/<name>/`` (relative to
    ``cwd``; ``run`` None: the profile's name) and ``parameters``. The executed notebook
    becomes ``<results_dir>/<run>/<name>.ipynb`` only when every cell ran; a failing run
    leaves ``<name>.failed.ipynb`` and ``<name>.error.txt`` instead.

    Raises
    ------
    NotebookFailed
        When a cell raises; the message names the notebook, the cell and the error.
    """
    import tempfile

    import papermill
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    source = Path(notebooks_dir) / f"{nb.name}.py"
    if not source.exists():
        raise FileNotFoundError(f"no notebook {source} for the result {nb.name!r}")
    out_root = Path(results_dir) / (run or profile)
    output = out_root / f"{nb.name}.ipynb"
    running = out_root / f"{nb.name}.running.ipynb"
    failed = out_root / f"{nb.name}.failed.ipynb"
    error_path = out_root / f"{nb.name}.error.txt"
    out_dir = out_root / nb.name
    parameters = {
        "profile": profile,
        "out_dir": relative_path(out_dir, Path(cwd)),
        **(parameters or {}),
    }
    # A fresh out_dir: figures and verdicts of an earlier run must not survive into this one.
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (output, failed, error_path):
        stale.unlink(missing_ok=True)
    notebook = _read_notebook(source)
    kernel = ensure_kernel()
    start = time.time()
    # Local sockets keep the kernel's traffic off TCP; a folder of its own per run keeps two
    # notebooks executing side by side from picking the same socket names.
    with tempfile.TemporaryDirectory(prefix="memloc-kernel-") as sockets:
        config = Config({"KernelManager": {"transport": "ipc", "ip": f"{sockets}/ipc"}})
        try:
            papermill.execute_notebook(
                notebook,
                str(running),
                parameters=parameters,
                kernel_name=kernel,
                config=config,
                language="python",
                cwd=str(cwd),
                progress_bar=False,
                stdout_file=sys.stdout if verbose else None,
                stderr_file=sys.stderr if verbose else None,
            )
        except PapermillExecutionError as err:
            running.replace(failed)
            failure = _failure(nb, source, failed, err)
            error_path.write_text(str(failure) + "\n")
            raise failure from None
    running.replace(output)
    seconds = round(time.time() - start, 2)
    return RunRecord(nb.name, seconds, datetime.now(UTC).isoformat(timespec="seconds"))
