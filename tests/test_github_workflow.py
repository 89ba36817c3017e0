""".github/workflows/book.yml cannot run here: check that it is valid YAML whose steps call
make targets the Makefile has and `memloc` commands and options the CLI has, that the bundle
it downloads is the one it publishes, and that its time limits fit GitHub's 6-hour job limit.
"""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from memloc.cli import main
from memloc.utils import repo_root

WORKFLOW = repo_root() / ".github" / "workflows" / "book.yml"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _commands() -> list[str]:
    """Every shell line of every `run:` step, continuation lines joined."""
    lines = []
    for job in _workflow()["jobs"].values():
        for step in job["steps"]:
            text = step.get("run", "").replace("\\\n", " ")
            lines += [line.strip() for line in text.splitlines() if line.strip()]
    return lines


def _make_targets() -> set[str]:
    text = (repo_root() / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.MULTILINE))


def test_the_workflow_parses_and_runs_on_push_and_by_hand():
    workflow = _workflow()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert set(triggers) == {"push", "workflow_dispatch"}
    assert workflow["permissions"]["contents"] == "write"  # the bundle's release
    build = workflow["jobs"]["build"]
    assert build["timeout-minutes"] <= 360
    step = next(s for s in build["steps"] if s.get("name") == "Build the book")
    assert step["timeout-minutes"] < build["timeout-minutes"]
    pages = next(s for s in build["steps"] if "upload-pages-artifact" in s.get("uses", ""))
    assert pages["with"]["path"] == "book/_build/html"  # where the book rule builds
    assert workflow["jobs"]["deploy"]["needs"] == "build"


def test_make_calls_use_existing_targets_and_pass_the_bundle():
    calls = [shlex.split(line) for line in _commands() if line.startswith("make ")]
    assert calls, "the workflow builds the book with make"
    targets = _make_targets()
    for call in calls:
        named = [word for word in call[1:] if "=" not in word and not word.startswith("$")]
        assert named and set(named) <= targets, (call, sorted(targets))
    book = next(line for line in _commands() if line.startswith("make book"))
    assert "BUNDLE=" in book and "$(BUNDLE)" in (repo_root() / "Makefile").read_text()


@pytest.mark.parametrize(
    "line", [line for line in _commands() if re.match(r"(\.venv/bin/)?memloc ", line)]
)
def test_memloc_calls_use_existing_commands_and_options(line, capsys):
    words = shlex.split(line)[1:]
    command = [w for w in words if not w.startswith("-") and not w.startswith("$")][:2]
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    for option in (w for w in words if w.startswith("--")):
        assert option in usage, f"{option} is not an option of memloc {' '.join(command)}"


def test_the_downloaded_asset_is_the_exported_one():
    workflow = _workflow()
    assert workflow["env"]["BUNDLE_FILE"].startswith("memloc-")
    lines = _commands()
    download = next(line for line in lines if "gh release download" in line)
    export = next(line for line in lines if "bundle export" in line)
    upload = next(line for line in lines if "gh release upload" in line)
    assert '"$BUNDLE_TAG"' in download and '"$BUNDLE_TAG"' in upload
    for line in (download, export, upload):
        assert '"$BUNDLE_FILE"' in line


def test_the_test_workflow_runs_the_suite_and_the_paper_toy_workflow_side_by_side():
    workflow = yaml.safe_load((WORKFLOW.parent / "test.yml").read_text())
    jobs = workflow["jobs"]
    runs = {name: [s["run"] for s in job["steps"] if "run" in s] for name, job in jobs.items()}
    assert runs == {"suite": ["make test"], "paper-toy": ["make test-paper-toy"]}
    assert {"test", "test-paper-toy"} <= _make_targets()
    # As .ci/run: the property tests' fixed examples.
    assert (
        jobs["suite"]["env"]["MEMLOC_CI"] == "1"
        and "MEMLOC_CI=1" in (repo_root() / ".ci" / "run").read_text()
    )
    assert all(job["timeout-minutes"] <= 360 for job in jobs.values())
