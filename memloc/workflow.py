"""What the book's Snakemake workflow (``workflow/Snakefile``) needs from memloc.

The workflow runs the paper's pipeline as jobs: one ``train`` job per cache entry (an encoder
of the shared f/g pairs or of a notebook's own list), one ``notebook`` job per result of the
book (Wang et al., NeurIPS 2024: T1-T6, A1-A8, F1-F3), then the claims page and the Jupyter
Book build. This module holds the Python side, so that the Snakefile stays a list of rules:

- :func:`book_plan`: every encoder the book trains at a profile, named by its cache entry
  (``<arch>-<framework>-<dataset>-<role>-<spec hash>``, :attr:`memloc.artifacts.EncoderSpec.
  entry_name`), and the entries each notebook needs. The encoders are declared once, in
  :mod:`memloc.experiments.encoders`, which the notebooks call too.
- :func:`write_code_digest`: a file rewritten only when what memloc's sources compute changes
  (:func:`memloc.utils.code_digest` ignores docstrings, comments and layout), so that editing
  documentation does not re-execute notebooks; Snakemake sees its modification time.
- :func:`train_entry`: trains exactly one spec with one thread, one log line per epoch.
- :func:`benchmark_seconds`: the wall times Snakemake's ``benchmark:`` files recorded.
- :func:`snakemake_command`: the command ``make book`` / ``python -m memloc.book`` runs.

``python -m memloc.workflow train SPEC.json`` and ``python -m memloc.workflow notebook NAME``
are the jobs' entry points.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from memloc.fingerprint import everything, fingerprint
from memloc.notebooks import (
    NOTEBOOKS_DIR,
    NotebookFailed,
    ResultNotebook,
    notebook_parameters,
    result_notebooks,
    run_notebook,
)
from memloc.utils import atomic_write_bytes, repo_root

ROOT = repo_root()
SNAKEFILE = ROOT / "workflow" / "Snakefile"
SLURM_PROFILE = ROOT / "profiles" / "slurm"
SHARED_FRAMEWORKS = ("simclr", "supervised")  # the book's shared f/g pairs
# Files of the repository a notebook reads besides code and encoders (relative to the root):
# a newer file re-executes it. R0 shows the regime sweep's measurements.
NOTEBOOK_DATA = {"r0_regime": ("benchmarks/results/regime.csv",)}


# ----------------------------------------------------------------------------- the plan


@functools.cache
def _data_shape(dataset: str, image_size: int, resize: str) -> tuple[int, int]:
    """(training images, channels) of a data set: the two facts a spec takes from the data.
    Never downloads: the workflow's plan must not reach the network."""
    from memloc.data import load_dataset

    train = load_dataset(dataset, "train", image_size=image_size, resize=resize, download=False)
    return len(train), train.channels


def request_specs(request) -> list:
    """The cache specs (:class:`memloc.artifacts.EncoderSpec`) of one
    :class:`memloc.experiments.encoders.EncoderRequest`: f and g of a pair, or f alone; the
    same specs :func:`memloc.artifacts.encoder_pair` and :func:`memloc.artifacts.f_encoder`
    build, so the notebooks find what the ``train`` jobs stored."""
    from memloc.artifacts import ROLES, encoder_spec
    from memloc.profiles import fit_to_data

    p = request.profile
    n_total, channels = _data_shape(p.dataset, p.image_size, p.resize)
    fitted = fit_to_data(p, n_total)
    roles = ROLES if request.pair else ("f",)
    return [
        encoder_spec(
            fitted,
            role,
            request.framework,
            n_total=n_total,
            in_channels=channels,
            privacy=request.privacy,
        )
        for role in roles
    ]


@dataclass
class BookPlan:
    """The book's jobs at one profile: ``encoders`` maps each cache entry name to its spec,
    ``labels`` to a readable name, ``notebooks`` each result notebook to the entries it reads."""

    profile: str
    parameters: dict
    encoders: dict = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    notebooks: dict[str, list[str]] = field(default_factory=dict)
    run: BookRun | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # notebook -> why it has no encoders

    def to_dict(self) -> dict:
        return {
            "profile": self.profile,
            "run": self.run.name if self.run else self.profile,
            "dataset": self.run.dataset if self.run else None,
            "profile_overrides": self.run.profile_overrides if self.run else {},
            "parameters": self.parameters,
            "encoders": {name: self.labels[name] for name in self.encoders},
            "notebooks": self.notebooks,
        }


