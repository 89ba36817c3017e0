"""Results bundles: the trained encoders and stored measurements of the book in one archive.

Training the book's encoders is the long part of a build (hours at the ``cpu`` profile on two
cores, GPU-hours at ``paper``); executing the notebooks on trained encoders takes minutes. A
bundle carries what the book's notebooks read from the encoder cache, so a reader (or CI) can
rebuild the book of Wang et al. (NeurIPS 2024) without training anything:

- every complete cache entry that :func:`memloc.workflow.book_plan` names at a profile: its
  ``config.json``, ``model.safetensors``, ``log.json``, ``provenance.json``, ``splits.json``,
  ``manifest.json`` and training snapshots ``checkpoints/epoch_*.safetensors``. Not
  ``checkpoints/last.pt`` (a pickle that only resumes an unfinished run), lock files, temporary
  files or entries that are not complete;
- the stored measurements beside the entries (``layermem-*`` of
  :mod:`memloc.experiments.layers`, ``unitmem-*.npz`` of :mod:`memloc.experiments.units`,
  ``finetune-*.json`` of :mod:`memloc.experiments.downstream`).
  Their names are hashes of what they measured (the encoders' weights among it), so which of
  them a profile's notebooks read is known only by running the notebooks: the bundle carries
  every complete one, and a stored measurement that no notebook asks for is never read.

The archive is a tar file: the files under ``cache/``, ``bundle.json`` (profile, entries) and,
last, ``MANIFEST.sha256``, one ``<sha256>  <path>`` line per file (``sha256sum -c`` reads it).
:func:`import_bundle` unpacks into a staging folder inside the cache, checks every file
against the manifest and only then moves whole entries into place: a bad or truncated bundle
changes nothing, and complete entries already in the cache are kept.

``memloc bundle export|import|status`` is the command line; ``make book BUNDLE=<url or path>``
imports a bundle before the workflow runs, so Snakemake finds the entries' weights and runs no
``train`` job for them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from memloc.utils import sha256_file

MANIFEST = "MANIFEST.sha256"
INFO = "bundle.json"
CACHE_DIR = "cache"  # the folder of the archive that mirrors the encoder cache
FORMAT = 1
URL_SCHEMES = ("http", "https", "ftp", "sftp", "doi", "file")
# Stored measurements beside the cache entries (memloc.experiments.layers, .units, .downstream).
LAYERMEM_PREFIX = "layermem-"
UNITMEM_PREFIX = "unitmem-"
FINETUNE_PREFIX = "finetune-"  # T5's fine-tuning accuracies, one JSON per layer set and seed
LAYERMEM_PARTS = (".json", ".table.csv.gz", ".points.csv.gz")


class BundleError(ValueError):
    """A bundle that cannot be exported or imported; the message is one line."""


@dataclass
class BundleContents:
    """What :func:`export_bundle` packs at a profile: the plan's complete ``entries``, the
    plan's entries it leaves out because they are not complete (``missing``), the stored
    ``measurements`` and every file as (path in the archive, path on disk)."""

    profile: str
    entries: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    measurements: list[str] = field(default_factory=list)
    files: list[tuple[str, Path]] = field(default_factory=list)


@dataclass
class ImportReport:
    """What :func:`import_bundle` did: entries moved into the cache (``imported``), entries
    the cache already held complete (``kept``), measurement files added and kept; the
    archive's SHA-256 (to pin a URL with ``--sha256``)."""

    source: str
    profile: str
    archive_sha256: str
    imported: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    measurements_added: int = 0
    measurements_kept: int = 0


# ----------------------------------------------------------------------------- what goes in


def book_entries(profile: str, parameters: dict | None = None) -> list[str]:
    """The cache entries the book's notebooks read at ``profile``: the ``train`` jobs of the
    workflow (:func:`memloc.workflow.book_plan` over the notebooks the ToC lists and that
    exist, as ``workflow/Snakefile`` computes it), in the plan's order."""
    from memloc import book
    from memloc.workflow import book_plan

    present = [
        nb.name for nb in book.result_notebooks() if (book.NOTEBOOKS_DIR / f"{nb.name}.py").exists()
    ]
    plan = book_plan(profile, present, parameters)
    needed = {entry for entries in plan.notebooks.values() for entry in entries}
    return [entry for entry in plan.encoders if entry in needed]


