"""pyproject.toml and environment.yml pin the same packages at the same versions."""

import tomllib

import yaml

from memloc.utils import repo_root


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return dict(r.split("==") for r in reqs)


def _environment_pins() -> dict[str, str]:
    env = yaml.safe_load((repo_root() / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return dict(r.split("==") for r in pip if "==" in r)


def test_every_dependency_is_pinned_exactly():
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + sum(project["optional-dependencies"].values(), [])
    assert all("==" in r for r in reqs), [r for r in reqs if "==" not in r]


def test_pyproject_and_environment_agree():
    assert _pyproject_pins() == _environment_pins()


def test_torch_pins_are_the_ones_on_disk():
    pins = _pyproject_pins()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    major = int(pins["jupyter-book"].split(".")[0])
    assert major < 2, "jupyter-book 2.x fetches its theme from the internet at build time"


def test_license_and_citation_match_the_project():
    pyproject = tomllib.loads((repo_root() / "pyproject.toml").read_text())
    license_text = (repo_root() / "LICENSE").read_text()
    assert pyproject["project"]["license"]["text"] == "MIT"
    assert license_text.startswith("MIT License")
    citation = yaml.safe_load((repo_root() / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "MIT"
    paper = citation["preferred-citation"]
    assert paper["title"] == "Localizing Memorization in SSL Vision Encoders"
    assert [a["family-names"] for a in paper["authors"]] == [
        "Wang",
        "Dziedzic",
        "Backes",
        "Boenisch",
    ]
    # Fields that go stale with every release have no place in it.
    assert not {"version", "date-released"} & set(citation)