def profile_keys() -> list[str]:
    """The keys a ``--param`` may set on the profile (every field but its name and text)."""
    from memloc.profiles import Profile

    return [f.name for f in dataclasses.fields(Profile) if f.name not in ("name", "description")]


def profile_overrides(parameters: dict) -> dict:
    """The parameters that are profile keys (``seed``, ``dataset``, ``epochs``, ...). They
    change the profile itself: the train jobs and every notebook (its ``profile_overrides``
    parameter) apply them alike, whatever a notebook's parameter of the same name means."""
    keys = set(profile_keys())
    return {k: v for k, v in parameters.items() if k in keys and v is not None}


# Parameters the workflow sets itself: a --param may not.
RESERVED_PARAMETERS = ("profile", "out_dir", "profile_overrides")
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "-", str(text)).strip("-")


def dataset_slug(dataset: str) -> str:
    """A data set's name as part of a run name: ``imagefolder:/x/mine`` -> ``imagefolder-mine``
    (the folder's own name), ``fashion-mnist`` as it is."""
    if ":" in dataset:
        kind, where = dataset.split(":", 1)
        return _slug(f"{kind}-{Path(where).expanduser().resolve().name}")
    return _slug(dataset)


def default_run_name(profile: str, overrides: dict) -> str:
    """The run's name when ``--run`` is not given: the profile's name for the profile as it is,
    else the profile, the data set (when changed) and the other changed keys, e.g.
    ``quick-imagefolder-mine`` or ``quick-epochs4``; a long list of keys becomes a hash."""
    if not overrides:
        return profile
    parts = [profile]
    if "dataset" in overrides:
        parts.append(dataset_slug(overrides["dataset"]))
    others = {k: v for k, v in sorted(overrides.items()) if k != "dataset"}
    if others:
        keys = "-".join(_slug(f"{k}{json.dumps(v)}") for k, v in others.items())
        if len(keys) > 40:
            keys = "p" + hashlib.sha256(json.dumps(others, sort_keys=True).encode()).hexdigest()[:8]
        parts.append(keys)
    return "-".join(parts)