def entry_files(entry: Path) -> list[Path]:
    """The files of a complete cache entry that a bundle carries: its top-level files and its
    snapshots (``checkpoints/*.safetensors``); never ``last.pt``, hidden or temporary files."""
    files = [p for p in sorted(entry.iterdir()) if p.is_file() and _kept_name(p.name)]
    snapshots = entry / "checkpoints"
    if snapshots.is_dir():
        files += [
            p
            for p in sorted(snapshots.iterdir())
            if p.is_file() and p.suffix == ".safetensors" and _kept_name(p.name)
        ]
    return files


def _kept_name(name: str) -> bool:
    # atomic writes go through ".<name>.<random>.tmp"; locks are "<entry>.lock" files.
    return not name.startswith(".") and not name.endswith((".tmp", ".lock", ".pt"))


def stored_measurements(cache_dir: str | Path | None = None) -> list[Path]:
    """Complete stored measurements in the cache folder: ``unitmem-<key>.npz`` and
    ``finetune-<key>.json`` files and ``layermem-<stem>`` triples whose ``.json`` (written
    last) and both tables exist."""
    from memloc.artifacts import cache_root

    root = cache_root(cache_dir)
    if not root.is_dir():
        return []
    files = [p for p in sorted(root.glob(f"{UNITMEM_PREFIX}*.npz")) if _kept_name(p.name)]
    files += [p for p in sorted(root.glob(f"{FINETUNE_PREFIX}*.json")) if _kept_name(p.name)]
    for meta in sorted(root.glob(f"{LAYERMEM_PREFIX}*.json")):
        if not _kept_name(meta.name):
            continue
        stem = meta.name.removesuffix(".json")
        parts = [root / f"{stem}{suffix}" for suffix in LAYERMEM_PARTS]
        if all(p.is_file() for p in parts):
            files += parts
    return files


def bundle_contents(
    profile: str = "cpu",
    cache_dir: str | Path | None = None,
    *,
    parameters: dict | None = None,
    measurements: bool = True,
) -> BundleContents:
    """The files a bundle of the book at ``profile`` carries (see the module docstring)."""
    from memloc.artifacts import cache_root, entry_status

    root = cache_root(cache_dir)
    contents = BundleContents(profile)
    for name in book_entries(profile, parameters):
        entry = root / name
        if entry_status(entry) != "complete":
            contents.missing.append(name)
            continue
        contents.entries.append(name)
        for path in entry_files(entry):
            contents.files.append((f"{CACHE_DIR}/{path.relative_to(root).as_posix()}", path))
    if measurements:
        for path in stored_measurements(root):
            contents.measurements.append(path.name)
            contents.files.append((f"{CACHE_DIR}/{path.name}", path))
    return contents


# ----------------------------------------------------------------------------- export


class _HashingReader:
    """A file object that hashes what is read from it: the manifest's hashes are those of the
    bytes written into the archive, even if a file changed meanwhile."""

    def __init__(self, fh):
        self.fh = fh
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.sha256.update(data)
        return data