@dataclass(frozen=True)
class BookRun:
    """One build of the book: a profile, the profile keys changed by ``--param`` and the
    notebooks' own parameters, under a name. The run ``<profile>`` (no profile key changed) is
    the profile's book (``book/``, results in ``book/results/<profile>/``); any other run has
    its results in ``book/results/<name>/`` and its own book in ``book/results/<name>/book/``,
    so that a run on your own data never touches the quick, cpu or paper results."""

    name: str
    profile: str
    profile_overrides: dict
    notebook_parameters: dict
    dataset: str

    @property
    def is_profile_book(self) -> bool:
        return self.name == self.profile

    def parameters_for(self, name: str, accepted: list[str] | set[str]) -> dict:
        """What Papermill injects into notebook ``name`` (besides ``profile`` and ``out_dir``):
        the run's ``profile_overrides`` and those notebook parameters it declares (``KEY`` for
        every notebook declaring it, ``<name>.KEY`` for this one alone)."""
        out = {k: v for k, v in self.notebook_parameters.items() if k in accepted}
        for key, value in self.notebook_parameters.items():
            if key.startswith(name + "."):
                out[key.split(".", 1)[1]] = value
        if "profile_overrides" in accepted:
            out["profile_overrides"] = self.profile_overrides
        return out

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve_run(
    profile: str,
    parameters: dict | None,
    notebooks: list[str],
    *,
    run: str | None = None,
    notebooks_dir: str | Path | None = None,
) -> BookRun:
    """Sort the ``--param`` values of a book build and name the run; the one place that does.

    A profile key (:func:`profile_keys`) changes the profile, for the train jobs and every
    notebook alike (their ``profile_overrides``), whatever a notebook parameter of the same
    name means (T1's ``seed`` seeds its views). Any other key must be a parameter of at least
    one of ``notebooks`` (the ones to execute), which alone receive it; ``NAME.KEY`` sets
    notebook ``NAME``'s parameter ``KEY`` alone (``t1_layermem.seed=3``: T1's own ``seed``;
    a profile key the notebook does not declare is the run's: ``--only NAME`` runs one).
    Anything else is an error *before* anything trains: an unknown key, a key no notebook to
    execute declares (Papermill would ignore it with a warning), a reserved one (``profile``,
    ``out_dir``, ``profile_overrides``), a bad profile value, profile keys for a notebook
    without a ``profile_overrides`` parameter. ``run`` None: :func:`default_run_name`.

    Raises
    ------
    ValueError
        One line naming the key and listing the valid ones.
    """
    from memloc.profiles import load_profile

    parameters = dict(parameters or {})
    reserved = sorted(set(parameters) & set(RESERVED_PARAMETERS))
    if reserved:
        raise ValueError(
            f"--param {reserved[0]} is set by the workflow itself; use --profile for the "
            "profile and --run for the results folder"
        )
    keys = profile_keys()
    accepted = {
        name: notebook_parameters(name, notebooks_dir or NOTEBOOKS_DIR) for name in notebooks
    }
    declared = sorted({key for names in accepted.values() for key in names} - set(keys))
    declared = [k for k in declared if k not in RESERVED_PARAMETERS]
    for key in parameters:
        if "." in key:  # one notebook's own parameter
            name, own = key.split(".", 1)
            if name not in accepted:
                raise ValueError(
                    f"--param {key}: {name} is not a notebook to run; notebooks to run: "
                    f"{', '.join(notebooks) or 'none'}"
                )
            valid = [k for k in accepted[name] if k not in RESERVED_PARAMETERS]
            if own not in valid and own in keys:
                raise ValueError(
                    f"--param {key}: {own} is a profile key, the same for every encoder and "
                    f"notebook of a run; for one notebook: --only {name} --param {own}=VALUE"
                )
            if own not in valid:
                raise ValueError(
                    f"--param {key}: {name} has no parameter {own}; its parameters: "
                    f"{', '.join(valid)}"
                )
        elif key not in keys and key not in declared:
            raise ValueError(
                f"--param {key}: not a profile key and not a parameter of the notebooks to run "
                f"({', '.join(notebooks) or 'none'}); profile keys: {', '.join(keys)}; "
                f"notebook parameters: {', '.join(declared) or 'none'}"
            )
    asked = profile_overrides(parameters)
    deaf = [name for name, names in accepted.items() if "profile_overrides" not in names]
    if asked and deaf:
        raise ValueError(
            f"--param {next(iter(asked))}: notebook {deaf[0]} has no profile_overrides "
            "parameter, so it would use the profile unchanged; add "
            "`profile_overrides = {}` to its parameters cell and apply it"
        )
    base = load_profile(profile)
    try:
        resolved = load_profile(profile, **asked)
    except (KeyError, ValueError) as err:
        raise ValueError(f"--param: {err.args[0] if err.args else err}") from None
    # The values as the profile holds them (Snakemake's --config may hand "2" for 2), as
    # JSON types (lists, not tuples) for Papermill.
    asked = {k: _json_type(getattr(resolved, k)) for k in asked}
    # Keys set to the profile's own value change nothing, and so do not rename the run.
    changed = {k: v for k, v in asked.items() if getattr(resolved, k) != getattr(base, k)}
    name = run or default_run_name(profile, changed)
    if not RUN_NAME.fullmatch(name):
        raise ValueError(
            f"--run {name!r}: a run name is letters, digits, '_', '.', '-' (a folder name)"
        )
    if name != profile and name in _profile_names():
        raise ValueError(f"--run {name}: the {name} profile's results; choose another name")
    if name == profile and changed:
        raise ValueError(
            f"--run {name} holds the {profile} profile's own results, and --param changes "
            f"{', '.join(sorted(changed))}: choose another run name (default: "
            f"{default_run_name(profile, changed)})"
        )
    return BookRun(
        name=name,
        profile=profile,
        profile_overrides=asked,
        notebook_parameters={k: v for k, v in parameters.items() if k not in keys},
        dataset=resolved.dataset,
    )


def _json_type(value):
    return list(value) if isinstance(value, tuple) else value


def _profile_names() -> list[str]:
    from memloc.profiles import available_profiles

    return available_profiles()


def book_plan(
    profile: str,
    notebooks: list[str],
    parameters: dict | None = None,
    *,
    run: BookRun | None = None,
    notebooks_dir: str | Path | None = None,
    optional: Collection[str] = (),
) -> BookPlan:
    """Every encoder the notebooks need at ``profile``, each once, named by its cache entry.

    ``parameters`` (the ``--param`` values) are sorted by :func:`resolve_run` unless ``run``
    is given: profile keys change every encoder, the rest go to the notebooks declaring them.
    A notebook with its own list in :data:`memloc.experiments.encoders.NOTEBOOK_ENCODERS`
    reads that list (:func:`memloc.experiments.encoders.notebook_encoders`, called with exactly
    the parameters Papermill injects: ``profile``, ``profile_overrides`` and the notebook's
    own; the rest keep the notebook's defaults, which the encoder functions share); every other
    notebook reads the shared SimCLR and supervised pairs.

    A notebook in ``optional`` (listed, but not to be executed this time) whose encoders do
    not apply to the run (ValueError, e.g. T2's ViT on a profile without one) is left out of
    the plan, in ``plan.skipped`` with the reason; any other notebook's error stops the plan.
    """
    from memloc.experiments.encoders import NOTEBOOK_ENCODERS, EncoderRequest, notebook_encoders
    from memloc.profiles import load_profile

    notebooks_dir = notebooks_dir or NOTEBOOKS_DIR
    if run is None:
        run = resolve_run(profile, parameters, notebooks, notebooks_dir=notebooks_dir)
    plan = BookPlan(profile, dict(parameters or {}))
    plan.run = run
    base = load_profile(profile, **run.profile_overrides)
    shared = [
        EncoderRequest(f"shared {framework} pair", base, framework)
        for framework in SHARED_FRAMEWORKS
    ]

    def add(requests) -> list[str]:
        names = []
        for request in requests:
            for spec in request_specs(request):
                plan.encoders.setdefault(spec.entry_name, spec)
                plan.labels.setdefault(spec.entry_name, f"{request.label} ({spec.role})")
                names.append(spec.entry_name)
        return names

    shared_entries = add(shared)
    for name in notebooks:
        if name in NOTEBOOK_ENCODERS:
            accepted = notebook_parameters(name, notebooks_dir)
            injected = {**run.parameters_for(name, accepted), "profile": profile}
            try:
                requests = notebook_encoders(name, injected)
            except ValueError as err:
                if name not in optional:
                    raise
                plan.skipped[name] = str(err)
                continue
            plan.notebooks[name] = list(dict.fromkeys(add(requests)))
        else:  # a notebook without its own list reads the shared pairs
            plan.notebooks[name] = shared_entries
    return plan


def write_if_changed(path: str | Path, text: str) -> bool:
    """Write ``text`` unless the file already holds it, so its modification time (what
    Snakemake compares) moves only with its content. Returns whether it wrote."""
    path = Path(path)
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode())
    return True


def stage_book(source: str | Path, target: str | Path) -> Path:
    """The book's sources (the files at the top of ``book/``: chapters, ``_config.yml``,
    ``_toc.yml``, bibliography, figures; and ``_static/``, its CSS) copied into ``target``:
    the own book of a run other than a profile's, built there so that it never overwrites the
    profile's book. A file is
    rewritten only when it changed, so that Sphinx rebuilds only what did."""
    target, source = Path(target), Path(source)
    static = sorted((source / "_static").glob("*")) if (source / "_static").is_dir() else []
    for path in sorted(source.iterdir()) + static:
        if path.is_file() and not path.name.startswith("."):
            copy = target / path.relative_to(source)
            content = path.read_bytes()
            if not copy.exists() or copy.read_bytes() != content:
                copy.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(copy, content)
    return target


def write_spec(spec, folder: str | Path) -> Path:
    """``<folder>/<entry>.json``: the spec a ``train`` job trains."""
    path = Path(folder) / f"{spec.entry_name}.json"
    write_if_changed(path, json.dumps(spec.to_dict(), sort_keys=True, indent=1) + "\n")
    return path


# ----------------------------------------------------------------------------- code digest


def write_code_digest(path: str | Path, profile: str, overrides: dict | None = None) -> bool:
    """The notebooks' code input: memloc's version, the fingerprint of every memloc module
    (:func:`memloc.fingerprint.fingerprint`; a notebook may import any) and the
    resolved profile (with the run's profile ``overrides``), rewritten only when one of them
    changes. Returns whether it was rewritten."""
    from memloc import __version__
    from memloc.profiles import load_profile

    content = {
        "memloc_version": __version__,
        "memloc_code_sha256": fingerprint(*everything()),
        "profile": load_profile(profile, **(overrides or {})).to_dict(),
    }
    return write_if_changed(path, json.dumps(content, sort_keys=True, indent=1) + "\n")


# ----------------------------------------------------------------------------- jobs