def _tarinfo(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o644
    return info


def export_bundle(
    out: str | Path,
    profile: str = "cpu",
    cache_dir: str | Path | None = None,
    *,
    parameters: dict | None = None,
    measurements: bool = True,
) -> BundleContents:
    """Write the bundle of the book at ``profile`` to ``out`` (a tar file, written to a
    temporary name and renamed when complete). Entries of the plan that are not complete are
    left out and listed in ``bundle.json`` and the result's ``missing``."""
    out = Path(out)
    contents = bundle_contents(profile, cache_dir, parameters=parameters, measurements=measurements)
    if not contents.entries and not contents.measurements:
        raise BundleError(
            f"nothing to export at profile {profile!r}: none of its {len(contents.missing)} "
            "encoders is complete in the cache; run `make book` (or train them) first"
        )
    from memloc import __version__

    info = {
        "format": FORMAT,
        "profile": profile,
        "parameters": parameters or {},
        "memloc_version": __version__,
        "entries": contents.entries,
        "missing": contents.missing,
        "measurements": contents.measurements,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    lines = []
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for arcname, path in contents.files:
                with open(path, "rb") as fh:
                    stat = os.fstat(fh.fileno())
                    reader = _HashingReader(fh)
                    tar.addfile(_tarinfo(arcname, stat.st_size, stat.st_mtime), reader)
                lines.append(f"{reader.sha256.hexdigest()}  {arcname}")
            info_bytes = (json.dumps(info, indent=1) + "\n").encode()
            _add_bytes(tar, INFO, info_bytes)
            lines.append(f"{hashlib.sha256(info_bytes).hexdigest()}  {INFO}")
            # The manifest is written last: an archive cut short anywhere has none.
            _add_bytes(tar, MANIFEST, ("\n".join(lines) + "\n").encode())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return contents


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io
    import time

    tar.addfile(_tarinfo(name, len(data), time.time()), io.BytesIO(data))


# ----------------------------------------------------------------------------- import


def is_url(source: str) -> bool:
    """Whether ``source`` is a URL pooch can fetch (or ``file://``), not a local path."""
    return urlparse(str(source)).scheme in URL_SCHEMES


def _file_downloader(url: str, output_file, pooch) -> None:
    """pooch downloader for ``file://`` URLs (pooch itself fetches HTTP(S), FTP, SFTP, DOI)."""
    source = Path(unquote(urlparse(url).path))
    if not source.is_file():
        raise BundleError(f"{url}: no such file")
    if hasattr(output_file, "write"):
        with open(source, "rb") as fh:
            shutil.copyfileobj(fh, output_file)
    else:
        shutil.copyfile(source, output_file)


def fetch_bundle(
    source: str | Path, *, sha256: str | None = None, download_dir: str | Path | None = None
) -> Path:
    """The bundle at ``source`` as a local file: a path as it is, a URL fetched with pooch into
    ``download_dir`` (default pooch's user cache folder, ``memloc/bundles``). With ``sha256``
    pooch checks the archive's hash; without it the URL is fetched again every time (a
    "latest bundle" URL changes its content)."""
    import pooch

    source = str(source)
    if not is_url(source):
        path = Path(source)
        if not path.is_file():
            raise BundleError(f"{source}: no such bundle file")
        if sha256 is not None and sha256_file(path) != sha256.lower():
            raise BundleError(f"{source}: SHA-256 {sha256_file(path)} is not the given {sha256}")
        return path
    folder = pooch.os_cache("memloc") / "bundles" if download_dir is None else Path(download_dir)
    name = PurePosixPath(unquote(urlparse(source).path)).name or "bundle.tar"
    if sha256 is None:
        (folder / name).unlink(missing_ok=True)
    downloader = _file_downloader if urlparse(source).scheme == "file" else None
    # pooch's INFO lines suggest its own API's known_hash; `memloc bundle import` prints the
    # archive's SHA-256 for --sha256 instead.
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")
    print(f"fetching {source}", flush=True)
    try:
        return Path(
            pooch.retrieve(
                source,
                known_hash=f"sha256:{sha256}" if sha256 else None,
                fname=name,
                path=folder,
                downloader=downloader,
            )
        )
    except BundleError:
        raise
    except ValueError as err:  # pooch's hash mismatch
        raise BundleError(f"{source}: {' '.join(str(err).split())}") from None
    except OSError as err:
        raise BundleError(f"{source}: could not be fetched ({err})") from None
    finally:
        logger.setLevel(level)


def _read_manifest(staging: Path, label: str) -> dict[str, str]:
    path = staging / MANIFEST
    if not path.is_file():
        raise BundleError(f"{label}: no {MANIFEST} (the archive is truncated or not a bundle)")
    manifest = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name:
            raise BundleError(f"{label}: {MANIFEST} line {number} is not '<sha256>  <path>'")
        manifest[name] = digest
    return manifest


def _unpack(archive: Path, staging: Path, label: str) -> None:
    """Extract ``archive`` into ``staging``: regular files under ``cache/``, ``bundle.json``
    and the manifest only (tarfile's ``data`` filter also refuses absolute paths and ``..``)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = PurePosixPath(member.name)
                allowed = name.parts[:1] == (CACHE_DIR,) or member.name in (MANIFEST, INFO)
                if not (member.isfile() or member.isdir()) or not allowed:
                    raise BundleError(f"{label}: unexpected member {member.name!r}")
                tar.extract(member, staging, filter="data")
    except BundleError:
        raise
    except (tarfile.TarError, EOFError, OSError) as err:
        raise BundleError(
            f"{label}: not a complete tar archive ({' '.join(str(err).split())}); "
            "nothing was imported"
        ) from None


def verify_staged(staging: Path, label: str) -> dict:
    """Check every unpacked file against ``MANIFEST.sha256`` (and that nothing is unlisted);
    return ``bundle.json``. Raises :class:`BundleError` naming the first bad file."""
    manifest = _read_manifest(staging, label)
    for name, digest in manifest.items():
        path = staging / name
        if not path.is_file():
            raise BundleError(f"{label}: {name} is listed in {MANIFEST} but missing")
        if sha256_file(path) != digest:
            raise BundleError(f"{label}: {name} does not match its SHA-256 in {MANIFEST}")
    unlisted = sorted(
        p.relative_to(staging).as_posix()
        for p in staging.rglob("*")
        if p.is_file() and p.name != MANIFEST
    )
    unlisted = [name for name in unlisted if name not in manifest]
    if unlisted:
        raise BundleError(f"{label}: {unlisted[0]} is not listed in {MANIFEST}")
    if INFO not in manifest:
        raise BundleError(f"{label}: no {INFO}")
    return json.loads((staging / INFO).read_text())


def import_bundle(
    source: str | Path,
    cache_dir: str | Path | None = None,
    *,
    sha256: str | None = None,
    download_dir: str | Path | None = None,
) -> ImportReport:
    """Fetch (:func:`fetch_bundle`), verify and unpack a bundle into the encoder cache.

    Everything is unpacked into a staging folder inside the cache and checked against the
    manifest first; a mismatch, a truncated archive or an incomplete entry refuses the whole
    bundle (:class:`BundleError`, one line naming the first bad file) and leaves the cache as
    it was. Then each entry moves into place with one rename: an entry the cache already holds
    complete is kept, an incomplete one (an interrupted training) is replaced. Measurement
    files are added where missing.
    """
    from memloc.artifacts import cache_root, entry_status

    label = str(source)
    archive = fetch_bundle(source, sha256=sha256, download_dir=download_dir)
    root = cache_root(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".bundle-import-"))
    try:
        _unpack(archive, staging, label)
        info = verify_staged(staging, label)
        staged = staging / CACHE_DIR
        names = sorted(p.name for p in staged.iterdir()) if staged.is_dir() else []
        entries = [n for n in names if (staged / n).is_dir()]
        for name in entries:
            if entry_status(staged / name) != "complete":
                raise BundleError(f"{label}: entry {name} is not complete; nothing was imported")
        report = ImportReport(label, str(info.get("profile")), sha256_file(archive))
        for name in entries:
            target = root / name
            status = entry_status(target)
            if status == "complete":
                report.kept.append(name)
                continue
            if status != "missing":  # partial or corrupt: set aside, then replace
                os.replace(target, staging / f"replaced-{name}")
            os.replace(staged / name, target)
            report.imported.append(name)
        for name in names:
            if name in entries:
                continue
            target = root / name
            if target.exists():
                report.measurements_kept += 1
            else:
                os.replace(staged / name, target)
                report.measurements_added += 1
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ----------------------------------------------------------------------------- status


def plan_status(
    profile: str = "cpu", cache_dir: str | Path | None = None, *, parameters: dict | None = None
) -> tuple[list[str], list[str]]:
    """(present, missing): the book's entries at ``profile`` that the cache holds complete,
    and those the workflow would train."""
    from memloc.artifacts import cache_root, entry_status

    root = cache_root(cache_dir)
    present, missing = [], []
    for name in book_entries(profile, parameters):
        (present if entry_status(root / name) == "complete" else missing).append(name)
    return present, missing