def train_entry(spec_path: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Train the cache entry of one spec file (a ``train`` job) with one thread, printing one
    line per epoch (loss, pairs/s); an entry already complete is left as it is."""
    from memloc.artifacts import EncoderSpec, get_encoder

    spec = EncoderSpec(**json.loads(Path(spec_path).read_text()))
    print(f"train {spec.entry_name}: {spec.train['epochs']} epochs", flush=True)
    start = time.time()
    # One thread per job: Snakemake runs as many jobs as there are cores (two encoders side
    # by side on two cores train faster than one with two threads, measured).
    entry = get_encoder(spec, cache_dir=cache_dir, threads=1, progress="epochs")
    print(f"train {spec.entry_name}: done in {time.time() - start:.1f} s", flush=True)
    return entry


def benchmark_seconds(path: str | Path) -> float | None:
    """Wall seconds (column ``s``) of a Snakemake ``benchmark:`` file; None if absent."""
    path = Path(path)
    if not path.exists():
        return None
    header, *rows = [line.split("\t") for line in path.read_text().splitlines() if line]
    if not rows or "s" not in header:
        return None
    return float(rows[-1][header.index("s")])


def logged_training_seconds(entry: str | Path) -> float | None:
    """Wall seconds of the training loop as a cache entry's ``log.json`` records them (an
    encoder trained outside a train job of the workflow has no ``benchmark:`` file); None
    without a log."""
    try:
        log = json.loads((Path(entry) / "log.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return float(log["wall_s"]) if "wall_s" in log else None


CONFIG_JSON = "json:"


def config_value(value) -> str:
    """A ``--config`` value that reaches the Snakefile with its types.

    Snakemake reads a ``--config`` value with YAML's BaseLoader, which turns every number and
    boolean inside a mapping or list into a string (``--param check_learned=false`` would
    reach the notebook as the true string ``"false"``). A mapping or list therefore goes as
    ``json:<compact JSON>``, one YAML plain scalar (no space, no ``#``: both escaped inside
    JSON strings), which the Snakefile decodes with :func:`decode_config_value`."""
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"))
        return CONFIG_JSON + text.replace(" ", "\\u0020").replace("#", "\\u0023")
    return json.dumps(value)


def decode_config_value(value, default):
    """A config value as :func:`config_value` wrote it (or as a config file holds it)."""
    if value is None:
        return default
    if isinstance(value, str):
        if value.startswith(CONFIG_JSON):
            return json.loads(value[len(CONFIG_JSON) :])
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def snakemake_command(
    profile: str,
    *,
    targets: list[str] | None = None,
    config: dict | None = None,
    cores: str = "all",
    executor: str | None = None,
    keep_going: bool = False,
    dry_run: bool = False,
    extra: list[str] | None = None,
) -> list[str]:
    """The Snakemake command line of a book build (``make book`` runs it)."""
    values = {"profile": profile, **(config or {})}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE)]
    cmd += ["--directory", str(ROOT), "--cores", str(cores)]
    cmd += ["--config"] + [f"{k}={config_value(v)}" for k, v in values.items()]
    if executor == "slurm":
        cmd += ["--executor", "slurm", "--workflow-profile", str(SLURM_PROFILE)]
    elif executor not in (None, "", "local"):
        raise ValueError(f"unknown executor {executor!r}; use 'local' or 'slurm'")
    if keep_going:
        cmd.append("--keep-going")
    if dry_run:
        cmd += ["--dry-run", "--nolock"]
    return cmd + list(extra or []) + list(targets or [])


def parse_rulegraph(dot: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Rules and edges (upstream, downstream) of ``snakemake --rulegraph``'s Graphviz text."""
    ids = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', dot, flags=re.MULTILINE))
    edges = re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.MULTILINE)
    return list(ids.values()), [(ids[a], ids[b]) for a, b in edges]


def rulegraph_svg(dot: str, notes: dict[str, str] | None = None) -> str:
    """Draw a rule graph as SVG without Graphviz (not installable offline here): rules in
    layers by their longest path from a source, top to bottom, edges as arrows; ``notes``
    adds a second line under a rule (e.g. its number of jobs). Each edge carries a
    ``<title>upstream->downstream</title>``, as Graphviz's SVG does."""
    from html import escape

    rules, edges = parse_rulegraph(dot)
    layer = {rule: 0 for rule in rules}
    for _ in rules:  # longest path; the graph is acyclic, so |rules| passes suffice
        for up, down in edges:
            layer[down] = max(layer[down], layer[up] + 1)
    rows: dict[int, list[str]] = {}
    for rule in rules:
        rows.setdefault(layer[rule], []).append(rule)
    box_w, box_h, gap_x, gap_y = 210, 44, 30, 36
    width = max(len(r) for r in rows.values()) * (box_w + gap_x) + gap_x
    height = len(rows) * (box_h + gap_y) + gap_y
    where = {}
    for depth, row in rows.items():
        left = (width - len(row) * (box_w + gap_x) + gap_x) / 2
        for k, rule in enumerate(row):
            where[rule] = (left + k * (box_w + gap_x), gap_y + depth * (box_h + gap_y))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="13">',
        '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="grey"/></marker></defs>',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
    ]
    for up, down in edges:
        (x1, y1), (x2, y2) = where[up], where[down]
        out.append(
            f'<g class="edge"><title>{escape(up)}-&gt;{escape(down)}</title>'
            f'<line x1="{x1 + box_w / 2:.0f}" y1="{y1 + box_h:.0f}" x2="{x2 + box_w / 2:.0f}" '
            f'y2="{y2 - 2:.0f}" stroke="grey" stroke-width="2" marker-end="url(#arrow)"/></g>'
        )
    for rule in rules:
        x, y = where[rule]
        note = (notes or {}).get(rule, "")
        text_y = y + (18 if note else 27)
        out.append(
            f'<g class="node"><title>{escape(rule)}</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{box_w}" height="{box_h}" rx="8" '
            f'fill="#eef3fb" stroke="#4a78b5" stroke-width="2"/>'
            f'<text x="{x + box_w / 2:.0f}" y="{text_y:.0f}" text-anchor="middle" '
            f'font-weight="bold">{escape(rule)}</text>'
            + (
                f'<text x="{x + box_w / 2:.0f}" y="{y + 35:.0f}" text-anchor="middle" '
                f'font-size="11">{escape(note)}</text>'
                if note
                else ""
            )
            + "</g>"
        )
    return "\n".join(out + ["</svg>"]) + "\n"


def draw_rulegraph(profile: str, out: Path) -> Path:
    """``snakemake --rulegraph`` of the book at ``profile``, drawn with the number of jobs a
    fresh machine (empty cache) runs per rule; written to ``out`` (SVG)."""
    import tempfile

    notebooks = [nb.name for nb in _present_notebooks()]
    plan = book_plan(profile, notebooks)
    with tempfile.TemporaryDirectory() as scratch:
        config = {"results": f"{scratch}/results", "cache": f"{scratch}/cache"}
        cmd = snakemake_command(profile, config=config, extra=["--rulegraph", "--nolock"])
        dot = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    needed = {entry for entries in plan.notebooks.values() for entry in entries}
    notes = {
        "train": f"{len(needed)} jobs at {profile}: one per encoder",
        "notebook": f"{len(notebooks)} jobs: one per result",
    }
    out.write_text(rulegraph_svg(dot, notes))
    return out


def _present_notebooks():
    return [nb for nb in result_notebooks() if (NOTEBOOKS_DIR / f"{nb.name}.py").exists()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m memloc.workflow", description="Jobs of the book's Snakemake workflow."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the cache entry of a spec file")
    train.add_argument("spec")
    train.add_argument("--cache-dir", default=None)
    nb = sub.add_parser("notebook", help="execute one result notebook with Papermill")
    nb.add_argument("name")
    nb.add_argument("--profile", required=True)
    nb.add_argument("--run", default=None, help="results folder name (default: the profile)")
    nb.add_argument("--parameters", default="{}", help="JSON of the injected parameters")
    nb.add_argument("--notebooks-dir", default="notebooks")
    nb.add_argument("--results-dir", default="book/results")
    graph = sub.add_parser("rulegraph", help="draw the workflow's rule graph as SVG")
    graph.add_argument("--profile", default="cpu")
    graph.add_argument("--out", default=str(ROOT / "book" / "workflow_rulegraph.svg"))
    args = parser.parse_args(argv)

    if args.command == "rulegraph":
        draw_rulegraph(args.profile, Path(args.out))
        return 0
    if args.command == "train":
        train_entry(args.spec, args.cache_dir)
        return 0
    if args.command == "notebook":
        try:
            record = run_notebook(
                ResultNotebook(args.name),
                args.profile,
                notebooks_dir=Path(args.notebooks_dir),
                results_dir=Path(args.results_dir),
                cwd=Path.cwd(),
                parameters=json.loads(args.parameters),
                run=args.run,
            )
        except NotebookFailed as err:
            print(f"\nbook build stopped: {err}", file=sys.stderr)
            return 1
        print(f"{args.name}: executed in {record.seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
